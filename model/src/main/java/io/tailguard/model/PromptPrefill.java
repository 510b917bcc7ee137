package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

import java.util.Arrays;
import java.util.List;

/**
 * Distinct prompts as one prefill left them: their KV cache (row r holds prompt r) and the logits
 * after each one's last token, [prompts × vocab]. A generation keeps it so that the dense scoring of
 * what it sampled, by the same weights, starts from these rows instead of prefilling the prompts
 * again ({@link Scorer#score(Qwen3Model, List, List, Scorer.Options, PromptPrefill)}). Owns its
 * memory: close it when the scoring is done.
 */
public final class PromptPrefill implements AutoCloseable {
    private final NDManager manager;
    private final List<int[]> prompts;
    private final KvCache cache;
    private final NDArray logits;

    /** Takes ownership of manager, in which cache and logits live. */
    public PromptPrefill(NDManager manager, List<int[]> prompts, KvCache cache, NDArray logits) {
        if (cache.batch() != prompts.size() || logits.getShape().get(0) != prompts.size()) {
            throw new IllegalArgumentException(prompts.size() + " prompts for a cache of " + cache.batch() + " rows and "
                    + logits.getShape().get(0) + " rows of logits");
        }
        this.manager = manager;
        this.prompts = List.copyOf(prompts);
        this.cache = cache;
        this.logits = logits;
    }

    /** The row holding this prompt, or -1. */
    public int rowOf(int[] prompt) {
        for (int r = 0; r < prompts.size(); r++) {
            if (Arrays.equals(prompts.get(r), prompt)) {
                return r;
            }
        }
        return -1;
    }

    public KvCache cache() {
        return cache;
    }

    /** The logits after prompt r's last token, [1, vocab]. */
    NDArray logitsOf(int r, NDManager into) {
        NDArray row = logits.get(new ai.djl.ndarray.index.NDIndex("{}:{}", r, r + 1));
        row.attach(into);
        return row;
    }

    @Override
    public void close() {
        manager.close();
    }
}
