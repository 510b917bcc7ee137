package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/** RMSNorm over the last axis: y = w * x / sqrt(mean(x^2) + eps). */
final class RmsNorm {
    private final NDArray weight; // [D]
    private final float eps;

    RmsNorm(NDArray weight, double eps) {
        this.weight = weight;
        this.eps = (float) eps;
    }

    /** x: [..., D] -> [..., D] */
    NDArray forward(NDArray x) {
        NDArray meanSquare = x.square().mean(new int[] {-1}, true);
        return x.div(meanSquare.add(eps).sqrt()).mul(weight);
    }
}
