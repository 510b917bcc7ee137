package io.tailguard.actors.cli;

import com.google.gson.Gson;
import io.tailguard.actors.runtime.LiveKey;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "tune", mixinStandardHelpOptions = true, modelTransformer = TuneCommand.Keys.class,
        description = "Changes a running run's settings live: %s; full names (tailguard.learner.lr) work too. "
                + "Validated as a whole (all or nothing), versioned, logged and applied without restart (docs/live-settings.md).")
final class TuneCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Mixin
    AdminClient client = new AdminClient();

    @Parameters(arity = "1..*", paramLabel = "KEY=VALUE", description = "Settings to change, e.g. tau=0.9 lr=5e-5 staleness=1.")
    List<String> pairs;

    /** Fills the live keys into the description from their one declaration. */
    static final class Keys implements CommandLine.IModelTransformer {
        @Override
        public CommandSpec transform(CommandSpec spec) {
            String[] d = spec.usageMessage().description();
            spec.usageMessage().description(String.format(d[0], LiveKey.summary()));
            return spec;
        }
    }

    @Override
    public Integer call() {
        for (String p : pairs) {
            if (p.indexOf('=') <= 0) {
                throw new BadInput(p + ": expected key=value");
            }
        }
        Map<String, String> settings = new LinkedHashMap<>();
        for (String p : pairs) {
            int eq = p.indexOf('=');
            settings.put(p.substring(0, eq).strip(), p.substring(eq + 1).strip());
        }
        AdminClient.Response r = client.call("POST", "/tune", new Gson().toJson(settings));
        if (r.code() == 401) {
            throw new BadInput("tune: the admin endpoint wants a token ($TAILGUARD_ADMIN_TOKEN, --token-file or tailguard.admin.token-file)");
        }
        var j = com.google.gson.JsonParser.parseString(r.body()).getAsJsonObject();
        if (common.json) {
            System.out.println(r.body());
        } else {
            System.out.println(j.has("message") ? j.get("message").getAsString() : r.body());
        }
        if (r.code() == 400) {
            throw new BadInput("tune refused: " + (j.has("message") ? j.get("message").getAsString() : r.body()));
        }
        return r.code() == 200 ? 0 : Main.FAILURE;
    }
}
