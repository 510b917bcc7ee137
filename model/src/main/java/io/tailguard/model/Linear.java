package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/** y = x Wᵀ for a weight stored as Hugging Face does, [out, in]; one fused op, no copy of W. */
final class Linear {
    private Linear() {}

    static NDArray apply(NDArray x, NDArray weight) {
        return x.getNDArrayInternal().linear(x, weight, null).singletonOrThrow();
    }
}
