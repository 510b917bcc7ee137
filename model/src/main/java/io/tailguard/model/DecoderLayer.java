package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/** Pre-norm block: h = x + attn(norm1(x)); out = h + mlp(norm2(h)). */
final class DecoderLayer {
    private final RmsNorm inputNorm;
    private final Attention attention;
    private final RmsNorm postAttentionNorm;
    private final Mlp mlp;

    DecoderLayer(RmsNorm inputNorm, Attention attention, RmsNorm postAttentionNorm, Mlp mlp) {
        this.inputNorm = inputNorm;
        this.attention = attention;
        this.postAttentionNorm = postAttentionNorm;
        this.mlp = mlp;
    }

    RmsNorm inputNorm() {
        return inputNorm;
    }

    Attention attention() {
        return attention;
    }

    RmsNorm postAttentionNorm() {
        return postAttentionNorm;
    }

    Mlp mlp() {
        return mlp;
    }

    /** x: [B, T, H]; positions [start, start + T); cache and mask may be null. */
    NDArray forward(NDArray x, int start, KvCache cache, ForwardMask mask) {
        NDArray h = x.add(attention.forward(inputNorm.forward(x), start, cache, mask));
        return h.add(mlp.forward(postAttentionNorm.forward(h)));
    }

    /**
     * As {@link #forward} with a cache, the output only at positions [start + from, start + T)
     * ({@link Attention#forwardTail}): [B, T - from, H].
     */
    NDArray forwardTail(NDArray x, int start, KvCache cache, int from) {
        NDArray h = x.get(new ai.djl.ndarray.index.NDIndex(":, {}:", from)).add(attention.forwardTail(inputNorm.forward(x), start, cache, from));
        return h.add(mlp.forward(postAttentionNorm.forward(h)));
    }

    /** Only this layer's keys and values of positions [start, start + T) into the cache. */
    void writeKv(NDArray x, int start, KvCache cache) {
        attention.writeKv(inputNorm.forward(x), start, cache);
    }

    /** A full causal pass that also returns the attention's keys and values: {out, keys, values}. */
    NDArray[] forwardKv(NDArray x) {
        NDArray[] a = attention.forwardKv(inputNorm.forward(x));
        NDArray h = x.add(a[0]);
        return new NDArray[] {h.add(mlp.forward(postAttentionNorm.forward(h))), a[1], a[2]};
    }

    /** Rows continuing a prefix whose keys and values this layer computed ({@link Attention#forwardOver}). */
    NDArray forwardOver(NDArray x, NDArray prefixKeys, NDArray prefixValues) {
        NDArray h = x.add(attention.forwardOver(inputNorm.forward(x), prefixKeys, prefixValues));
        return h.add(mlp.forward(postAttentionNorm.forward(h)));
    }

    /** x: [B, 1, H], one new token per sequence. */
    NDArray decode(NDArray x, NDArray positions, int[] positionsArr, NDArray[] cosSin,
                   KvCache cache, AttentionKernel kernel, DecodeStep step) {
        NDArray h = x.add(attention.decode(inputNorm.forward(x), positions, positionsArr, cosSin, cache, kernel, step));
        return h.add(mlp.forward(postAttentionNorm.forward(h)));
    }
}
