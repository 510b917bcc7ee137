package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.nn.Activation;

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)), gate and up as one [2I, H] product. */
final class Mlp {
    private final NDArray gateUp; // [2I, H]: rows [0, I) gate, [I, 2I) up
    private final NDArray down;   // [H, I]
    private final int intermediate;

    Mlp(NDArray gateUp, NDArray down) {
        this.gateUp = gateUp;
        this.down = down;
        this.intermediate = (int) down.getShape().get(1);
    }

    /** x: [..., H] -> [..., H] */
    NDArray forward(NDArray x) {
        NDArray gu = Linear.apply(x, gateUp);
        NDArray g = gu.get(new NDIndex("..., :{}", intermediate));
        NDArray u = gu.get(new NDIndex("..., {}:", intermediate));
        return Linear.apply(g.mul(Activation.sigmoid(g)).mul(u), down);
    }
}
