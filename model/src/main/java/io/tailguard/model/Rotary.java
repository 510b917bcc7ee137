package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Rotary position embedding in the Hugging Face "rotate half" form:
 * x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1) and frequencies
 * theta^(-2i/D) repeated for both halves (or YaRN's, with cos and sin scaled by its attention
 * factor: {@link ModelConfig#ropeInverseFrequencies}). Tables are computed in double precision.
 *
 * <p>The tables cover the positions a run has reached so far, not {@code max_position_embeddings}:
 * a config may allow 2^26 positions, whose tables would not fit an array (and 2^22 would take
 * gigabytes a short run never reads). They start at {@link #INITIAL} positions and double when a
 * longer sequence comes, up to the limit. Tables already handed out stay valid (the old ones live
 * until the model closes), so a thread reading them while another grows them reads the same values.
 */
final class Rotary {
    /** Positions covered before any sequence asks for more: a short run never grows the tables. */
    static final int INITIAL = 4096;

    private final NDManager manager;
    private final int headDim;
    private final double[] inverseFrequencies;
    private final double scaling;
    private final int limit;
    private volatile Tables tables;
    /**
     * rotate_half as a product, x @ rot: a signed permutation [D, D], so every output is exactly ±
     * one input. One matmul replaces two slices, a negation and a concatenation (four tensor ops,
     * each with a fixed cost that dominates at decode sizes) and gives the same bits.
     */
    private final NDArray rot;

    /** cos and sin, [length, D] each. */
    private record Tables(NDArray cos, NDArray sin, int length) {
    }

    /** The tables of a config's RoPE (plain or YaRN), up to maxPositions. */
    Rotary(NDManager manager, ModelConfig config, int maxPositions) {
        this.manager = manager;
        this.headDim = config.headDim();
        this.inverseFrequencies = config.ropeInverseFrequencies();
        this.scaling = config.ropeAttentionScaling();
        this.limit = maxPositions;
        this.tables = build(Math.min(maxPositions, INITIAL));
        int half = headDim / 2;
        float[] r = new float[headDim * headDim];
        for (int k = 0; k < half; k++) {
            r[(k + half) * headDim + k] = -1f;   // out[k] = -x[k + half]
            r[k * headDim + k + half] = 1f;      // out[k + half] = x[k]
        }
        this.rot = manager.create(r, new Shape(headDim, headDim));
    }

    private Tables build(int length) {
        long elements = (long) length * headDim;
        if (elements > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("sequence of " + length + " positions needs rotary tables of "
                    + elements + " entries, more than an array holds");
        }
        int half = headDim / 2;
        float[] c = new float[(int) elements];
        float[] s = new float[(int) elements];
        for (int p = 0; p < length; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * inverseFrequencies[i];
                float ci = (float) (Math.cos(angle) * scaling);
                float si = (float) (Math.sin(angle) * scaling);
                int at = p * headDim + i;
                c[at] = ci;
                c[at + half] = ci;
                s[at] = si;
                s[at + half] = si;
            }
        }
        return new Tables(manager.create(c, new Shape(length, headDim)), manager.create(s, new Shape(length, headDim)), length);
    }

    /** Most positions a sequence may reach (max_position_embeddings). */
    int maxPositions() {
        return limit;
    }

    /** Positions the tables cover now. */
    int covered() {
        return tables.length();
    }

    /**
     * Makes the tables cover positions [0, positions), doubling their length as needed.
     *
     * @throws IllegalArgumentException beyond max_position_embeddings
     */
    void ensure(int positions) {
        if (positions <= tables.length()) {
            return;
        }
        if (positions > limit) {
            throw new IllegalArgumentException("sequence of " + positions + " positions exceeds max_position_embeddings "
                    + limit);
        }
        synchronized (this) {
            int length = tables.length();
            if (positions <= length) {
                return;
            }
            long grown = Math.max(positions, 2L * length);
            tables = build((int) Math.min(limit, grown));
        }
    }

    /** The tables themselves, [n, D] each with n ≥ every position ensured so far (the native decoder reads them in place). */
    NDArray cosTable() {
        return tables.cos();
    }

    NDArray sinTable() {
        return tables.sin();
    }

    /** Tables for the contiguous positions [start, end): each [T, D]. */
    NDArray[] range(NDManager into, int start, int end) {
        ensure(end);
        Tables t = tables;
        NDIndex idx = new NDIndex("{}:{}", start, end);
        return new NDArray[] {t.cos().get(into, idx), t.sin().get(into, idx)};
    }

    /**
     * Tables for one position per sequence: positions [B] (int64) -> each [B, D], in positions'
     * manager. The caller has {@link #ensure}d the largest position + 1.
     */
    NDArray[] at(NDArray positions) {
        Tables t = tables;
        NDIndex idx = new NDIndex("{}", positions);
        return new NDArray[] {t.cos().get(positions.getManager(), idx), t.sin().get(positions.getManager(), idx)};
    }

    /** x: [..., D]; cos, sin broadcastable to x. */
    NDArray apply(NDArray x, NDArray cosT, NDArray sinT) {
        return x.mul(cosT).add(x.matMul(rot).mul(sinT));
    }

}
