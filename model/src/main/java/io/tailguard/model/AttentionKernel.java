package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/**
 * Decode-time attention of one new query per sequence over a layer's KV cache. The model calls it
 * once per layer per decode step, after the new key and value are in the cache; the sparse actor
 * plugs in here without touching the model code.
 */
public interface AttentionKernel {

    /**
     * @param layer the layer index
     * @param q     post-RoPE queries grouped by KV head, pre-scaled by 1/sqrt(D): [B, kvHeads, r, D]
     * @param cache the cache, already holding this step's key and value
     * @param step  the lengths this step attends over and the shared padding mask
     * @return attention output, [B, kvHeads, r, D]
     */
    NDArray decode(int layer, NDArray q, KvCache cache, DecodeStep step);

    /** The default: exact attention over every cached token. */
    AttentionKernel DENSE = DenseAttention.INSTANCE;
}
