package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Grouped-query self-attention with per-head RMSNorm on q and k before RoPE (Qwen3).
 *
 * <p>Query head h belongs to KV head h / r (r = heads / kvHeads). Queries are arranged as
 * [B, kvHeads, r, T, D] so that each group multiplies its own, un-repeated keys.
 *
 * <p>Passes of many positions without autograd (prefill, extension, scoring forwards) run on the
 * native kernels ({@link NativePrefill}) where they serve; the libtorch path here is their reference
 * and the path for everything else (autograd, forward masks, shared prefixes, other dtypes, a GPU).
 */
final class Attention {
    /** Query positions per block in full-sequence attention: bounds the score matrix to CHUNK x L. */
    static final int CHUNK = 512;

    private final int layer;
    private final int heads;
    private final int kvHeads;
    private final int group;
    private final int headDim;
    private final NDArray scale;   // 1/sqrt(D), a scalar tensor made once (see RmsNorm's eps)
    private final NDArray qkvProj; // [(heads + 2 kvHeads) * D, H]: rows of q, then k, then v
    private final NDArray oProj;   // [H, heads*D]
    private final RmsNorm qNorm;
    private final RmsNorm kNorm;
    private final Rotary rotary;
    private final AdapterSlot adapter;

    Attention(int layer, ModelConfig c, NDArray qkv, NDArray o, RmsNorm qNorm, RmsNorm kNorm, Rotary rotary,
              AdapterSlot adapter) {
        this.layer = layer;
        this.heads = c.numHeads();
        this.kvHeads = c.numKvHeads();
        this.group = c.groupSize();
        this.headDim = c.headDim();
        this.scale = qkv.getManager().full(new ai.djl.ndarray.types.Shape(), (float) (1.0 / Math.sqrt(c.headDim())), qkv.getDataType());
        this.qkvProj = qkv;
        this.oProj = o;
        this.qNorm = qNorm;
        this.kNorm = kNorm;
        this.rotary = rotary;
        this.adapter = adapter;
    }

    int layer() {
        return layer;
    }

    int heads() {
        return heads;
    }

    int kvHeads() {
        return kvHeads;
    }

    int headDim() {
        return headDim;
    }

    NDArray qkvProj() {
        return qkvProj;
    }

    NDArray oProj() {
        return oProj;
    }

    RmsNorm qNorm() {
        return qNorm;
    }

    RmsNorm kNorm() {
        return kNorm;
    }

    Rotary rotary() {
        return rotary;
    }

    /** Whether products are plain x Wᵀ with these weights (no packed weights, no active adapter). */
    boolean plain() {
        return adapter.plain();
    }

    /**
     * Causal attention for the positions [start, start + T) of every sequence. With a cache, the
     * new keys and values are written at those positions and the queries attend over cache
     * positions [0, start + T) (chunked prefill); without one (start = 0), over this call's keys.
     * Right padding is harmless: a real token never attends to a later position. A {@link ForwardMask}
     * (only without a cache) further hides key pages per query.
     *
     * @param x [B, T, H] -> [B, T, H]
     */
    NDArray forward(NDArray x, int start, KvCache cache, ForwardMask mask) {
        TrainingTape tape = TrainingTape.recording();
        if (tape != null && start == 0 && cache == null && mask == null && TrainingTape.serves(x)) {
            return onTape(tape, x, false);
        }
        return run(x, start, cache, mask, null, null, null, 0);
    }

    /**
     * As {@link #forward} with a cache, but the output only for the positions [start + from, start + T):
     * every key and value still goes into the cache, and only those queries attend ([B, T - from, H]).
     * A prefill's last layer needs its output only where a prompt ends. from &lt; T.
     */
    NDArray forwardTail(NDArray x, int start, KvCache cache, int from) {
        return run(x, start, cache, null, null, null, null, from);
    }

