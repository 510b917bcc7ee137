package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)), gate and up as one [2I, H] product. */
final class Mlp {
    private final NDArray gateUp; // [2I, H]: rows [0, I) gate, [I, 2I) up
    private final NDArray down;   // [H, I]
    private final int intermediate;
    private final int layer;
    private final AdapterSlot adapter;

    Mlp(int layer, NDArray gateUp, NDArray down, AdapterSlot adapter) {
        this.layer = layer;
        this.gateUp = gateUp;
        this.down = down;
        this.intermediate = (int) down.getShape().get(1);
        this.adapter = adapter;
    }

    NDArray gateUp() {
        return gateUp;
    }

    NDArray down() {
        return down;
    }

    int intermediate() {
        return intermediate;
    }

    /** Whether products are plain x Wᵀ with these weights (no packed weights, no active adapter). */
    boolean plain() {
        return adapter.plain();
    }

    /** x: [..., H] -> [..., H] */
    NDArray forward(NDArray x) {
        NDArray gu = adapter.apply(layer, Projection.GATE_UP, x, gateUp);
        if (NativePrefill.serves(gu)) {                         // no autograd: one native pass
            return adapter.apply(layer, Projection.DOWN, NativePrefill.swiglu(gu, intermediate), down);
        }
        // one split, not two slices: a slice's backward fills a zero tensor of gu's size and copies
        // into it, twice per layer; the split's concatenates the two gradients once
        ai.djl.ndarray.NDList parts = gu.split(new long[] {intermediate}, gu.getShape().dimension() - 1);
        NDArray g = parts.get(0);
        NDArray u = parts.get(1);
        return adapter.apply(layer, Projection.DOWN, g.mul(Activation.sigmoid(g)).mul(u), down);
    }
}
