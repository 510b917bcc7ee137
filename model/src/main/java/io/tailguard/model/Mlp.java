package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)). */
final class Mlp {
    private final NDArray gate; // [I, H]
    private final NDArray up;   // [I, H]
    private final NDArray down; // [H, I]

    Mlp(NDArray gate, NDArray up, NDArray down) {
        this.gate = gate;
        this.up = up;
        this.down = down;
    }

    /** x: [..., H] -> [..., H] */
    NDArray forward(NDArray x) {
        NDArray g = Linear.apply(x, gate);
        NDArray hidden = g.mul(Activation.sigmoid(g)).mul(Linear.apply(x, up));
        return Linear.apply(hidden, down);
    }
}
