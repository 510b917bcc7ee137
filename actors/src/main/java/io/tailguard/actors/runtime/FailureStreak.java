package io.tailguard.actors.runtime;

import org.slf4j.Logger;

import java.util.function.Consumer;

/**
 * Failures of one kind of job in a row, against a bound: the controller's file writes, the
 * compression jobs. Each failure is logged at error level with its place in the streak, and counted
 * (the caller's metric); a success ends the streak; the bound-th failure in a row stops the run
 * ({@link RunStop}) with one line naming what failed, how often, the key that sets the bound and the
 * last error. A job that fails now and then runs on; one that keeps failing (a full or read-only
 * disk) stops the run instead of running on without what it was for.
 */
final class FailureStreak {
    /** What {@code status} shows: failures in all, in a row now, the bound (0: none), the last error (null: none yet). */
    record View(long total, int inRow, int bound, String lastError) {}

    private final String key;
    private final int bound;
    private final Logger log;
    private final Runnable counted;
    private final Consumer<String> stop;
    private long total;
    private int inRow;
    private String last;

    /**
     * @param key     the configuration key of the bound, named in the log and the stop line
     * @param bound   failures in a row that stop the run (Integer.MAX_VALUE: never)
     * @param counted called once per failure (a metric)
     * @param stop    called once, with the line, when the streak reaches the bound
     */
    FailureStreak(String key, int bound, Logger log, Runnable counted, Consumer<String> stop) {
        this.key = key;
        this.bound = bound;
        this.log = log;
        this.counted = counted;
        this.stop = stop;
    }

    /** A streak that is logged but never stops the run. */
    static FailureStreak unbounded(Logger log) {
        return new FailureStreak(null, Integer.MAX_VALUE, log, () -> { }, line -> { });
    }

    /** One more failure, {@code error} saying what failed and why; true when it stopped the run. */
    boolean failed(String error) {
        String line = null;
        int n;
        synchronized (this) {
            total++;
            n = ++inRow;
            last = error;
            if (n == bound) {
                line = "the run stops: " + error + " (" + n + " failures in a row; " + key + " = " + bound + ")";
            }
        }
        counted.run();
        if (bound == Integer.MAX_VALUE) {
            log.error("{}", error);
        } else if (n < bound) {
            log.error("{} ({} of {} failures in a row before the run stops, {})", error, n, bound, key);
        } else {
            log.error("{} ({} failures in a row; the run stops, {} = {})", error, n, key, bound);
        }
        if (line != null) {
            stop.accept(line);
        }
        return line != null;
    }

    /** A success: the streak ends. */
    void succeeded() {
        int was;
        synchronized (this) {
            was = inRow;
            inRow = 0;
        }
        if (was > 0) {
            log.info("a success after {} failures in a row{}", was, key == null ? "" : " (" + key + " counts from 0 again)");
        }
    }

    /** An exception as a reason: a file-system one with its kind (its message is often the path alone). */
    static String reason(Throwable e) {
        return e instanceof java.nio.file.FileSystemException ? e.getClass().getSimpleName() + ": " + e.getMessage()
                : String.valueOf(e.getMessage());
    }

    synchronized View view() {
        return new View(total, inRow, bound == Integer.MAX_VALUE ? 0 : bound, last);
    }
}
