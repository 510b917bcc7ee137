package io.tailguard.rollout.tasks;

import java.util.Locale;

/**
 * A built-in task as a run or a command asks for it: its name, the length of its completion and its
 * reward rule, checked once here so that every place a run builds the task (prompts, calibration,
 * evaluation, compression) builds the same one. {@link #at} gives the task at a context length.
 *
 * <p>Messages name the knobs as the command line and the configuration do ({@code task},
 * {@code task-steps}, {@code reward}), so a caller only prefixes its flag dashes or its key's section.
 *
 * @param name   a built-in task ({@link Tasks#builtinNames()})
 * @param steps  steps a completion writes, for tasks with {@link Tasks#hasSteps}; 0: the task's default
 *               for the context
 * @param reward exact match, or (tasks with steps only) the share of steps right
 */
public record TaskSpec(String name, int steps, Reward reward) {

    /** How a completion is rewarded. pass@1 counts exact matches either way (reward 1). */
    public enum Reward {
        /** 1 for a completion exactly right, else 0. */
        EXACT,
        /** The share of steps right (1 only when exactly right). */
        GRADED;

        /** "exact" or "graded" (any case). */
        public static Reward parse(String s) {
            String v = s == null ? "" : s.strip().toLowerCase(Locale.ROOT);
            return switch (v) {
                case "exact" -> EXACT;
                case "graded" -> GRADED;
                default -> throw new IllegalArgumentException("reward: must be exact or graded, got \"" + s + "\"");
            };
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * @throws IllegalArgumentException an unknown name ("task: ..."), negative steps ("task-steps: ..."),
     *                                  or steps or a graded reward for a task with a fixed completion
     *                                  ("task-steps: ..." / "reward: ...", naming the tasks that take them)
     */
    public TaskSpec {
        if (name == null || !Tasks.builtinNames().contains(name)) {
            throw new IllegalArgumentException("task: unknown built-in task \"" + name + "\"; known: "
                    + String.join(", ", Tasks.builtinNames())
                    + (name != null && Tasks.datasetNames().contains(name) ? " (" + name + " is a dataset task)" : ""));
        }
        if (reward == null) {
            throw new IllegalArgumentException("reward: must be exact or graded, got null");
        }
        if (steps < 0) {
            throw new IllegalArgumentException("task-steps: must be >= 0 (0: the task's default), got " + steps);
        }
        if (!Tasks.hasSteps(name)) {
            String withSteps = String.join(", ", Tasks.builtinNames().stream().filter(Tasks::hasSteps).toList());
            if (steps != 0) {
                throw new IllegalArgumentException("task-steps: task " + name + " has a fixed completion; steps apply to "
                        + withSteps + " only");
            }
            if (reward != Reward.EXACT) {
                throw new IllegalArgumentException("reward: task " + name + " has a fixed completion and an exact reward; "
                        + "graded applies to " + withSteps + " only");
            }
        }
    }

    /** The task with its default length and the exact reward. */
    public static TaskSpec of(String name) {
        return new TaskSpec(name, 0, Reward.EXACT);
    }

    /** Whether this is {@link #of}'s spec: the task's default steps and the exact reward. */
    public boolean isDefault() {
        return steps == 0 && reward == Reward.EXACT;
    }

    /**
     * The task with prompts of about {@code contextTokens} tokens.
     *
     * @throws IllegalArgumentException a context too short for the task (or for its steps)
     */
    public Task at(int contextTokens) {
        return Tasks.builtin(name, contextTokens, steps, reward == Reward.GRADED);
    }
}
