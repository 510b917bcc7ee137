package io.tailguard.actors.runtime;

import io.tailguard.model.KvCache;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptOrder;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The run's prompt stream: group g is the task's prompt (seed, g) at a context length drawn for g
 * from [min, max] in page steps; for a dataset task, record π(g mod n) of its n records
 * ({@link PromptOrder}: π a permutation drawn from the seed; the records keep their own lengths). A
 * function of (task with its knobs, seed, g) only, so a re-issued group, a restarted controller or
 * another node names the same prompt.
 */
final class Prompts {
    private final TaskSpec task;
    private final long seed;
    private final int min;
    private final int max;
    private final Map<Integer, Task> byContext = new HashMap<>();
    /** A dataset task's order, or null. */
    private final PromptOrder records;

    Prompts(TaskSpec task, long seed, int min, int max) {
        this.task = task;
        this.seed = seed;
        this.min = min;
        this.max = max;
        Task atMax = task.at(max);
        byContext.put(max, atMax);
        this.records = task.isDataset() ? PromptOrder.of(atMax, seed) : null;
        of(0); // a bad task name or a context too short for the task fails at start
    }

    int contextOf(long group) {
        int steps = (max - min) / KvCache.PAGE;
        return min + KvCache.PAGE * new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ group).nextInt(steps + 1);
    }

    Prompt of(long group) {
        if (records != null) {
            return records.prompt(group);
        }
        int ctx = contextOf(group);
        return byContext.computeIfAbsent(ctx, task::at).prompt(seed, group);
    }

    /** The task at the longest context: verifiers and solution lengths do not depend on the context. */
    Task task() {
        return byContext.get(max);
    }
}
