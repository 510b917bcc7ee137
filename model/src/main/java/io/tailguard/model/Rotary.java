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
    }

    int maxPositions() {
        return (int) cos.getShape().get(0);
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
        int half = headDim / 2;
        NDArray x1 = x.get(new NDIndex("..., :{}", half));
        NDArray x2 = x.get(new NDIndex("..., {}:", half));
        NDArray rotated = NDArrays.concat(new NDList(x2.neg(), x1), -1);
        return x.mul(cosT).add(rotated.mul(sinT));
    }

}