    /** Only the keys and values of positions [start, start + T) into the cache (a last layer whose output nobody reads). */
    void writeKv(NDArray x, int start, KvCache cache) {
        long t = x.getShape().get(1);
        if (servesNative(x)) {
            if (start + t > cache.capacity()) {
                throw new IllegalStateException("KV cache full: writing up to " + (start + t) + " of " + cache.capacity());
            }
            rotary.ensure(start + (int) t);
            NDArray qkv = adapter.apply(layer, Projection.QKV, x, qkvProj);
            int b = (int) x.getShape().get(0);
            // a float16 cache: the keys and values in float32 first, then stored rounded
            NDArray keys = cache.float16() ? x.getManager().create(new Shape(b, kvHeads, t, headDim), DataType.FLOAT32) : cache.keys(layer);
            NDArray values = cache.float16() ? x.getManager().create(new Shape(b, kvHeads, t, headDim), DataType.FLOAT32) : cache.values(layer);
            long cap = cache.float16() ? t : cache.capacity();
            NativePrefill.qkv(NativeLibraries.view(qkv), NativeLibraries.view(qNorm.weight()), NativeLibraries.view(kNorm.weight()),
                    NativeLibraries.view(rotary.cosTable()), NativeLibraries.view(rotary.sinTable()), null,
                    NativeLibraries.view(keys), NativeLibraries.view(values),
                    kvHeads * cap * headDim, cap * headDim, headDim, b, (int) t, start, cache.float16() ? 0 : start,
                    heads, kvHeads, headDim, qNorm.eps(), 1f, NativeLibraries.threads());
            if (cache.float16()) {
                cache.writeRange(layer, start, keys, values);
            }
            return;
        }
        NDArray[] cs = rotary.range(x.getManager(), start, start + (int) t);
        NDArray[] qkv = projectQkv(x, cs[0].expandDims(1), cs[1].expandDims(1));
        cache.writeRange(layer, start, qkv[1].transpose(0, 2, 1, 3), qkv[2].transpose(0, 2, 1, 3));
    }

    /**
     * A full causal pass (start 0, no cache) that also returns this layer's keys and values
     * [B, kvh, T, D], for rows that continue these sequences ({@link #forwardOver}).
     * Returns {output [B, T, H], keys, values}.
     */
    NDArray[] forwardKv(NDArray x) {
        TrainingTape tape = TrainingTape.recording();
        if (tape != null && TrainingTape.serves(x)) {
            return new NDArray[] {onTape(tape, x, false), null, null}; // the tape keeps the keys and values
        }
        NDArray[] kv = new NDArray[2];
        NDArray o = run(x, 0, null, null, null, null, kv, 0);
        return new NDArray[] {o, kv[0], kv[1]};
    }

    /**
     * Rows x [B, T, H] at positions [P, P + T) that continue a prefix whose keys and values
     * ([1 or B, kvh, P, D], from {@link #forwardKv}) they attend to before their own, causally: the
     * samples of one prompt, trained over the prompt computed once. Differentiable through the
     * prefix (a prefix of batch 1 is broadcast to the B rows, so its gradients sum over them).
     */
    NDArray forwardOver(NDArray x, NDArray prefixKeys, NDArray prefixValues) {
        if (prefixKeys == null) { // the prompt's attention ran on the training tape, which holds its keys and values
            return onTape(TrainingTape.recording(), x, true);
        }
        return run(x, (int) prefixKeys.getShape().get(2), null, null, prefixKeys, prefixValues, null, 0);
    }

