package io.tailguard.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The gradient through a multiplication or division by a number must survive the number's
 * temporaries being closed and collected before the backward pass (as a layer's scope is). With
 * DJL's own {@code x.mul(3f)} in place of {@link Scalars#times} this test fails: the gradient read
 * back was -1.4e34 instead of 3 when it was written.
 */
class ScalarsTest {

    /** d/dx of sum(op(x, s)) after the forward's scope is closed and direct memory is churned. */
    static float[] gradientAfterChurn(BiFunction<NDArray, Double, NDArray> op, double s) {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.create(new float[] {1, 2, 3, 4});
            x.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y;
                try (NDManager scope = m.newSubManager()) {
                    y = op.apply(x, s).sum();
                    y.attach(m);
                }
                // Free what the scope held and reuse the memory with NaN, as a busy training loop would.
                for (int round = 0; round < 5; round++) {
                    System.gc();
                    List<ByteBuffer> junk = new ArrayList<>();
                    for (int i = 0; i < 20_000; i++) {
                        ByteBuffer b = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
                        b.putFloat(0, Float.NaN);
                        junk.add(b);
                    }
                }
                gc.backward(y);
            }
            return x.getGradient().toFloatArray();
        }
    }

    @Test
    void gradientsThroughScalarProductsAndQuotientsStayExact() {
        float[] times = gradientAfterChurn(Scalars::times, 3.0);
        float[] over = gradientAfterChurn(Scalars::dividedBy, 4.0);
        for (int i = 0; i < 4; i++) {
            assertEquals(3f, times[i]);
            assertEquals(0.25f, over[i]);
        }
    }
}
