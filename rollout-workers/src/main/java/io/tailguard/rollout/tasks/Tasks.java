package io.tailguard.rollout.tasks;

import java.nio.file.Path;
import java.util.List;

/** Where tasks come from: the built-in generated tasks by name, and dataset tasks from files. */
public final class Tasks {

    private static final List<String> BUILTIN = List.of(KvRecallTask.NAME, PointerChaseTask.NAME, MarkedSumTask.NAME,
            KvTraceTask.NAME, CopyTask.NAME);
    private static final List<String> DATASET = List.of("math", "code");

    private Tasks() {
    }

    /** Names accepted by {@link #builtin}. */
    public static List<String> builtinNames() {
        return BUILTIN;
    }

    /** Names accepted by {@link #fromDataset}. */
    public static List<String> datasetNames() {
        return DATASET;
    }

    /**
     * A generated long-context task whose prompts fill about {@code contextTokens} characters
     * (= tokens of the built-in character tokenizer).
     *
     * @throws IllegalArgumentException for an unknown name (the message lists the known ones) or a
     *                                  context shorter than 64 tokens
     */
    public static Task builtin(String name, int contextTokens) {
        return builtin(name, contextTokens, 0, false);
    }

    /** Built-in tasks whose completion length is a knob of its own ({@link #builtin(String, int, int, boolean)}'s steps). */
    public static boolean hasSteps(String name) {
        return KvTraceTask.NAME.equals(name) || CopyTask.NAME.equals(name);
    }

    /**
     * A generated task as {@link #builtin(String, int)}, with the length of its completion and its
     * reward rule (runs and commands ask through {@link TaskSpec}, which checks the knobs once): {@code steps} is the number of steps a completion writes (0: the task's default for
     * the context; only tasks with {@link #hasSteps}), {@code graded} rewards the share of steps right
     * instead of exact match (only tasks with steps).
     *
     * @throws IllegalArgumentException for an unknown name, a context too short, or steps or graded
     *                                  given to a task without steps (naming the task)
     */
    public static Task builtin(String name, int contextTokens, int steps, boolean graded) {
        if ((steps != 0 || graded) && BUILTIN.contains(name) && !hasSteps(name)) {
            throw new IllegalArgumentException("task " + name + " has a fixed completion: steps and a graded reward apply to "
                    + String.join(", ", BUILTIN.stream().filter(Tasks::hasSteps).toList()) + " only");
        }
        return switch (name) {
            case KvRecallTask.NAME -> new KvRecallTask(contextTokens);
            case PointerChaseTask.NAME -> new PointerChaseTask(contextTokens);
            case MarkedSumTask.NAME -> new MarkedSumTask(contextTokens);
            case KvTraceTask.NAME -> new KvTraceTask(contextTokens, steps, graded);
            case CopyTask.NAME -> new CopyTask(contextTokens, steps, graded);
            default -> throw new IllegalArgumentException("unknown built-in task \"" + name + "\"; known: "
                    + String.join(", ", BUILTIN) + (DATASET.contains(name) ? " (" + name + " needs a dataset file)" : ""));
        };
    }

    /** A dataset task with the default sandbox (for code: default limits, refusing unisolated runs). */
    public static DatasetTask fromDataset(String name, Path jsonl) {
        return fromDataset(name, jsonl, new PythonSandbox(SandboxLimits.defaults()));
    }

    /**
     * A dataset task: {@code math} ({"id","problem","answer"}) or {@code code} ({"id","problem","tests"}),
     * run in {@code sandbox} (unused by math).
     *
     * @throws IllegalArgumentException for an unknown name, or (one line, naming the file) a missing
     *                                  file or one with no valid record
     */
    public static DatasetTask fromDataset(String name, Path jsonl, PythonSandbox sandbox) {
        return switch (name) {
            case "math" -> DatasetTask.read(name, jsonl, "answer", true, new MathVerifier());
            case "code" -> DatasetTask.read(name, jsonl, "tests", false, new CodeVerifier(sandbox));
            default -> throw new IllegalArgumentException("unknown dataset task \"" + name + "\"; known: "
                    + String.join(", ", DATASET) + (BUILTIN.contains(name) ? " (" + name + " is built in)" : ""));
        };
    }
}