    private NDArray run(NDArray x, int start, KvCache cache, ForwardMask mask, NDArray prefixKeys, NDArray prefixValues,
                        NDArray[] kvOut, int from) {
        if (mask == null && prefixKeys == null && servesNative(x)) {
            return runNative(x, start, cache, kvOut, from);
        }
        long b = x.getShape().get(0);
        int t = (int) x.getShape().get(1);
        NDArray[] cs = rotary.range(x.getManager(), start, start + t);
        NDArray cos = cs[0].expandDims(1); // [T, 1, D]
        NDArray sin = cs[1].expandDims(1);

        NDArray[] qkv = projectQkv(x, cos, sin);
        NDArray q = qkv[0];                                                  // [B, T, heads, D], scaled
        NDArray k = qkv[1].transpose(0, 2, 1, 3);                            // [B, kvh, T, D]
        NDArray v = qkv[2].transpose(0, 2, 1, 3);                            // [B, kvh, T, D]
        if (kvOut != null) {
            kvOut[0] = k;
            kvOut[1] = v;
        }
        NDArray keys = k;
        NDArray values = v;
        if (prefixKeys != null) {
            ai.djl.ndarray.types.Shape ps = new ai.djl.ndarray.types.Shape(b, kvHeads, start, headDim);
            NDArray pk = prefixKeys.getShape().get(0) == b ? prefixKeys : prefixKeys.broadcast(ps);
            NDArray pv = prefixValues.getShape().get(0) == b ? prefixValues : prefixValues.broadcast(ps);
            keys = NDArrays.concat(new NDList(pk, k), 2);
            values = NDArrays.concat(new NDList(pv, v), 2);
        }
        if (cache != null) {
            cache.writeRange(layer, start, k, v);
            if (from > 0) {                                                  // only the later queries attend
                q = q.get(new NDIndex(":, {}:", from));
                start += from;
                t -= from;
            }
            NDIndex seen = new NDIndex(":, :, :{}", start + t);
            keys = KvCache.widened(cache.keys(layer).get(x.getManager(), seen));
            values = KvCache.widened(cache.values(layer).get(x.getManager(), seen));
        }
        // [B, T, kvh, r, D] -> [B, kvh, r, T, D]
        NDArray qg = q.reshape(b, t, kvHeads, group, headDim).transpose(0, 2, 3, 1, 4);
        NDArray visible = null;                                              // [B, kvh, T, pages]
        if (mask != null) {
            if (cache != null) {
                throw new IllegalArgumentException("a forward mask applies to a full pass without a cache");
            }
            // The selection is discrete: no gradient flows through it, only through the attention it masks.
            visible = mask.visiblePages(layer, qg.stopGradient(), k.stopGradient());
        }
        NDList outs = new NDList();
        for (int s = 0; s < t; s += CHUNK) {
            int e = Math.min(t, s + CHUNK);
            outs.add(causalBlock(qg, keys, values, s, e, start, visible));
        }
        NDArray o = outs.size() == 1 ? outs.get(0) : NDArrays.concat(outs, 3); // [B, kvh, r, T, D]
        o = o.transpose(0, 3, 1, 2, 4).reshape(b, t, (long) heads * headDim);
        return adapter.apply(layer, Projection.O, o, oProj);
    }

    /** Whether the native kernels (NativePrefill) serve this pass: no autograd, all float32 on the CPU. */
    private boolean servesNative(NDArray x) {
        return NativePrefill.serves(x, qNorm.weight(), kNorm.weight(), rotary.cosTable());
    }

