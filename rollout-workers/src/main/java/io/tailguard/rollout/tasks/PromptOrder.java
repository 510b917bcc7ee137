package io.tailguard.rollout.tasks;

import java.util.SplittableRandom;

/**
 * The order in which a run draws a task's prompts from one stream seed: index g of the stream.
 * A generated task's index g is its prompt (seed, g). A dataset task has n records, so index g is
 * record π(g mod n), where π is a permutation of 0 .. n − 1 drawn from the seed (Fisher–Yates over
 * a {@link SplittableRandom} seeded with it): each epoch of n consecutive indices visits every record
 * once, in the same shuffled order, and the order is a function of (seed, n) alone, so a re-issued
 * group, a restarted controller, another node or a resumed train-sync names the same record.
 */
public final class PromptOrder {
    private final Task task;
    private final long seed;
    /** null for a generated task. */
    private final int[] permutation;

    private PromptOrder(Task task, long seed, int[] permutation) {
        this.task = task;
        this.seed = seed;
        this.permutation = permutation;
    }

    /** The order of {@code task}'s prompts under stream seed {@code seed}. */
    public static PromptOrder of(Task task, long seed) {
        if (task.size().isEmpty()) {
            return new PromptOrder(task, seed, null);
        }
        return new PromptOrder(task, seed, permutation(task.size().getAsInt(), seed));
    }

    /** π for n records: Fisher–Yates, from the last position down, over SplittableRandom(seed). */
    static int[] permutation(int n, long seed) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    /** The record index that stream index {@code g} names: π(g mod n); g itself for a generated task. */
    public long index(long g) {
        if (g < 0) {
            throw new IllegalArgumentException("prompt index must be >= 0, got " + g);
        }
        return permutation == null ? g : permutation[(int) (g % permutation.length)];
    }

    /** The prompt at stream index {@code g}. */
    public Prompt prompt(long g) {
        return task.prompt(seed, index(g));
    }

    public Task task() {
        return task;
    }
}
