package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Multiplying or dividing by a number where a gradient flows. DJL's {@code x.mul(number)} wraps the
 * number in a tensor that points into a Java direct buffer and closes it at once; autograd keeps
 * that tensor for the backward pass, and once the garbage collector frees the buffer, the backward
 * reads whatever the memory holds by then (seen as sporadic NaN or wildly scaled gradients). Here
 * the number is a tensor that libtorch owns, so autograd's reference keeps it alive.
 */
public final class Scalars {
    private Scalars() {}

    /** x · s, safe to differentiate. */
    public static NDArray times(NDArray x, double s) {
        try (NDArray c = x.getManager().full(new Shape(), (float) s, x.getDataType())) {
            return x.mul(c);
        }
    }

    /** x / s, safe to differentiate. */
    public static NDArray dividedBy(NDArray x, double s) {
        try (NDArray c = x.getManager().full(new Shape(), (float) s, x.getDataType())) {
            return x.div(c);
        }
    }
}
