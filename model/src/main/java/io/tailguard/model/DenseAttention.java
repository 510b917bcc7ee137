package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/** Exact attention over the first {@code span} cached positions, padding masked. */
final class DenseAttention implements AttentionKernel {
    static final DenseAttention INSTANCE = new DenseAttention();

    private DenseAttention() {}

    @Override
    public NDArray decode(int layer, NDArray q, KvCache cache, DecodeStep step) {
        NDIndex upToSpan = new NDIndex(":, :, :{}", step.span());
        NDArray k = KvCache.widened(cache.keys(layer).get(q.getManager(), upToSpan));   // [B, kvh, L, D]
        NDArray v = KvCache.widened(cache.values(layer).get(q.getManager(), upToSpan)); // [B, kvh, L, D]
        NDArray scores = q.matMul(k.transpose(0, 1, 3, 2));     // [B, kvh, r, L]
        if (step.mask() != null) {
            scores = scores.add(step.mask());
        }
        return scores.softmax(-1).matMul(v);                    // [B, kvh, r, D]
    }
}
