package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The configuration of `train` and `node`: `--set key=value` pairs over the `--config` file over
 * $TAILGUARD_CONFIG over every reference.conf. A missing file, a malformed pair, or a key that no
 * reference.conf defines (in the file or a pair, {@link KnownKeys}) is bad input naming its source.
 */
final class RunConfig {
    private RunConfig() {
    }

    /** The default `train` configuration: config/quickstart.conf of the installation, when present. */
    static Path defaultFile() {
        String home = System.getProperty("tailguard.home");
        Path p = Path.of(home == null ? "." : home, "config", "quickstart.conf");
        return Files.isRegularFile(p) ? p : null;
    }

    static Config load(Path file, List<String> sets) {
        Config c = Configuration.load();
        if (file != null) {
            if (!Files.isRegularFile(file)) {
                throw new BadInput("--config: " + file + ": no such file");
            }
            Config parsed;
            try {
                parsed = ConfigFactory.parseFile(file.toFile());
            } catch (ConfigException e) {
                throw new BadInput(file + ": " + e.getMessage());
            }
            KnownKeys.check(parsed, file.toString(), true);
            c = parsed.withFallback(c);
        }
        for (int i = sets.size() - 1; i >= 0; i--) {
            String kv = sets.get(i);
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new BadInput("--set " + kv + ": expected key=value");
            }
            String key = kv.substring(0, eq).strip();
            Config pair;
            try {
                // the pair is the origin of its value, so a later complaint about it (its type, a
                // substitution that does not resolve) names the pair
                pair = ConfigFactory.parseString(key + " = " + quoteIfNeeded(kv.substring(eq + 1).strip()),
                        ConfigParseOptions.defaults().setOriginDescription("--set " + kv));
            } catch (ConfigException e) {
                throw new BadInput("--set " + kv + ": " + withoutOrigin(e));
            }
            KnownKeys.check(pair, "--set " + kv, false);
            c = pair.withFallback(c);
        }
        try {
            return c.resolve();
        } catch (ConfigException e) {
            throw new BadInput((file == null ? "configuration" : file.toString()) + ": " + e.getMessage());
        }
    }

    /** The reason alone: the caller names the pair, which is also the exception's origin. */
    private static String withoutOrigin(ConfigException e) {
        String m = String.valueOf(e.getMessage());
        String o = e.origin() == null ? null : e.origin().description() + ": ";
        return o != null && m.startsWith(o) ? m.substring(o.length()) : m;
    }

    /**
     * A value as HOCON when it looks like a number, boolean, duration or size, or starts a list,
     * object or quoted string (so a malformed one is refused here, naming the pair); anything else
     * as a string.
     */
    private static String quoteIfNeeded(String v) {
        if (v.isEmpty() || v.matches("-?[0-9.eE+]+|true|false|[0-9]+\\s*[a-z]+|[\\[{\"].*")) {
            return v.isEmpty() ? "\"\"" : v;
        }
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
