package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Shows a running run: schedule version and budgets, p5 α per bin, τ, policy version, leases, buffer depth, "
                + "live settings, and the rollout option in use (plain, or compressed weights with their tail).")
final class StatusCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Mixin
    AdminClient client = new AdminClient();

    @Override
    public Integer call() {
        AdminClient.Response r = client.call("GET", "/status", null);
        if (r.code() == 401) {
            throw new BadInput("status: the admin endpoint wants a token ($TAILGUARD_ADMIN_TOKEN, --token-file or tailguard.admin.token-file)");
        }
        if (r.code() != 200) {
            System.err.println("tailguard: status: " + r.body());
            return Main.FAILURE;
        }
        if (common.json) {
            System.out.println(r.body());
        } else {
            JsonObject j = JsonParser.parseString(r.body()).getAsJsonObject();
            for (Map.Entry<String, com.google.gson.JsonElement> e : j.entrySet()) {
                System.out.println(e.getKey() + ": " + e.getValue());
            }
        }
        return 0;
    }
}
