package io.tailguard.model;

import ai.djl.ndarray.NDArray;

/** The model's current weight adapter, shared by its layers: one place decides how a product is computed. */
final class AdapterSlot {
    private WeightAdapter adapter;
    private PackedLinear[][][] packed;

    /** A packed model's linears ([layer][Projection ordinal][part]); set once, before any product. */
    void setPacked(PackedLinear[][][] packed) {
        this.packed = packed;
    }

    WeightAdapter get() {
        return adapter;
    }

    void set(WeightAdapter adapter) {
        this.adapter = adapter;
    }

    /** Whether every product is x Wᵀ with the weight as it is: no packed weights, no active adapter. */
    boolean plain() {
        WeightAdapter a = adapter;
        return packed == null && (a == null || !a.active());
    }

    /**
     * x Wᵀ, or the adapter's product while one is attached and active. A packed model's weight is
     * dequantized for this one product into a float32 tensor of x's manager, freed with x's scope.
     */
    NDArray apply(int layer, Projection p, NDArray x, NDArray weight) {
        if (packed != null) {
            weight = PackedLinear.dequantize(packed[layer][p.ordinal()], x.getManager());
        }
        WeightAdapter a = adapter;
        return a == null || !a.active() ? Linear.apply(x, weight) : a.project(layer, p, x, weight);
    }
}
