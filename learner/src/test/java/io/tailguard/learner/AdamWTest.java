package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdamWTest {
    /**
     * libtorch's autograd switch is per thread and on by default on threads DJL did not start on (an
     * actor's dispatcher thread): the in-place update must still work there.
     */
    @Test
    void aStepWorksOnAThreadWhereAutogradIsOn() throws Exception {
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        float[][] after = new float[1][];
        Thread t = new Thread(() -> {
            try (NDManager m = NDManager.newBaseManager()) {
                ai.djl.pytorch.jni.JniUtils.setGradMode(true); // as on a fresh libtorch thread
                NDArray w = m.create(new float[] {1f, -2f}, new Shape(2));
                w.setRequiresGradient(true);
                try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                    gc.backward(w.mul(m.create(new float[] {0.5f, -0.25f})).sum());
                }
                try (AdamW opt = new AdamW(Map.of("w", w), new AdamW.Options(0.9, 0.95, 1e-12, 0.0, 0.0), m)) {
                    opt.step(0.01);
                }
                after[0] = w.toFloatArray();
                assertTrue(ai.djl.pytorch.jni.JniUtils.isGradMode(), "the thread's mode is restored");
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.start();
        t.join();
        if (failure.get() != null) {
            throw new AssertionError("step on a thread with autograd on", failure.get());
        }
        assertArrayEquals(new float[] {0.99f, -1.99f}, after[0], 1e-6f);
    }

    @Test
    void firstStepMovesEachWeightByTheLearningRateAgainstItsGradientSign() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.create(new float[] {1f, -2f, 3f}, new Shape(3));
            w.setRequiresGradient(true);
            try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                gc.backward(w.mul(m.create(new float[] {0.5f, -0.25f, 0.1f})).sum());
            }
            try (AdamW opt = new AdamW(Map.of("w", w), new AdamW.Options(0.9, 0.95, 1e-12, 0.0, 0.0), m)) {
                opt.step(0.01);
                // m̂ = g, v̂ = g²: the update is lr · sign(g)
                assertArrayEquals(new float[] {0.99f, -1.99f, 2.99f}, w.toFloatArray(), 1e-6f);
                assertEquals(1, opt.steps());
            }
        }
    }

    @Test
    void aNonFiniteGradientSkipsTheStepAndLeavesTheWeights() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.create(new float[] {1f, 2f}, new Shape(2));
            w.setRequiresGradient(true);
            try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                gc.backward(w.mul(m.create(new float[] {Float.NaN, 1f})).sum());
            }
            try (AdamW opt = new AdamW(Map.of("w", w), AdamW.Options.defaults(), m)) {
                assertTrue(Double.isNaN(opt.step(0.1)));
                assertArrayEquals(new float[] {1f, 2f}, w.toFloatArray());
                assertEquals(0, opt.steps());
                assertEquals(1, opt.skippedSteps());
            }
        }
    }

    @Test
    void aSkippedStepDoesNotPoisonTheNextOne() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray w = m.create(new float[] {1f, 2f}, new Shape(2));
            w.setRequiresGradient(true);
            try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                gc.backward(w.mul(m.create(new float[] {Float.NaN, Float.POSITIVE_INFINITY})).sum());
            }
            try (AdamW opt = new AdamW(Map.of("w", w), new AdamW.Options(0.9, 0.95, 1e-12, 0.0, 0.0), m)) {
                assertTrue(Double.isNaN(opt.step(0.1)));
                Gradients.zero(Map.of("w", w));
                try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                    gc.backward(w.mul(m.create(new float[] {3f, -4f})).sum());
                }
                // the gradient is exactly (3, -4): norm 5, and the first Adam step moves by lr · sign(g)
                assertEquals(5.0, opt.step(0.1), 1e-6);
                assertArrayEquals(new float[] {0.9f, 2.1f}, w.toFloatArray(), 1e-6f);
                assertEquals(1, opt.skippedSteps());
            }
        }
    }

    /**
     * The native update ({@link io.tailguard.model.NativeTraining#adamw}) against its libtorch twin:
     * three steps with clipping and weight decay on a matrix and a vector (not decayed) from the same
     * start give the same parameters and moments.
     */
    @Test
    void theNativeUpdateMatchesTheLibtorchTwin() {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.tailguard.model.NativeTraining.preferred(),
                () -> "native training kernels not loaded: " + io.tailguard.model.NativeTraining.unavailableReason());
        float[][][] out = new float[2][][];
        String[] kernels = {"torch", "native"};
        try {
            for (int run = 0; run < 2; run++) {
                System.setProperty("tailguard.train.kernel", kernels[run]);
                java.util.SplittableRandom r = new java.util.SplittableRandom(4);
                try (NDManager m = NDManager.newBaseManager()) {
                    Map<String, NDArray> params = new java.util.LinkedHashMap<>();
                    params.put("w", m.create(random(r, 70_000), new Shape(350, 200)));   // more than one native chunk
                    params.put("g", m.create(random(r, 37), new Shape(37)));
                    for (NDArray p : params.values()) {
                        p.setRequiresGradient(true);
                    }
                    try (AdamW opt = new AdamW(params, new AdamW.Options(0.9, 0.95, 1e-8, 0.1, 1.0), m)) {
                        for (int step = 0; step < 3; step++) {
                            Gradients.zero(params);
                            try (var gc = ai.djl.engine.Engine.getInstance().newGradientCollector()) {
                                NDArray loss = params.get("w").mul(m.create(random(r, 70_000), new Shape(350, 200))).sum()
                                        .add(params.get("g").square().mul(m.create(random(r, 37), new Shape(37))).sum());
                                gc.backward(loss.mul(3.0f)); // a global norm above the clip of 1
                            }
                            assertTrue(opt.step(0.01) > 1.0);
                        }
                        out[run] = new float[][] {params.get("w").toFloatArray(), params.get("g").toFloatArray(),
                                opt.firstMoments().get("w").toFloatArray(), opt.secondMoments().get("w").toFloatArray(),
                                opt.firstMoments().get("g").toFloatArray(), opt.secondMoments().get("g").toFloatArray()};
                    }
                }
            }
        } finally {
            System.clearProperty("tailguard.train.kernel");
        }
        // float32 rounding (the native loop may fuse a multiply and an add) against each array's scale
        for (int k = 0; k < out[0].length; k++) {
            double scale = 0;
            for (float x : out[0][k]) {
                scale = Math.max(scale, Math.abs(x));
            }
            for (int i = 0; i < out[0][k].length; i++) {
                assertEquals(out[0][k][i], out[1][k][i], 1e-6 * scale, "array " + k + " [" + i + "]");
            }
        }
    }

    private static float[] random(java.util.SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return v;
    }
}
