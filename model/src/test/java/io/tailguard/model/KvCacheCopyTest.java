package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A cache filled by copying prefilled rows holds what prefilling those prompts in place writes. */
class KvCacheCopyTest {
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 512, true, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 3, 0.3, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static long[] padded(int[][] prompts, int width) {
        long[] out = new long[prompts.length * width];
        for (int i = 0; i < prompts.length; i++) {
            for (int j = 0; j < prompts[i].length; j++) {
                out[i * width + j] = prompts[i][j];
            }
        }
        return out;
    }

    static int[] lengths(int[][] prompts) {
        int[] out = new int[prompts.length];
        for (int i = 0; i < prompts.length; i++) {
            out[i] = prompts[i].length;
        }
        return out;
    }

    @Test
    void copiedRowsEqualAPrefillOfTheRepeatedPrompts() {
        java.util.Random rng = new java.util.Random(9);
        int[] a = rng.ints(37, 1, 29).toArray();   // two full pages and a partial one
        int[] b = rng.ints(20, 1, 29).toArray();
        int[][] distinct = {a, b};
        int[][] repeated = {b, a, b, a};
        int[] rows = {1, 0, 1, 0};
        try (NDManager m = NDManager.newBaseManager();
             KvCache once = new KvCache(m, CONFIG, 2, 37);
             KvCache copied = new KvCache(m, CONFIG, 4, 60);
             KvCache direct = new KvCache(m, CONFIG, 4, 60)) {
            model.prefill(m.create(padded(distinct, 37), new Shape(2, 37)), lengths(distinct), once);
            copied.copyRowsFrom(once, rows);
            model.prefill(m.create(padded(repeated, 37), new Shape(4, 37)), lengths(repeated), direct);
            assertArrayEquals(direct.lengths(), copied.lengths());
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                for (int s = 0; s < 4; s++) {
                    int len = repeated[s].length;
                    float[] dk = direct.keys(l).get(s + ", :, :" + len).toFloatArray();
                    float[] ck = copied.keys(l).get(s + ", :, :" + len).toFloatArray();
                    float[] dv = direct.values(l).get(s + ", :, :" + len).toFloatArray();
                    float[] cv = copied.values(l).get(s + ", :, :" + len).toFloatArray();
                    int full = len / KvCache.PAGE;
                    float[] dl = direct.landmarks(l).get(s + ", :, :" + full).toFloatArray();
                    float[] cl = copied.landmarks(l).get(s + ", :, :" + full).toFloatArray();
                    for (int i = 0; i < dk.length; i++) {
                        assertEquals(dk[i], ck[i], 1e-5, "layer " + l + " seq " + s + " key " + i);
                        assertEquals(dv[i], cv[i], 1e-5, "layer " + l + " seq " + s + " value " + i);
                    }
                    for (int i = 0; i < dl.length; i++) {
                        assertEquals(dl[i], cl[i], 1e-5, "layer " + l + " seq " + s + " landmark " + i);
                    }
                }
            }
            // a filled cache, or a row the source does not have, is refused
            assertThrows(IllegalStateException.class, () -> copied.copyRowsFrom(once, rows));
            try (KvCache fresh = new KvCache(m, CONFIG, 4, 60)) {
                assertThrows(IllegalArgumentException.class, () -> fresh.copyRowsFrom(once, new int[] {0, 1, 2, 0}));
                assertThrows(IllegalArgumentException.class, () -> fresh.copyRowsFrom(once, new int[] {0, 1}));
                assertThrows(IllegalArgumentException.class, () -> once.copyRowsFrom(fresh, new int[] {0, 1}));
            }
        }
    }
}
