package io.tailguard.actors.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Live tuning by editing the configuration file: the file is polled every second; when it changes,
 * its live keys ({@link LiveKey}) that differ from what was last applied go to
 * the controller as one {@link Controller.Tune} (validated there: all or nothing). A file that does
 * not parse, one that names a key no reference.conf defines ({@link ConfigKeys}, as at start: a typo
 * such as tailguard.controller.tua would otherwise be ignored while the operator thinks it applied),
 * or a refused change, is logged with the reason and the running values stay.
 */
final class ConfigWatcher implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ConfigWatcher.class);
    private final ScheduledExecutorService exec = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "tailguard-config-watch");
        t.setDaemon(true);
        return t;
    });
    private final Path file;
    private final ActorSystem<?> system;
    private final ActorRef<Controller.Command> controller;
    private FileTime seen;
    private Map<String, String> applied;

    public ConfigWatcher(Path file, ActorSystem<?> system, ActorRef<Controller.Command> controller) {
        this(file, system, controller, true);
    }

    /** polled: every second (false: only when a test calls {@link #poll}). */
    ConfigWatcher(Path file, ActorSystem<?> system, ActorRef<Controller.Command> controller, boolean polled) {
        this.file = file;
        this.system = system;
        this.controller = controller;
        this.seen = mtime();
        this.applied = tunables(read());
        if (polled) {
            exec.scheduleWithFixedDelay(this::poll, 1, 1, TimeUnit.SECONDS);
        }
    }

    private FileTime mtime() {
        try {
            return Files.getLastModifiedTime(file);
        } catch (Exception e) {
            return null;
        }
    }

    private Config read() {
        try {
            return ConfigFactory.parseFile(file.toFile());
        } catch (ConfigException e) {
            LOG.warn("{}: does not parse, running values stay: {}", file, e.getMessage());
            return null;
        }
    }

    /** The file's live keys ({@link LiveKey}), by full name, as the file writes them. */
    static Map<String, String> tunables(Config c) {
        Map<String, String> m = new LinkedHashMap<>();
        if (c == null) {
            return m;
        }
        for (LiveKey k : LiveKey.values()) {
            if (c.hasPath(k.key)) {
                m.put(k.key, String.valueOf(c.getValue(k.key).unwrapped()));
            }
        }
        return m;
    }

    /** The refusal of an edit that names a key no reference.conf defines (the key, the file and line), or null. */
    static String unknownKey(Config c, Path file) {
        try {
            ConfigKeys.check(c, file.toString(), true);
            return null;
        } catch (IllegalArgumentException e) {
            return file + " changed, refused: " + e.getMessage() + "; nothing in it applied, the running values stay";
        }
    }

    void poll() {
        FileTime now = mtime();
        if (now == null || now.equals(seen)) {
            return;
        }
        seen = now;
        Config c = read();
        if (c == null) {
            return;
        }
        String unknown = unknownKey(c, file);
        if (unknown != null) {
            LOG.warn("{}", unknown);
            return;
        }
        Map<String, String> next = tunables(c);
        Map<String, String> changed = new LinkedHashMap<>();
        next.forEach((k, v) -> {
            if (!v.equals(applied.get(k))) {
                changed.put(k, v);
            }
        });
        if (changed.isEmpty()) {
            return;
        }
        try {
            Controller.TuneResult r = AskPattern.<Controller.Command, Controller.TuneResult>ask(controller,
                    reply -> new Controller.Tune(changed.keySet().toArray(String[]::new), changed.values().toArray(String[]::new), true, reply),
                    Duration.ofSeconds(10), system.scheduler()).toCompletableFuture().get(15, TimeUnit.SECONDS);
            if (r.accepted()) {
                applied = next;
                LOG.info("{} changed: {}", file, r.message());
            } else {
                LOG.warn("{} changed, refused: {}", file, r.message());
            }
        } catch (Exception e) {
            LOG.warn("{} changed, but the controller did not answer: {}", file, e.getMessage());
        }
    }

    @Override
    public void close() {
        exec.shutdownNow();
    }
}
