package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Multiplying or dividing by a constant inside a recorded (autograd) graph.
 *
 * <p>DJL's {@code x.mul(Number)} and {@code x.div(Number)} wrap the constant in a tensor that
 * borrows a Java direct buffer ({@code from_blob}), apply the op and close the tensor at once. The
 * backward pass of a product or quotient keeps that operand, so after a garbage collection between
 * forward and backward it reads freed memory: gradients scaled by whatever lies there now (seen as
 * 1e20 and as 1e-45). Here the constant is a tensor that libtorch allocates itself ({@code full}), so
 * the graph holds its own reference and closing the Java handle is harmless.
 */
public final class Scalars {
    private Scalars() {}

    /** x * v, safe to differentiate through. */
    public static NDArray mul(NDArray x, double v) {
        try (NDArray s = constant(x, v)) {
            return x.mul(s);
        }
    }

    /** x / v, safe to differentiate through. */
    public static NDArray div(NDArray x, double v) {
        try (NDArray s = constant(x, v)) {
            return x.div(s);
        }
    }

    private static NDArray constant(NDArray like, double v) {
        return like.getManager().full(new Shape(), (float) v, like.getDataType());
    }
}