    /**
     * {@link #run} on the native kernels: after the q/k/v product, one pass writes normed, rotated q
     * and k (and v) where they go (k and v straight into the cache), then the tiled causal attention
     * reads the keys and values in place. No forward mask, no shared prefix.
     */
    private NDArray runNative(NDArray x, int start, KvCache cache, NDArray[] kvOut, int from) {
        int b = (int) x.getShape().get(0);
        int t = (int) x.getShape().get(1);
        rotary.ensure(start + t);
        NDManager m = x.getManager();
        NDArray qkv = adapter.apply(layer, Projection.QKV, x, qkvProj);    // [B, T, (heads + 2 kvh) D]
        NDArray q = m.create(new Shape(b, t, heads, headDim), DataType.FLOAT32);
        NDArray keys;
        NDArray values;
        long sb;
        long sh;
        long sj;
        if (cache != null && cache.float16()) {                             // [B, kvh, start + T, D] in float32, the cache's past widened
            if (start + t > cache.capacity()) {
                throw new IllegalStateException("KV cache full: writing up to " + (start + t) + " of " + cache.capacity());
            }
            long span = start + t;
            keys = m.create(new Shape(b, kvHeads, span, headDim), DataType.FLOAT32);
            values = m.create(new Shape(b, kvHeads, span, headDim), DataType.FLOAT32);
            if (start > 0) {
                NDIndex past = new NDIndex(":, :, :{}", start);
                keys.set(past, KvCache.widened(cache.keys(layer).get(m, past)));
                values.set(past, KvCache.widened(cache.values(layer).get(m, past)));
            }
            sb = kvHeads * span * headDim;
            sh = span * headDim;
            sj = headDim;
        } else if (cache != null) {                                          // [B, kvh, cap, D], positions as they are
            long cap = cache.capacity();
            if (start + t > cap) {
                throw new IllegalStateException("KV cache full: writing up to " + (start + t) + " of " + cap);
            }
            keys = cache.keys(layer);
            values = cache.values(layer);
            sb = kvHeads * cap * headDim;
            sh = cap * headDim;
            sj = headDim;
        } else {                                                             // this pass's own [B, T, kvh, D]
            keys = m.create(new Shape(b, t, kvHeads, headDim), DataType.FLOAT32);
            values = m.create(new Shape(b, t, kvHeads, headDim), DataType.FLOAT32);
            sb = (long) t * kvHeads * headDim;
            sh = headDim;
            sj = (long) kvHeads * headDim;
        }
        NativePrefill.qkv(NativeLibraries.view(qkv), NativeLibraries.view(qNorm.weight()), NativeLibraries.view(kNorm.weight()),
                NativeLibraries.view(rotary.cosTable()), NativeLibraries.view(rotary.sinTable()), NativeLibraries.view(q),
                NativeLibraries.view(keys), NativeLibraries.view(values), sb, sh, sj, b, t, start, cache != null ? start : 0,
                heads, kvHeads, headDim, qNorm.eps(), (float) (1.0 / Math.sqrt(headDim)), NativeLibraries.threads());
        if (kvOut != null) {
            kvOut[0] = keys.transpose(0, 2, 1, 3);
            kvOut[1] = values.transpose(0, 2, 1, 3);
        }
        if (cache != null && cache.float16()) {
            // store this pass's keys and values rounded, and attend over them as stored
            NDIndex mine = new NDIndex(":, :, {}:", start);
            cache.writeRange(layer, start, keys.get(mine), values.get(mine));
            keys.set(mine, KvCache.widened(cache.keys(layer).get(m, new NDIndex(":, :, {}:{}", start, start + t))));
            values.set(mine, KvCache.widened(cache.values(layer).get(m, new NDIndex(":, :, {}:{}", start, start + t))));
        }
        if (from > 0) {                                                      // only the later queries attend
            q = q.get(new NDIndex(":, {}:", from));
        }
        NDArray o = NativePrefill.attend(q, keys, values, sb, sh, sj, start + from, kvHeads);
        return adapter.apply(layer, Projection.O, o, oProj);
    }

    /**
     * A training pass's attention in the native kernels ({@link TrainingTape}): positions [0, T), or
     * after the prompt the tape holds for this layer ({@code overPrefix}). x [B, T, H] -> [B, T, H].
     */
    private NDArray onTape(TrainingTape tape, NDArray x, boolean overPrefix) {
        int t = (int) x.getShape().get(1);
        int start = overPrefix ? tape.prefixLength(layer) : 0;
        NDArray[] cs = rotary.range(x.getManager(), start, start + t);
        NDArray[] qkv = projectQkv(x, cs[0].expandDims(1), cs[1].expandDims(1));
        NDArray rows = NDArrays.concat(new NDList(qkv[0], qkv[1], qkv[2]), 2);     // [B, T, heads + 2 kvh, D]
        NDArray o = tape.attention(layer, rows, heads, kvHeads, headDim, overPrefix);
        NDArray y = adapter.apply(layer, Projection.O, o, oProj);
        y.attach(x.getManager()); // the product is the layer's temporary; the tape keeps only o
        return y;
    }

