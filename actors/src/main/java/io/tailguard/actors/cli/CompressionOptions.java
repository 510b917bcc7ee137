package io.tailguard.actors.cli;

import io.tailguard.recipes.CompressionData;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;
import io.tailguard.rollout.tasks.Tasks;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Map;

/** The flags of every {@code compress} method's data: the task, its prompts, the seed ({@link CompressionData}). */
final class CompressionOptions {
    @Option(names = "--task", defaultValue = "kv-recall", description = "Built-in task whose prompts calibrate, measure KL and pass@1 (default: ${DEFAULT-VALUE}).")
    String task;

    @Mixin
    TaskKnobs knobs;

    @Option(names = "--context", defaultValue = "128", description = "Prompt length of the task (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--calibration", defaultValue = "64", description = "Calibration prompts (default: ${DEFAULT-VALUE}).")
    int calibration;

    @Option(names = "--held-out", defaultValue = "16", description = "Held-out prompts for the KL (default: ${DEFAULT-VALUE}).")
    int heldOut;

    @Option(names = "--eval-n", defaultValue = "32", description = "Prompts for pass@1 of the compressed model; 0 skips (default: ${DEFAULT-VALUE}).")
    int evalN;

    @Option(names = "--seed", defaultValue = "7", description = "Seed of the method's randomness and of the calibration prompts (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Checks the options before any model is loaded: the data of the task at --context. */
    CompressionData validate() {
        if (!Tasks.builtinNames().contains(task)) {
            throw new BadInput("--task: compress takes a built-in task (" + String.join(", ", Tasks.builtinNames()) + ")");
        }
        if (heldOut < 1 || evalN < 0 || calibration < 0) {
            throw new BadInput("--held-out must be >= 1, --calibration and --eval-n >= 0");
        }
        TaskSpec spec = knobs.spec(task);
        Task t;
        try {
            t = spec.at(context);
            t.prompt(seed, 0);
        } catch (IllegalArgumentException e) {
            throw new BadInput("--context: " + e.getMessage());
        }
        return new CompressionData(t, calibration, heldOut, evalN, seed);
    }

    /** The result's "kl", and with an evaluation "pass_at_1" and "pass_at_1_original". */
    static void put(Map<String, Object> r, CompressionData.Quality q) {
        r.put("kl", q.kl());
        if (q.passAt1() != null) {
            r.put("pass_at_1", q.passAt1());
            r.put("pass_at_1_original", q.passAt1Original());
        }
    }
}
