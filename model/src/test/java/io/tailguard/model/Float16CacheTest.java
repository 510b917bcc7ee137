package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.Device;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A float16 KV cache holds what a float32 cache holds, rounded as libtorch rounds (the reference for
 * the rounding), written alike by the native and the libtorch layers, prefill and decode.
 */
class Float16CacheTest {
    /** NativeDecodeTest's shapes (head_dim 12: no vector multiple, GQA 5, three layers); prompts that end inside and on page edges. */
    static final ModelConfig CONFIG = NativeDecodeTest.CONFIG;
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

    private static final int[] PROMPTS = {3, 32, 14};

    private static void prefill(NDManager m, KvCache cache) {
        Random r = new Random(17);
        int t = 32;
        long[] padded = new long[PROMPTS.length * t];
        for (int i = 0; i < padded.length; i++) {
            padded[i] = r.nextInt(CONFIG.vocabSize());
        }
        model.prefill(m.create(padded, new Shape(PROMPTS.length, t)), PROMPTS, cache);
    }

    /** Prefill, then {@code steps} decode steps on the native or the libtorch layers; every step's logits. */
    private static float[][] run(NDManager m, KvCache cache, boolean nativeLayer, int steps) {
        System.setProperty(NativeDecode.PROPERTY, nativeLayer ? "native" : "torch");
        System.setProperty(NativePrefill.PROPERTY, nativeLayer ? "native" : "torch");
        prefill(m, cache);
        Random r = new Random(23);
        float[][] out = new float[steps][];
        for (int s = 0; s < steps; s++) {
            long[] tokens = new long[PROMPTS.length];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = r.nextInt(CONFIG.vocabSize());
            }
            out[s] = model.decode(tokens, cache, AttentionKernel.DENSE, m).toFloatArray();
        }
        return out;
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        NativeDecodeTest.assertClose(expected, actual, tol, what);
    }

    /** Each full page's landmark of sequence s in layer l (of len tokens) is the mean, in double, of its keys as stored. */
    private static void assertLandmarksAreTheStoredKeysMeans(KvCache cache, int l, int s, int len, String what) {
        int d = CONFIG.headDim();
        int full = len / KvCache.PAGE;
        float[] keys = asFloat(cache.keys(l).get(s + ", :, :" + len));
        float[] marks = cache.landmarks(l).get(s + ", :, :" + full).toFloatArray();
        for (int p = 0; p < full; p++) {
            for (int j = 0; j < d; j++) {
                double mean = 0;
                for (int t = 0; t < KvCache.PAGE; t++) {
                    mean += keys[(p * KvCache.PAGE + t) * d + j] / (double) KvCache.PAGE;
                }
                assertEquals(mean, marks[p * d + j], 1e-6, "landmark of page " + p + ", " + what);
            }
        }
    }

    private static float[] asFloat(NDArray a) {
        return KvCache.widened(a).toFloatArray();
    }

    @Test
    void aPrefillStoresKeysAndValuesRoundedAsLibtorchRoundsAndLandmarksOfTheStoredKeys() {
        for (boolean nativeLayer : new boolean[] {false, true}) {
            if (nativeLayer) {
                Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), "native kernels not loaded");
            }
            System.setProperty(NativePrefill.PROPERTY, nativeLayer ? "native" : "torch");
            try (NDManager m = NDManager.newBaseManager();
                 KvCache wide = new KvCache(m, CONFIG, 3, 48);
                 KvCache half = new KvCache(m, CONFIG, 3, 48, DataType.FLOAT16)) {
                prefill(m, wide);
                prefill(m, half);
                assertEquals(DataType.FLOAT16, half.keys(0).getDataType());
                for (int l = 0; l < CONFIG.numLayers(); l++) {
                    for (int s = 0; s < PROMPTS.length; s++) {
                        String rows = s + ", :, :" + PROMPTS[s];
                        // libtorch's float32 -> float16 conversion is the reference rounding. Layer 0 reads
                        // the embeddings, so its keys and values are the float32 cache's exactly, rounded;
                        // later layers read outputs of attention over rounded values, so they are only near.
                        float[] want = wide.keys(l).get(rows).toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray();
                        float[] wantV = wide.values(l).get(rows).toType(DataType.FLOAT16, false).toType(DataType.FLOAT32, false).toFloatArray();
                        String what = (nativeLayer ? "native" : "torch") + ", layer " + l + " seq " + s;
                        if (l == 0) {
                            assertArrayEquals(want, asFloat(half.keys(l).get(rows)), "keys, " + what);
                            assertArrayEquals(wantV, asFloat(half.values(l).get(rows)), "values, " + what);
                        } else {
                            assertClose(want, asFloat(half.keys(l).get(rows)), 1e-2, "keys, " + what);
                            assertClose(wantV, asFloat(half.values(l).get(rows)), 1e-2, "values, " + what);
                        }
                        assertLandmarksAreTheStoredKeysMeans(half, l, s, PROMPTS[s], what);
                    }
                }
            }
        }
    }

    @Test
    void theNativeLayerWritesAFloat16CacheAsTheLibtorchLayerDoes() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native decode layer not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        int steps = 40;   // crosses page boundaries: landmarks of decoded pages, from float16 keys
        try (NDManager m = NDManager.newBaseManager();
             KvCache torch = new KvCache(m, CONFIG, 3, 80, DataType.FLOAT16);
             KvCache nat = new KvCache(m, CONFIG, 3, 80, DataType.FLOAT16)) {
            float[][] expected = run(m, torch, false, steps);
            float[][] actual = run(m, nat, true, steps);
            for (int s = 0; s < steps; s++) {
                assertClose(expected[s], actual[s], 1e-4, "logits of step " + s);
            }
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                // the two layers' float32 values differ in their last bits, so a rounding may differ by one float16 step
                assertClose(asFloat(torch.keys(l)), asFloat(nat.keys(l)), 1e-3, "keys of layer " + l);
                assertClose(asFloat(torch.values(l)), asFloat(nat.values(l)), 1e-3, "values of layer " + l);
                assertClose(torch.landmarks(l).toFloatArray(), nat.landmarks(l).toFloatArray(), 1e-3, "landmarks of layer " + l);
            }
        }
    }

    @Test
    void decodingOverAFloat16CacheStaysNearTheFloat32Decode() {
        try (NDManager m = NDManager.newBaseManager();
             KvCache wide = new KvCache(m, CONFIG, 3, 80);
             KvCache half = new KvCache(m, CONFIG, 3, 80, DataType.FLOAT16)) {
            float[][] expected = run(m, wide, true, 20);
            float[][] actual = run(m, half, true, 20);
            double worst = 0;
            for (int s = 0; s < 20; s++) {
                assertClose(expected[s], actual[s], 1e-2, "logits of step " + s);
                for (int i = 0; i < expected[s].length; i++) {
                    worst = Math.max(worst, Math.abs(expected[s][i] - actual[s][i]));
                }
            }
            assertTrue(worst > 0, "a float16 cache rounds: its logits cannot equal float32's exactly");
        }
    }

    @Test
    void aFloat16CacheCopiesAFloat32OneRoundedWithLandmarksOfTheStoredKeys() {
        try (NDManager m = NDManager.newBaseManager();
             KvCache wide = new KvCache(m, CONFIG, 3, 48);
             KvCache half = new KvCache(m, CONFIG, 2, 48, DataType.FLOAT16)) {
            prefill(m, wide);
            int[] rows = {1, 0};   // the 32-token prompt (two full pages) and the 3-token one
            half.copyRowsFrom(wide, rows);
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                for (int s = 0; s < rows.length; s++) {
                    int len = PROMPTS[rows[s]];
                    assertEquals(len, half.length(s));
                    float[] want = wide.keys(l).get(rows[s] + ", :, :" + len).toType(DataType.FLOAT16, false)
                            .toType(DataType.FLOAT32, false).toFloatArray();
                    assertArrayEquals(want, asFloat(half.keys(l).get(s + ", :, :" + len)), "keys, layer " + l + " row " + s);
                    assertLandmarksAreTheStoredKeysMeans(half, l, s, len, "layer " + l + " row " + s);
                }
            }
        }
    }

    @Test
    void onlyFloat32AndFloat16Caches() {
        try (NDManager m = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new KvCache(m, CONFIG, 1, 16, DataType.INT8));
            assertTrue(e.getMessage().contains("float16"), e.getMessage());
        }
    }
}
