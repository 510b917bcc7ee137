package io.tailguard.learner;

import ai.djl.ndarray.NDArray;

import java.util.Map;

/** Turning gradient tracking on and off for a model's parameters, and clearing accumulated gradients. */
final class Gradients {
    private Gradients() {}

    static void track(Map<String, NDArray> params, boolean on) {
        for (NDArray p : params.values()) {
            p.setRequiresGradient(on);
        }
    }

    /** Zeroes the gradients that backward passes accumulate into, before a new optimizer step. */
    static void zero(Map<String, NDArray> params) {
        for (NDArray p : params.values()) {
            try (NDArray g = p.getGradient()) {
                g.muli(0);
            }
        }
    }
}
