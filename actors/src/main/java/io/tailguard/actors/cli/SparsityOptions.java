package io.tailguard.actors.cli;

import io.tailguard.model.KvCache;
import io.tailguard.rollout.sparse.Budgets;
import io.tailguard.rollout.sparse.Schedule;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --schedule FILE | --budget N: the exclusive argument group of eval and mismatch. */
final class SparsityOptions {
    @Option(names = "--schedule", description = "A schedule file (format: config/schedules/README.md).")
    Path schedule;

    @Option(names = "--budget", description = "One KV budget in tokens at every length (a multiple of " + KvCache.PAGE
            + ", >= " + Budgets.MIN_BUDGET + "; the default dense layers).")
    Integer budget;

    /** The schedule; errors name the file, the key and the reason. */
    Schedule resolve() {
        if (schedule != null) {
            return Schedule.parse(schedule);
        }
        String problem = Budgets.problem(budget);
        if (problem != null) {
            throw new BadInput("--budget: budget " + budget + " " + problem);
        }
        return Schedule.fixed(budget);
    }

    /** Dense when the group was not given. */
    static Schedule resolveOrDense(SparsityOptions s) {
        return s == null ? Schedule.dense() : s.resolve();
    }

    String describe() {
        return schedule != null ? schedule.toString() : "fixed budget " + budget;
    }
}
