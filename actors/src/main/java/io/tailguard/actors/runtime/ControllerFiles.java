package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;
import org.slf4j.Logger;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Executor;

/**
 * The controller's files beside the checkpoint store, written through a {@link StateWriter} off the
 * actor's thread: controller/state.json ({@link ControllerState}) shortly after a change, one write
 * for a burst of changes ({@link #changed} says when the caller must schedule one), and
 * controller/schedule.conf whenever the schedule has a new version. {@link #flush} writes what is
 * pending on the caller's thread, when the controller stops.
 */
final class ControllerFiles {
    /** How long a change waits for more before the state file is written: a burst of leases is one write. */
    static final Duration DELAY = Duration.ofMillis(200);

    private final RunSettings s;
    private final StateWriter writer;
    private boolean pending;
    private long scheduleVersion = -1;

    ControllerFiles(RunSettings s, Executor io, Logger log) {
        this.s = s;
        this.writer = new StateWriter(io, log);
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

    /** The state to write now (off the caller's thread); completes once it is written. */
    java.util.concurrent.CompletableFuture<Void> state(ControllerState st) {
        pending = false;
        return writer.submit(ControllerState.file(s), st::json);
    }

    /** The current schedule: written when its version is new. */
    void schedule(Schedule sched) {
        if (sched.version() != scheduleVersion) {
            String text = sched.toHocon();
            writer.submit(schedule(s), () -> text);
            scheduleVersion = sched.version();
        }
    }

    /** Writes everything pending now, on the caller's thread. */
    void flush() {
        writer.flush();
    }
}