    /**
     * Queries [s, e) of this call (absolute positions start + s ...) over keys [0, start + e); with
     * {@code visible} (no cache, start = 0), only over the key pages it shows each query.
     */
    private NDArray causalBlock(NDArray qg, NDArray keys, NDArray values, int s, int e, int start, NDArray visible) {
        long b = qg.getShape().get(0);
        int c = e - s;
        int span = start + e;
        NDArray qc = qg.get(new NDIndex(":, :, :, {}:{}", s, e)).reshape(b, kvHeads, (long) group * c, headDim);
        NDIndex upToSpan = new NDIndex(":, :, :{}", span);
        NDArray kc = keys.get(upToSpan);
        NDArray vc = values.get(upToSpan);
        NDArray scores = qc.matMul(kc.transpose(0, 1, 3, 2)).reshape(b, kvHeads, group, c, span);
        scores = scores.add(Masks.causal(qc.getManager(), start + s, c, span));
        if (visible != null) {
            scores = scores.add(Masks.pages(visible.get(new NDIndex(":, :, {}:{}", s, e)), span).expandDims(2));
        }
        NDArray probs = scores.softmax(-1).reshape(b, kvHeads, (long) group * c, span);
        return probs.matMul(vc).reshape(b, kvHeads, group, c, headDim);
    }

    /**
     * One decode step: x [B, 1, H] at per-sequence positions; the new key and value go into the
     * cache at those positions, then the kernel attends. Returns [B, 1, H].
     */
    NDArray decode(NDArray x, NDArray positions, int[] positionsArr, NDArray[] cosSin,
                   KvCache cache, AttentionKernel kernel, DecodeStep step) {
        long b = x.getShape().get(0);
        NDArray[] qkv = projectQkv(x, cosSin[0], cosSin[1]);
        NDArray q = qkv[0];                                                  // [B, 1, heads, D]
        NDArray k = qkv[1].reshape(b, kvHeads, headDim);
        NDArray v = qkv[2].reshape(b, kvHeads, headDim);
        cache.writeAt(layer, positions, positionsArr, k, v);
        NDArray qg = q.reshape(b, kvHeads, group, headDim);                  // [B, kvh, r, D]
        NDArray o = kernel.decode(layer, qg, cache, step);                   // [B, kvh, r, D]
        return adapter.apply(layer, Projection.O, o.reshape(b, 1, (long) heads * headDim), oProj);
    }

    /**
     * One product for q, k and v; per-head RMSNorm and RoPE on q and k; q pre-scaled by 1/sqrt(D).
     * [B, T, H] -> q [B, T, heads, D], k and v [B, T, kvh, D].
     */
    private NDArray[] projectQkv(NDArray x, NDArray cos, NDArray sin) {
        long b = x.getShape().get(0);
        long t = x.getShape().get(1);
        NDArray qkv = adapter.apply(layer, Projection.QKV, x, qkvProj)       // [B, T, heads + 2 kvh, D]
                .reshape(b, t, heads + 2L * kvHeads, headDim);
        // q and k heads are normalized together (both norms share eps; only the weights differ):
        // fewer tensor ops, whose fixed cost dominates at decode sizes, and the same values.
        // splits, not slices: a slice's backward fills a zero tensor of the whole and copies into it
        NDList qkAndV = qkv.split(new long[] {heads + kvHeads}, 2);
        NDArray qk = qNorm.normalize(qkAndV.get(0));
        NDList qAndK = qk.split(new long[] {heads}, 2);
        NDArray q = qAndK.get(0).mul(qNorm.weight());
        NDArray k = qAndK.get(1).mul(kNorm.weight());
        NDArray v = qkAndV.get(1);
        q = rotary.apply(q, cos, sin).mul(scale);
        k = rotary.apply(k, cos, sin);
        return new NDArray[] {q, k, v};
    }
}
