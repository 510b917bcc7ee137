package io.tailguard.rollout.tasks;

import java.util.Objects;

/**
 * One prompt of a task. The id is stable and traceable back to its origin ("kv-recall/c4096/s42/i17"
 * for a generated prompt, the file's "id" for a dataset record), so prompt groups and re-issued work
 * can be matched up. {@code answer} is the canonical expected answer where one exists (built-in tasks,
 * math) and null where correctness is decided by running something (code).
 */
public record Prompt(String id, String text, String answer) {
    public Prompt {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(text, "text");
    }
}
