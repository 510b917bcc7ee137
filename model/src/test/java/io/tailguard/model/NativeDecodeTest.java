package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native decoder layer against the libtorch layer it replaces (which IncrementalDecodeTest and
 * TransformersParityTest tie to a full forward and to transformers): same logits, same cache contents.
 */
class NativeDecodeTest {
    /**
     * Shapes that reach every tail of the kernel: hidden 44 (not a multiple of 16 or 8), intermediate
     * 50 and q/k/v rows 5·12 + 2·2·12 = 108 (row counts not multiples of 4), head_dim 12, GQA 5.
     */
    static final ModelConfig CONFIG = new ModelConfig(29, 44, 50, 3, 5, 1, 12, 1e-6, 10_000.0, 4096, false, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 5, 0.3, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @AfterEach
    void resetProperty() {
        System.clearProperty(NativeDecode.PROPERTY);
        System.clearProperty(NativePrefill.PROPERTY);
    }

    @Test
    void libraryLoadsWhereTheBuildMustHaveIt() {
        // CI sets TAILGUARD_REQUIRE_NATIVE=1: a build that silently lost the library must fail there
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_NATIVE"))) {
            assertNull(NativeDecode.LIBRARY.unavailableReason(), "native decode layer not loaded");
        }
    }

    /** Prefills unequal prompts, then decodes {@code steps} tokens; returns every step's logits and the final cache. */
    private static float[][] run(NDManager m, KvCache cache, boolean nativeLayer, int steps) {
        System.setProperty(NativeDecode.PROPERTY, nativeLayer ? "native" : "torch");
        System.setProperty(NativePrefill.PROPERTY, nativeLayer ? "native" : "torch");   // the reference all libtorch
        Random r = new Random(17);
        int[] prompts = {3, 30, 14};
        int t = 30;
        long[] padded = new long[prompts.length * t];
        for (int i = 0; i < padded.length; i++) {
            padded[i] = r.nextInt(CONFIG.vocabSize());
        }
        model.prefill(m.create(padded, new Shape(prompts.length, t)), prompts, cache);
        float[][] out = new float[steps][];
        for (int s = 0; s < steps; s++) {
            long[] tokens = new long[prompts.length];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = r.nextInt(CONFIG.vocabSize());
            }
            out[s] = model.decode(tokens, cache, AttentionKernel.DENSE, m).toFloatArray();
        }
        return out;
    }

    static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(diff <= tol * Math.max(scale, 1e-6), what + ": max difference " + diff + " against scale " + scale);
    }

    @Test
    void vocabularyProjectionOfAFewRowsMatchesLibtorchAndLeavesAutogradToIt() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        try (NDManager m = NDManager.newBaseManager()) {
            // 5 rows of hidden 44 against a vocabulary of 29: tails of both the k loop and the 4-row blocks
            NDArray hidden = m.randomNormal(new Shape(5, CONFIG.hiddenSize()));
            System.setProperty(NativeDecode.PROPERTY, "torch");
            float[] expected = model.logits(hidden).toFloatArray();
            System.setProperty(NativeDecode.PROPERTY, "native");
            assertClose(expected, model.logits(hidden).toFloatArray(), 1e-5, "native lm_head");
            // Under a GradientCollector the product must stay differentiable: d sum(h Wᵀ) / dh[b, k]
            // is the sum over the vocabulary of W[v, k], for every row b.
            float[] w = model.parameters().get("lm_head.weight").toFloatArray();
            int v = CONFIG.vocabSize(), k = CONFIG.hiddenSize();
            try (ai.djl.training.GradientCollector gc = m.getEngine().newGradientCollector()) {
                NDArray h = hidden.duplicate();
                h.setRequiresGradient(true);
                gc.backward(model.logits(h).sum());
                float[] grad = h.getGradient().toFloatArray();
                for (int b = 0; b < 5; b++) {
                    for (int j = 0; j < k; j++) {
                        double col = 0;
                        for (int n = 0; n < v; n++) {
                            col += w[n * k + j];
                        }
                        assertEquals(col, grad[b * k + j], 1e-4, "gradient at row " + b + ", column " + j);
                    }
                }
            }
        }
    }

    /**
     * The weight product on both kernels (AVX-512 where the CPU has it, AVX2) against a sum in double:
     * row counts of 1 to 11 (one group of eight sequences and a remainder), inner sizes with and
     * without a vector tail, output rows that end in partial blocks of three and four, and the
     * work items' edges (24 rows each).
     */
    @Test
    void weightProductOnEitherKernelMatchesADoubleSum() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        Random r = new Random(3);
        try {
            for (boolean wide : new boolean[] {true, false}) {
                NativeDecode.setWideFloat(wide);
                for (int rows : new int[] {1, 3, 8, 11}) {
                    for (int k : new int[] {16, 44, 67, 128}) {
                        for (int n : new int[] {29, 100}) {
                            float[] x = new float[rows * k], w = new float[n * k];
                            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                            for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
                            float[] expected = new float[rows * n];
                            for (int b = 0; b < rows; b++) {
                                for (int j = 0; j < n; j++) {
                                    double acc = 0;
                                    for (int i = 0; i < k; i++) acc += (double) x[b * k + i] * w[j * k + i];
                                    expected[b * n + j] = (float) acc;
                                }
                            }
                            java.nio.ByteBuffer out = direct(new float[rows * n]);
                            NativeDecode.project(direct(x), direct(w), out, rows, k, n, 2);
                            float[] actual = new float[rows * n];
                            out.asFloatBuffer().get(actual);
                            assertClose(expected, actual, 1e-5, (wide ? "wide" : "AVX2") + " product, rows " + rows + ", k " + k + ", n " + n);
                        }
                    }
                }
            }
        } finally {
            NativeDecode.setWideFloat(true);
        }
    }

    private static java.nio.ByteBuffer direct(float[] v) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(4 * v.length).order(java.nio.ByteOrder.nativeOrder());
        b.asFloatBuffer().put(v);
        return b;
    }

    @Test
    void nativeLayerMatchesTheLibtorchLayer() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        int steps = 40;   // crosses page boundaries for every sequence (landmarks written by the native layer)
        try (NDManager m = NDManager.newBaseManager();
             KvCache torch = new KvCache(m, CONFIG, 3, 80);
             KvCache nat = new KvCache(m, CONFIG, 3, 80)) {
            float[][] expected = run(m, torch, false, steps);
            float[][] actual = run(m, nat, true, steps);
            for (int s = 0; s < steps; s++) {
                assertClose(expected[s], actual[s], 1e-5, "logits of step " + s);
            }
            assertEquals(java.util.Arrays.toString(torch.lengths()), java.util.Arrays.toString(nat.lengths()));
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                assertClose(torch.keys(l).toFloatArray(), nat.keys(l).toFloatArray(), 1e-5, "keys of layer " + l);
                assertClose(torch.values(l).toFloatArray(), nat.values(l).toFloatArray(), 1e-5, "values of layer " + l);
                assertClose(torch.landmarks(l).toFloatArray(), nat.landmarks(l).toFloatArray(), 1e-5, "landmarks of layer " + l);
            }
        }
    }

    @Test
    void weightUpdatesAreSeenByTheNextStep() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded());
        try (NDManager m = NDManager.newBaseManager()) {
            try (KvCache warm = new KvCache(m, CONFIG, 3, 80)) {
                run(m, warm, true, 1);                       // the native layer takes its weight views now
            }
            NDArray w = model.parameters().get("model.layers.1.mlp.down_proj.weight");
            NDArray before = w.duplicate();
            try {
                w.muli(-1.5f);                               // as an optimizer step or a merged adapter does
                float[][] expected;
                float[][] actual;
                try (KvCache torch = new KvCache(m, CONFIG, 3, 80); KvCache nat = new KvCache(m, CONFIG, 3, 80)) {
                    expected = run(m, torch, false, 3);
                    actual = run(m, nat, true, 3);
                }
                for (int s = 0; s < 3; s++) {
                    assertClose(expected[s], actual[s], 1e-5, "logits of step " + s + " after the update");
                }
            } finally {
                w.set(before.toFloatArray());            // may give w new memory: the next step must follow it
                before.close();
            }
            try (KvCache torch = new KvCache(m, CONFIG, 3, 80); KvCache nat = new KvCache(m, CONFIG, 3, 80)) {
                float[][] expected = run(m, torch, false, 2);
                float[][] actual = run(m, nat, true, 2);
                for (int s = 0; s < 2; s++) {
                    assertClose(expected[s], actual[s], 1e-5, "logits of step " + s + " after NDArray.set");
                }
            }
        }
    }

    @Test
    void propertyChoosesTheLayerAndRejectsOtherValues() {
        System.setProperty(NativeDecode.PROPERTY, "torch");
        assertFalse(NativeDecode.LIBRARY.preferred());
        System.setProperty(NativeDecode.PROPERTY, "native");
        assertEquals(NativeDecode.LIBRARY.loaded(), NativeDecode.LIBRARY.preferred());
        System.setProperty(NativeDecode.PROPERTY, "fast");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, NativeDecode.LIBRARY::preferred);
        assertTrue(e.getMessage().contains("-Dtailguard.decode.kernel"), e.getMessage());
    }
}
