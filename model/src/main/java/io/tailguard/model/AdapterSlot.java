package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/** The model's current weight adapter, shared by its layers: one place decides how a product is computed. */
final class AdapterSlot {
    private WeightAdapter adapter;

    WeightAdapter get() {
        return adapter;
    }

    void set(WeightAdapter adapter) {
        this.adapter = adapter;
    }

    /** x Wᵀ, or the adapter's product while one is attached and active. */
    NDArray apply(int layer, Projection p, NDArray x, NDArray weight) {
        WeightAdapter a = adapter;
        return a == null || !a.active() ? Linear.apply(x, weight) : a.project(layer, p, x, weight);
    }
}
