package io.tailguard.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

class ScalarsTest {
    /** Collects garbage and reuses freed native memory, as a long run does between forward and backward. */
    static void churn() {
        System.gc();
        for (int j = 0; j < 2000; j++) {
            ByteBuffer b = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
            b.putFloat(0, 7e20f);
        }
        System.gc();
    }

    @Test
    void gradientsThroughAConstantSurviveAGarbageCollectionBeforeBackward() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray p = m.create(new float[] {1f, 2f, 3f});
            p.setRequiresGradient(true);
            for (int it = 0; it < 10; it++) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    // d/dp sum(p * 3 / 4) = 0.75 everywhere
                    NDArray y = Scalars.div(Scalars.mul(p, 3.0), 4.0).sum();
                    churn();
                    gc.backward(y);
                }
                try (NDArray g = p.getGradient()) {
                    assertArrayEquals(new float[] {0.75f, 0.75f, 0.75f}, g.toFloatArray(), "iteration " + it);
                    g.set(new NDIndex("..."), 0f);
                }
            }
        }
    }
}
