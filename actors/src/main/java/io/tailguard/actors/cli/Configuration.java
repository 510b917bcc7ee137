package io.tailguard.actors.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The HOCON configuration: every module's reference.conf, overridden by the file named by the
 * system property tailguard.config or else $TAILGUARD_CONFIG, when set. A key in that file that no
 * reference.conf defines is bad input ({@link KnownKeys}).
 */
final class Configuration {
    private Configuration() {}

    public static Config load() {
        Config reference = ConfigFactory.load();
        String file = System.getProperty("tailguard.config", System.getenv("TAILGUARD_CONFIG"));
        if (file == null || file.isBlank()) {
            return reference;
        }
        Path p = Path.of(file);
        if (!Files.isRegularFile(p)) {
            throw new BadInput("TAILGUARD_CONFIG: " + p + ": no such file");
        }
        try {
            Config parsed = ConfigFactory.parseFile(p.toFile());
            KnownKeys.check(parsed, p.toString(), true);
            return parsed.withFallback(reference).resolve();
        } catch (ConfigException e) {
            throw new BadInput(p + ": " + e.getMessage());
        }
    }
}
