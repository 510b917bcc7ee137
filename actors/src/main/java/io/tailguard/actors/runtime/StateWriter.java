package io.tailguard.actors.runtime;

import io.tailguard.model.io.AtomicFiles;
import org.slf4j.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * Writes the controller's files off the actor's thread, on an executor meant for blocking work (the
 * tailguard-blocking-io dispatcher): each write is atomic (temporary file, then rename), and writes
 * of one file coalesce: a burst of submissions while one is being written ends in one more write,
 * of the newest text. {@link #flush} writes what is pending on the caller's thread (the controller
 * calls it when it stops); a write never replaces a newer one of the same file.
 */
final class StateWriter {
    private record Pending(long seq, Supplier<String> text) {}

    private final Executor io;
    private final Logger log;
    private final Object lock = new Object();
    private final Map<Path, Pending> pending = new LinkedHashMap<>();
    private final Map<Path, Long> written = new HashMap<>();
    private long seq;
    private boolean draining;

    StateWriter(Executor io, Logger log) {
        this.io = io;
        this.log = log;
    }

    /** Writes the file soon, off this thread; text is computed there (it must read only immutable data). */
    void submit(Path file, Supplier<String> text) {
        synchronized (lock) {
            pending.put(file, new Pending(++seq, text));
            if (draining) {
                return;
            }
            draining = true;
        }
        io.execute(this::drain);
    }

    /** Writes everything pending now, on the caller's thread. */
    void flush() {
        Map<Path, Pending> now;
        synchronized (lock) {
            now = new LinkedHashMap<>(pending);
            pending.clear();
        }
        now.forEach(this::write);
    }

    private void drain() {
        while (true) {
            Map<Path, Pending> now;
            synchronized (lock) {
                if (pending.isEmpty()) {
                    draining = false;
                    return;
                }
                now = new LinkedHashMap<>(pending);
                pending.clear();
            }
            now.forEach(this::write);
        }
    }

    /** One write, unless a newer text of the same file is written already (one write at a time). */
    private synchronized void write(Path file, Pending p) {
        if (written.getOrDefault(file, 0L) >= p.seq()) {
            return;
        }
        try {
            AtomicFiles.writeString(file, p.text().get());
            written.put(file, p.seq());
        } catch (IOException | RuntimeException e) {
            log.warn("cannot write {}: {}", file, e.getMessage());
        }
    }
}
