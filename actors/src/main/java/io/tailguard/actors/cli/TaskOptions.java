package io.tailguard.actors.cli;

import io.tailguard.rollout.tasks.DatasetTask;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --task, its knobs (--task-steps, --reward) and --dataset, shared by eval, mismatch and calibrate. */
final class TaskOptions {
    @Option(names = "--task", required = true, completionCandidates = BuiltinTaskNames.class,
            description = "Built-in task (${COMPLETION-CANDIDATES}) or dataset task (math, code; needs --dataset).")
    String task;

    @Mixin
    TaskKnobs knobs;

    @Option(names = "--dataset", description = "JSON-lines file of a dataset task (math: {id,problem,answer}; code: {id,problem,tests}).")
    Path dataset;

    boolean isDataset() {
        return Tasks.datasetNames().contains(task);
    }

    /** Checks the combination before any model is loaded. */
    void validate() {
        if (isDataset() && dataset == null) {
            throw new BadInput("--task " + task + " needs --dataset FILE");
        }
        if (!isDataset() && !Tasks.builtinNames().contains(task)) {
            throw new BadInput("--task: unknown task \"" + task + "\"; known: "
                    + String.join(", ", Tasks.builtinNames()) + ", " + String.join(", ", Tasks.datasetNames()));
        }
        if (!isDataset() && dataset != null) {
            throw new BadInput("--dataset: " + task + " is a built-in task and takes no dataset file");
        }
        if (isDataset()) {
            knobs.refuseForDataset(task);
        } else {
            knobs.spec(task);
        }
    }

    /**
     * The task: a built-in one at this context length, or the dataset (its skipped lines are
     * warned on stderr with their count; a missing or empty file is bad input).
     */
    Task resolve(int context) {
        validate();
        if (!isDataset()) {
            return knobs.spec(task).at(context);
        }
        DatasetTask t = Tasks.fromDataset(task, dataset);
        if (t.skippedCount() > 0) {
            for (String w : t.skipped()) {
                System.err.println("warning: " + w);
            }
            System.err.printf("warning: %s: %d line%s skipped, %d records read%n", dataset, t.skippedCount(),
                    t.skippedCount() == 1 ? "" : "s", t.size().orElse(0));
        }
        return t;
    }
}
