package io.tailguard.actors.runtime;

import io.tailguard.model.io.AtomicFiles;
import io.tailguard.rollout.sparse.Schedule;
import org.slf4j.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * The controller's files beside the checkpoint store. controller/state.json ({@link ControllerState})
 * is written through a {@link StateWriter} off the actor's thread, shortly after a change, one write
 * for a burst of changes ({@link #changed} says when the caller must schedule one). controller/schedule.conf
 * is written on the caller's thread whenever the schedule has a new version, before any lease can
 * carry that version: a controller restarted after a kill resumes the newest version a worker may
 * have seen, and never issues a version number again with other budgets (schedule changes are rare,
 * once per window at most). {@link #flush} writes what is pending, when the controller stops.
 * A write of either file that fails (state.json after its retries; schedule.conf, tried again every
 * window) is one failure of the files' {@link FailureStreak}, which {@code status} shows and which
 * stops the run after tailguard.controller.max-state-write-failures in a row.
 * controller/option-schedules.json holds each compressed option's schedule (by its format's label),
 * written like schedule.conf when one of them has a new version, so that a restarted controller
 * starts each format on its own schedule again rather than on the plain policy's.
 */
final class ControllerFiles {
    /** How long a change waits for more before the state file is written: a burst of leases is one write. */
    static final Duration DELAY = Duration.ofMillis(200);

    private final RunSettings s;
    private final StateWriter writer;
    private final FailureStreak failures;
    private boolean pending;
    private long scheduleVersion = -1;
    private java.util.Map<String, Long> optionVersions = java.util.Map.of();

    /** One try per write; failures are logged only. */
    ControllerFiles(RunSettings s, Executor io, Logger log) {
        this(s, io, log, StateWriter.Retry.NONE, FailureStreak.unbounded(log));
    }

    ControllerFiles(RunSettings s, Executor io, Logger log, StateWriter.Retry retry, FailureStreak failures) {
        this.s = s;
        this.failures = failures;
        this.writer = new StateWriter(io, log, retry, failures);
    }

    /** The writes' failures so far, for {@code status}. */
    FailureStreak.View failures() {
        return failures.view();
    }

    /** Where the controller keeps its current schedule, so a restarted singleton resumes it. */
    static Path schedule(RunSettings s) {
        return s.train().out().resolve("controller").resolve("schedule.conf");
    }

    /** The state changed: true when a write must be scheduled (in {@link #DELAY}), false when one is already. */
    boolean changed() {
        boolean schedule = !pending;
        pending = true;
        return schedule;
    }

    /**
     * The state to write now (off the caller's thread); completes once it is written, exceptionally
     * (an IOException naming the file) when the write failed.
     */
    CompletableFuture<Void> state(ControllerState st) {
        pending = false;
        return writer.submit(ControllerState.file(s), st::json);
    }

    /**
     * The current schedule: written now, on the caller's thread, when its version is new (so it is on
     * disk before a lease carries it). A failed write is logged at error level and tried again at
     * the next call (every window).
     */
    void schedule(Schedule sched) {
        if (sched.version() == scheduleVersion) {
            return;
        }
        Path file = schedule(s);
        try {
            AtomicFiles.writeString(file, sched.toHocon());
            scheduleVersion = sched.version();
            failures.succeeded();
        } catch (IOException | RuntimeException e) {
            failures.failed("cannot write schedule v" + sched.version() + " to " + file + " (" + FailureStreak.reason(e)
                    + "): a controller restarted now would resume an older version; tried again next window");
        }
    }

    /** Where the controller keeps its compressed options' schedules. */
    static Path optionSchedules(RunSettings s) {
        return s.train().out().resolve("controller").resolve("option-schedules.json");
    }

    /**
     * The compressed options' schedules: written now, on the caller's thread, when one has a new
     * version or an option is new. A failed write counts and is tried again as {@link #schedule}'s.
     */
    void optionSchedules(java.util.Map<String, Schedule> schedules) {
        java.util.Map<String, Long> versions = new java.util.LinkedHashMap<>();
        schedules.forEach((label, sched) -> versions.put(label, sched.version()));
        if (versions.equals(optionVersions)) {
            return;
        }
        Path file = optionSchedules(s);
        com.google.gson.JsonObject o = new com.google.gson.JsonObject();
        schedules.forEach((label, sched) -> o.addProperty(label, sched.toHocon()));
        try {
            AtomicFiles.writeString(file, o.toString());
            optionVersions = versions;
            failures.succeeded();
        } catch (IOException | RuntimeException e) {
            failures.failed("cannot write the compressed options' schedules to " + file + " (" + FailureStreak.reason(e)
                    + "): a controller restarted now would start them on the plain policy's; tried again next window");
        }
    }

    /** The compressed options' schedules a restarted controller resumes (empty when none were written). */
    static java.util.Map<String, Schedule> readOptionSchedules(RunSettings s) {
        Path file = optionSchedules(s);
        java.util.Map<String, Schedule> out = new java.util.LinkedHashMap<>();
        if (!java.nio.file.Files.isRegularFile(file)) {
            return out;
        }
        try {
            com.google.gson.JsonObject o = com.google.gson.JsonParser.parseString(java.nio.file.Files.readString(file)).getAsJsonObject();
            for (String label : o.keySet()) {
                out.put(label, Schedule.parseString(o.get(label).getAsString(), file + " (" + label + ")"));
            }
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + ": unreadable compressed options' schedules (" + e.getMessage()
                    + "); remove it to start them on the plain policy's schedule");
        }
        return out;
    }

    /** Writes everything pending now, on the caller's thread, and waits for a write in flight. */
    void flush() {
        writer.flush();
    }
}
