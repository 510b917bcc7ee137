package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Rotary position embedding in the Hugging Face "rotate half" form:
 * x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1) and frequencies
 * theta^(-2i/D) repeated for both halves. Tables are computed in double precision once.
 */
final class Rotary {
    private final int headDim;
    private final NDArray cos; // [maxPos, D]
    private final NDArray sin; // [maxPos, D]
    /**
     * rotate_half as a product, x @ rot: a signed permutation [D, D], so every output is exactly ±
     * one input. One matmul replaces two slices, a negation and a concatenation (four tensor ops,
     * each with a fixed cost that dominates at decode sizes) and gives the same bits.
     */
    private final NDArray rot;

    Rotary(NDManager manager, int headDim, double theta, int maxPositions) {
        this.headDim = headDim;
        int half = headDim / 2;
        float[] c = new float[maxPositions * headDim];
        float[] s = new float[maxPositions * headDim];
        for (int p = 0; p < maxPositions; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * Math.pow(theta, -2.0 * i / headDim);
                float ci = (float) Math.cos(angle);
                float si = (float) Math.sin(angle);
                c[p * headDim + i] = ci;
                c[p * headDim + i + half] = ci;
                s[p * headDim + i] = si;
                s[p * headDim + i + half] = si;
            }
        }
        this.cos = manager.create(c, new Shape(maxPositions, headDim));
        this.sin = manager.create(s, new Shape(maxPositions, headDim));
        float[] r = new float[headDim * headDim];
        for (int k = 0; k < half; k++) {
            r[(k + half) * headDim + k] = -1f;   // out[k] = -x[k + half]
            r[k * headDim + k + half] = 1f;      // out[k + half] = x[k]
        }
        this.rot = manager.create(r, new Shape(headDim, headDim));
    }

    int maxPositions() {
        return (int) cos.getShape().get(0);
    }

    /** The tables themselves, [maxPos, D] each (the native decoder layer reads them in place). */
    NDArray cosTable() {
        return cos;
    }

    NDArray sinTable() {
        return sin;
    }

    /** Tables for the contiguous positions [start, end): each [T, D]. */
    NDArray[] range(NDManager into, int start, int end) {
        NDIndex idx = new NDIndex("{}:{}", start, end);
        return new NDArray[] {cos.get(into, idx), sin.get(into, idx)};
    }

    /** Tables for one position per sequence: positions [B] (int64) -> each [B, D], in positions' manager. */
    NDArray[] at(NDArray positions) {
        NDIndex idx = new NDIndex("{}", positions);
        return new NDArray[] {cos.get(positions.getManager(), idx), sin.get(positions.getManager(), idx)};
    }

    /** x: [..., D]; cos, sin broadcastable to x. */
    NDArray apply(NDArray x, NDArray cosT, NDArray sinT) {
        return x.mul(cosT).add(x.matMul(rot).mul(sinT));
    }

}
