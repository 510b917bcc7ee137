package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/**
 * Restricts, per layer, which keys each query of a full causal pass ({@link Qwen3Model#forward(NDArray,
 * ForwardMask)}) may attend to, by page of {@link KvCache#PAGE} positions, on top of causality. This
 * is how one teacher-forced training forward reproduces what a decode-time attention kernel (the
 * sparse actor) attended to at every position: the kernel's selection rule lives with the kernel,
 * the model only applies the mask.
 */
public interface ForwardMask {

    /**
     * @param layer the decoder layer
     * @param q     that layer's queries as attention uses them (post-RoPE, pre-scaled by 1/sqrt(D)),
     *              grouped by KV head: [B, kvHeads, r, T, D]; no gradient flows through the selection
     * @param k     that layer's keys (post-RoPE): [B, kvHeads, T, D]
     * @return boolean [B, kvHeads, T, ceil(T/16)]: true where query position t may see key page p
     *         (keys [16p, 16p + 16)); or null when the layer attends causally to everything
     */
    NDArray visiblePages(int layer, NDArray q, NDArray k);

    /** Builds the mask of one batch of right-padded rows, given where each row's prompt ends. */
    @FunctionalInterface
    interface Factory {
        /**
         * @param promptLengths per row: positions before it were prefilled (dense, as in generation);
         *                      later positions were decoded one at a time
         */
        ForwardMask forPrompts(int[] promptLengths);
    }
}
