package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/** Additive attention masks: 0 where attention is allowed, a large negative number where not. */
final class Masks {
    /** exp(NEG - max) underflows to exactly 0; finite so that 0 * NEG is 0, not NaN. */
    static final float NEG = -1e30f;

    private Masks() {}

    /** Queries at absolute positions [q0, q0 + c) over keys [0, span): key j visible iff j <= q. */
    static NDArray causal(NDManager m, int q0, int c, int span) {
        NDArray keyPos = m.arange(0, span, 1, DataType.INT32).reshape(1, span);
        NDArray queryPos = m.arange(q0, q0 + c, 1, DataType.INT32).reshape(c, 1);
        return keyPos.gt(queryPos).toType(DataType.FLOAT32, false).mul(NEG);
    }

    /** For sequences of the given lengths, [B, 1, 1, span]: position j visible iff j < lengths[b]. */
    static NDArray padding(NDManager m, int[] lengths, int span) {
        float[] mask = new float[lengths.length * span];
        for (int b = 0; b < lengths.length; b++) {
            for (int j = lengths[b]; j < span; j++) {
                mask[b * span + j] = NEG;
            }
        }
        return m.create(mask, new Shape(lengths.length, 1, 1, span));
    }

    /**
     * Page visibility [B, kvh, c, pages] (boolean) -> additive [B, kvh, c, span] over key positions
     * [0, span): key j is hidden where its page j / KvCache.PAGE is not visible.
     */
    static NDArray pages(NDArray visible, int span) {
        Shape s = visible.getShape();
        long pages = s.get(3);
        NDArray hidden = visible.logicalNot().toType(DataType.FLOAT32, false).mul(NEG);
        return hidden.expandDims(4).broadcast(s.get(0), s.get(1), s.get(2), pages, KvCache.PAGE)
                .reshape(s.get(0), s.get(1), s.get(2), pages * KvCache.PAGE)
                .get(new ai.djl.ndarray.index.NDIndex(":, :, :, :{}", span));
    }
}
