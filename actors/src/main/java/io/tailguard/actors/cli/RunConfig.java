package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The configuration of `train` and `node`: `--set key=value` pairs over the `--config` file over
 * $TAILGUARD_CONFIG over every reference.conf. A missing file or a malformed pair is bad input.
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
            try {
                c = ConfigFactory.parseFile(file.toFile()).withFallback(c);
            } catch (ConfigException e) {
                throw new BadInput(file + ": " + e.getMessage());
            }
        }
        for (int i = sets.size() - 1; i >= 0; i--) {
            String kv = sets.get(i);
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new BadInput("--set " + kv + ": expected key=value");
            }
            String key = kv.substring(0, eq).strip();
            try {
                c = ConfigFactory.parseString(key + " = " + quoteIfNeeded(kv.substring(eq + 1).strip())).withFallback(c);
            } catch (ConfigException e) {
                throw new BadInput("--set " + kv + ": " + e.getMessage());
            }
        }
        try {
            return c.resolve();
        } catch (ConfigException e) {
            throw new BadInput((file == null ? "configuration" : file.toString()) + ": " + e.getMessage());
        }
    }

    private static String quoteIfNeeded(String v) {
        if (v.isEmpty() || v.matches("-?[0-9.eE+]+|true|false|[0-9]+\\s*[a-z]+|\\[.*]|\".*\"")) {
            return v.isEmpty() ? "\"\"" : v;
        }
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
