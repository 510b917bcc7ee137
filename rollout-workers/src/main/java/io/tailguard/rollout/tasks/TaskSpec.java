package io.tailguard.rollout.tasks;

import io.tailguard.model.tokenizer.ChatFormat;

import java.nio.file.Path;
import java.util.Locale;

/**
 * A built-in task as a run or a command asks for it: its name, the length of its completion and its
 * reward rule, checked once here so that every place a run builds the task (prompts, calibration,
 * evaluation, compression) builds the same one. {@link #at} gives the task at a context length.
 *
 * <p>Messages name the knobs as the command line and the configuration do ({@code task},
 * {@code task-steps}, {@code reward}), so a caller only prefixes its flag dashes or its key's section.
 *
 * <p>A run may also train on a dataset task ({@link Tasks#datasetNames()}: math, code): then
 * {@code dataset} is its JSON-lines file, {@code maxNewTokens} the completion budget of its records
 * (they carry answers, not worked solutions, so nothing else sizes a completion; required, never
 * defaulted), and the knobs keep their defaults. {@code chat} is the checkpoint's chat template the
 * prompts are rendered with, or null for raw prompts.
 *
 * @param name         a built-in task ({@link Tasks#builtinNames()}), or a dataset task with {@code dataset}
 * @param steps        steps a completion writes, for tasks with {@link Tasks#hasSteps}; 0: the task's default
 *                     for the context
 * @param reward       exact match, or (tasks with steps only) the share of steps right
 * @param dataset      a dataset task's file, or null for a built-in task
 * @param maxNewTokens a dataset task's completion budget (&gt;= 1); 0 for a built-in task
 * @param chat         the chat format of the prompts, or null (raw)
 */
public record TaskSpec(String name, int steps, Reward reward, Path dataset, int maxNewTokens, ChatFormat chat) {

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
        if (dataset != null) {
            checkDataset(name, steps, reward, dataset, maxNewTokens);
        } else {
            checkBuiltin(name, steps, reward, maxNewTokens);
        }
    }

    private static void checkBuiltin(String name, int steps, Reward reward, int maxNewTokens) {
        if (name == null || !Tasks.builtinNames().contains(name)) {
            throw new IllegalArgumentException("task: unknown built-in task \"" + name + "\"; known: "
                    + String.join(", ", Tasks.builtinNames())
                    + (name != null && Tasks.datasetNames().contains(name) ? " (" + name + " is a dataset task)" : ""));
        }
        if (maxNewTokens != 0) {
            throw new IllegalArgumentException("max-new-tokens: task " + name + " is built in and sizes each completion by "
                    + "its worked solution; max-new-tokens applies to dataset tasks (" + String.join(", ", Tasks.datasetNames()) + ")");
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

    /** A built-in task with its knobs, raw prompts. */
    public TaskSpec(String name, int steps, Reward reward) {
        this(name, steps, reward, null, 0, null);
    }

    private static void checkDataset(String name, int steps, Reward reward, Path dataset, int maxNewTokens) {
        if (!Tasks.datasetNames().contains(name)) {
            throw new IllegalArgumentException(Tasks.builtinNames().contains(name)
                    ? "dataset: " + name + " is a built-in task and takes no dataset file; dataset tasks: "
                    + String.join(", ", Tasks.datasetNames())
                    : "task: unknown dataset task \"" + name + "\"; known: " + String.join(", ", Tasks.datasetNames()));
        }
        if (steps != 0) {
            throw new IllegalArgumentException("task-steps: " + name + " is a dataset task; steps apply to built-in tasks with steps only");
        }
        if (reward != Reward.EXACT) {
            throw new IllegalArgumentException("reward: " + name + " is a dataset task; its verifier rewards exact answers only");
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max-new-tokens: dataset task " + name + " needs a completion budget >= 1 "
                    + "(its records carry answers, not worked solutions), got " + maxNewTokens);
        }
    }

    /** A dataset task: {@code name} (math, code) from {@code file}, {@code maxNewTokens} new tokens a completion, raw prompts. */
    public static TaskSpec dataset(String name, Path file, int maxNewTokens) {
        return new TaskSpec(name, 0, Reward.EXACT, file, maxNewTokens, null);
    }

    /** The same task rendered through {@code chat} (null: raw prompts). */
    public TaskSpec withChat(ChatFormat chat) {
        return new TaskSpec(name, steps, reward, dataset, maxNewTokens, chat);
    }

    /** Whether this is a dataset task. */
    public boolean isDataset() {
        return dataset != null;
    }

    /** The task with its default length and the exact reward. */
    public static TaskSpec of(String name) {
        return new TaskSpec(name, 0, Reward.EXACT);
    }

    /** Whether this is {@link #of}'s spec: a built-in task with its default steps, the exact reward and raw prompts. */
    public boolean isDefault() {
        return steps == 0 && reward == Reward.EXACT && dataset == null && chat == null;
    }

    /**
     * The task with prompts of about {@code contextTokens} tokens, rendered through the chat format
     * if there is one. A dataset task's records keep their own lengths (the context is ignored) and
     * are read from the file at each call (its code verifier with the default sandbox).
     *
     * @throws IllegalArgumentException a context too short for the task (or for its steps); for a
     *                                  dataset, a missing or unreadable file or one without a valid record
     */
    public Task at(int contextTokens) {
        Task t = dataset != null ? Tasks.fromDataset(name, dataset).withMaxNewTokens(maxNewTokens)
                : Tasks.builtin(name, contextTokens, steps, reward == Reward.GRADED);
        return chat == null ? t : new ChatTask(t, chat);
    }
}
