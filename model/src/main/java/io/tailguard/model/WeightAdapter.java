package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/**
 * Changes the weights a model computes with without touching them: while {@link #active()}, every
 * weight product of every layer goes through {@link #project} instead of {@code x Wᵀ}. A LoRA
 * adapter is one ({@code lora.LoraAdapter}); when inactive, the model computes exactly what it
 * computes without one.
 */
public interface WeightAdapter {

    /** Whether the model routes its products through {@link #project} now. */
    boolean active();

    /**
     * @param layer  the decoder layer
     * @param p      which product
     * @param x      inputs, [..., in]
     * @param weight the base weight the model holds, [out, in] (fused rows for QKV and GATE_UP)
     * @return the product with the adapted weight, [..., out], attached to x's manager
     */
    NDArray project(int layer, Projection p, NDArray x, NDArray weight);
}
