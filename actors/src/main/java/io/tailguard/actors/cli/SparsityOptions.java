package io.tailguard.actors.cli;

import io.tailguard.rollout.sparse.Schedule;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --schedule FILE | --budget N: the exclusive argument group of eval and mismatch. */
final class SparsityOptions {
    @Option(names = "--schedule", description = "A schedule file (format: config/schedules/README.md).")
    Path schedule;

    @Option(names = "--budget", description = "One KV budget in tokens at every length (a multiple of 16, >= 48).")
    Integer budget;

    /** The schedule; errors name the file, the key and the reason. */
    Schedule resolve() {
        if (schedule != null) {
            return Schedule.parse(schedule);
        }
        try {
            return Schedule.fixed(budget);
        } catch (IllegalArgumentException e) {
            throw new BadInput("--" + e.getMessage());
        }
    }

    /** Dense when the group was not given. */
    static Schedule resolveOrDense(SparsityOptions s) {
        return s == null ? Schedule.dense() : s.resolve();
    }

    String describe() {
        return schedule != null ? schedule.toString() : "fixed budget " + budget;
    }
}
