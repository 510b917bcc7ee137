package io.tailguard.actors.runtime;

import io.tailguard.model.io.AtomicFiles;
import org.slf4j.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * Writes the controller's files off the actor's thread, on an executor meant for blocking work (the
 * tailguard.blocking-io dispatcher): each write is atomic (temporary file, then rename), and writes
 * of one file coalesce: a burst of submissions while one is being written ends in one more write,
 * of the newest text. {@link #flush} writes what is pending on the caller's thread and waits for a
 * write in flight (the controller calls it when it stops, so the last state is on disk before the
 * process exits); a write never replaces a newer one of the same file.
 *
 * <p>A write that fails is tried again ({@link Retry}: so many tries in all, waiting a backoff that
 * doubles after each), on the same thread: a disk that is briefly full or a directory briefly
 * unwritable does not fail the write. One that fails every try completes its futures exceptionally
 * and is one failure of the {@link FailureStreak} (logged, counted, and after enough in a row the
 * run stops); a write that succeeds ends the streak.
 */
final class StateWriter {
    /** A text to write, and who waits for it to be written (those of the texts it replaced too). */
    private record Pending(long seq, Supplier<String> text, List<CompletableFuture<Void>> written) {}

    /** How a blocking wait is made (a test records the waits instead). */
    interface Sleeper {
        void sleep(Duration d) throws InterruptedException;
    }

    /** attempts: tries of one write in all (≥ 1); backoff: the wait before the first retry, doubling. */
    record Retry(int attempts, Duration backoff, Sleeper sleeper) {
        static final Retry NONE = new Retry(1, Duration.ZERO, d -> { });

        static Retry of(RunSettings.Bounds b) {
            return new Retry(b.stateWriteAttempts(), b.stateWriteBackoff(), d -> Thread.sleep(d.toMillis()));
        }

        /** The wait after the attempt-th try failed (1-based): backoff, 2 backoff, 4 backoff, ... */
        Duration after(int attempt) {
            return backoff.multipliedBy(1L << Math.min(attempt - 1, 20));
        }
    }

    private final Executor io;
    private final Logger log;
    private final Retry retry;
    private final FailureStreak failures;
    private final Object lock = new Object();
    private final Map<Path, Pending> pending = new LinkedHashMap<>();
    private final Map<Path, Long> written = new HashMap<>();
    private long seq;
    private boolean draining;
    /** Batches taken from pending and not yet written (by the drain, or by a flush). */
    private int inFlight;

    /** One try per write, failures logged only. */
    StateWriter(Executor io, Logger log) {
        this(io, log, Retry.NONE, FailureStreak.unbounded(log));
    }

    StateWriter(Executor io, Logger log, Retry retry, FailureStreak failures) {
        this.io = io;
        this.log = log;
        this.retry = retry;
        this.failures = failures;
    }

    /**
     * Writes the file soon, off this thread; text is computed there (it must read only immutable
     * data). Completes when it, or a newer text of the file, is written; completes exceptionally
     * (an IOException naming the file, logged at error level) when that write failed.
     */
    CompletableFuture<Void> submit(Path file, Supplier<String> text) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        synchronized (lock) {
            List<CompletableFuture<Void>> waiting = new ArrayList<>();
            Pending replaced = pending.get(file);
            if (replaced != null) {
                waiting.addAll(replaced.written());
            }
            waiting.add(done);
            pending.put(file, new Pending(++seq, text, waiting));
            if (draining) {
                return done;
            }
            draining = true;
        }
        try {
            io.execute(this::drain);
        } catch (RejectedExecutionException e) {
            drain(); // the executor is shutting down: write here
        }
        return done;
    }

    /**
     * Writes everything pending now, on the caller's thread, and returns once no write is in flight
     * and nothing is pending: what was submitted before is on disk (or its write failed, logged).
     */
    void flush() {
        while (true) {
            Map<Path, Pending> now;
            synchronized (lock) {
                while (pending.isEmpty() && inFlight > 0) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        log.error("interrupted while waiting for the controller's files to be written");
                        return;
                    }
                }
                if (pending.isEmpty()) {
                    return;
                }
                now = take();
            }
            writeAll(now);
        }
    }

    private void drain() {
        while (true) {
            Map<Path, Pending> now;
            synchronized (lock) {
                if (pending.isEmpty()) {
                    draining = false;
                    return;
                }
                now = take();
            }
            writeAll(now);
        }
    }

    /** Takes what is pending, as one batch in flight (holding lock). */
    private Map<Path, Pending> take() {
        Map<Path, Pending> now = new LinkedHashMap<>(pending);
        pending.clear();
        inFlight++;
        return now;
    }

    private void writeAll(Map<Path, Pending> batch) {
        try {
            batch.forEach(this::write);
        } finally {
            synchronized (lock) {
                inFlight--;
                lock.notifyAll();
            }
        }
    }

    /**
     * One write, unless a newer text of the same file is written already (one write at a time),
     * tried again after a failure as {@link #retry} says.
     */
    private synchronized void write(Path file, Pending p) {
        if (written.getOrDefault(file, 0L) >= p.seq()) {
            p.written().forEach(f -> f.complete(null));
            return;
        }
        for (int attempt = 1; ; attempt++) {
            try {
                AtomicFiles.writeString(file, p.text().get());
                written.put(file, p.seq());
                failures.succeeded();
                p.written().forEach(f -> f.complete(null));
                return;
            } catch (IOException | RuntimeException e) {
                boolean last = attempt >= retry.attempts();
                if (!last) {
                    Duration wait = retry.after(attempt);
                    log.warn("cannot write {} (try {} of {}): {}; trying again in {} ms", file, attempt, retry.attempts(),
                            FailureStreak.reason(e), wait.toMillis());
                    try {
                        retry.sleeper().sleep(wait);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        last = true;
                    }
                }
                if (last) {
                    IOException failed = new IOException("cannot write " + file + ": " + FailureStreak.reason(e), e);
                    failures.failed("cannot write " + file + (attempt > 1 ? " after " + attempt + " tries" : "") + ": "
                            + FailureStreak.reason(e));
                    p.written().forEach(f -> f.completeExceptionally(failed));
                    return;
                }
            }
        }
    }
}
