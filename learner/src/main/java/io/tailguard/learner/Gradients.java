package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

import java.util.Map;

/** Turning gradient tracking on and off for a model's parameters, and clearing accumulated gradients. */
final class Gradients {
    private Gradients() {}

    static void track(Map<String, NDArray> params, boolean on) {
        for (NDArray p : params.values()) {
            p.setRequiresGradient(on);
        }
    }

    /**
     * Zeroes the gradients that backward passes accumulate into, before a new optimizer step. A fill,
     * not a multiplication by 0: NaN * 0 is NaN, so after one step with a non-finite gradient (which
     * AdamW skips) a multiplied-out buffer would stay NaN and every later step would be skipped too.
     */
    static void zero(Map<String, NDArray> params) {
        for (NDArray p : params.values()) {
            try (NDArray g = p.getGradient()) {
                g.set(ALL, 0f);
            }
        }
    }

    private static final NDIndex ALL = new NDIndex("...");
}
