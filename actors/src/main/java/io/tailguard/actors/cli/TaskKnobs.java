package io.tailguard.actors.cli;

import io.tailguard.rollout.tasks.TaskSpec;
import picocli.CommandLine.Option;

import java.util.List;

/** --task-steps and --reward: a built-in task's length and reward rule, beside every --task. */
final class TaskKnobs {
    /** The spec's parameters that are these flags (its messages name them so). */
    static final List<String> FLAGS = List.of("task-steps", "reward");

    @Option(names = "--task-steps", defaultValue = "0", paramLabel = "K",
            description = "Steps a completion writes, for tasks with steps (kv-trace: queried rows; copy: chunks of 8 symbols); 0: the task's default "
                    + "for the context (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--reward", defaultValue = "exact", paramLabel = "exact|graded",
            description = "exact (1 for an exact match, else 0) or graded (the share of steps right; tasks with steps only); "
                    + "pass@1 counts exact matches either way (default: ${DEFAULT-VALUE}).")
    String reward;

    /**
     * The built-in task {@code task} with these knobs; a bad value, or a knob its task does not take, is
     * bad input naming the flag.
     */
    TaskSpec spec(String task) {
        try {
            return new TaskSpec(task, steps, TaskSpec.Reward.parse(reward));
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, FLAGS);
        }
    }

    /** A dataset task takes neither knob: set away from its default, one is bad input naming its flag. */
    void refuseForDataset(String task) {
        TaskSpec.Reward r;
        try {
            r = TaskSpec.Reward.parse(reward);
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, FLAGS);
        }
        if (steps != 0) {
            throw new BadInput("--task-steps: " + task + " is a dataset task; steps apply to built-in tasks with steps only");
        }
        if (r != TaskSpec.Reward.EXACT) {
            throw new BadInput("--reward: " + task + " is a dataset task; its verifier rewards exact answers only");
        }
    }
}
