package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rotary tables cover the positions a run reaches, not max_position_embeddings: a config
 * allowing 2^26 positions (whose full tables would not fit an array) loads with small tables, and
 * tables that grow in the middle of a decode give what a full forward gives.
 */
class RotaryTablesTest {
    static final ModelConfig HUGE_LIMIT = new ModelConfig(29, 16, 24, 1, 2, 1, 8, 1e-6, 1e6, 1 << 26, true, -1);

    @Test
    void aHugeLimitLoadsWithTablesForWhatIsUsed() {
        try (Qwen3Model model = Qwen3Model.create(HUGE_LIMIT, RandomInit.weights(HUGE_LIMIT, 3, 0.2, 0.1), Device.cpu());
             NDManager m = NDManager.newBaseManager()) {
            assertEquals(1 << 26, model.maxPositions());
            model.forward(m.create(new long[] {1, 2, 3}, new Shape(1, 3))).close();
            try (NDManager own = NDManager.newBaseManager()) {
                Rotary r = new Rotary(own, HUGE_LIMIT, HUGE_LIMIT.maxPositionEmbeddings());
                assertEquals(Rotary.INITIAL, r.covered());
                r.ensure(5000);
                assertEquals(2 * Rotary.INITIAL, r.covered());
                // cos(p θ^(-2i/D)) and sin, both halves, by the formula
                float[] cos = r.cosTable().toFloatArray();
                float[] sin = r.sinTable().toFloatArray();
                int p = 4999;
                for (int i = 0; i < 4; i++) {
                    double angle = p / Math.pow(1e6, 2.0 * i / 8);
                    assertEquals(Math.cos(angle), cos[p * 8 + i], 1e-6);
                    assertEquals(Math.cos(angle), cos[p * 8 + i + 4], 1e-6);
                    assertEquals(Math.sin(angle), sin[p * 8 + i], 1e-6);
                    assertEquals(Math.sin(angle), sin[p * 8 + i + 4], 1e-6);
                }
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.ensure((1 << 26) + 1));
                assertTrue(e.getMessage().contains("max_position_embeddings"), e.getMessage());
            }
        }
    }

    @Test
    void decodeAcrossTheFirstTablesEqualsAFullForward() {
        ModelConfig c = new ModelConfig(29, 16, 24, 1, 2, 1, 8, 1e-6, 1e4, 8192, false, -1);
        int total = Rotary.INITIAL + 4;
        int prompt = Rotary.INITIAL - 3;
        Random rnd = new Random(5);
        long[] ids = new long[total];
        for (int i = 0; i < total; i++) {
            ids[i] = rnd.nextInt(c.vocabSize());
        }
        int v = c.vocabSize();
        try (NDManager m = NDManager.newBaseManager()) {
            float[] full;
            try (Qwen3Model reference = Qwen3Model.create(c, RandomInit.weights(c, 9, 0.3, 0.1), Device.cpu())) {
                full = reference.forward(m.create(ids, new Shape(1, total))).toFloatArray();
            }
            try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 9, 0.3, 0.1), Device.cpu());
                 KvCache cache = new KvCache(m, c, 1, total)) {
                long[] head = java.util.Arrays.copyOf(ids, prompt);
                model.prefill(m.create(head, new Shape(1, prompt)), new int[] {prompt}, cache).close();
                for (int t = prompt; t < total; t++) {
                    float[] got = model.decode(new long[] {ids[t]}, cache, AttentionKernel.DENSE, m).toFloatArray();
                    double scale = 0;
                    double diff = 0;
                    for (int j = 0; j < v; j++) {
                        scale = Math.max(scale, Math.abs(full[t * v + j]));
                        diff = Math.max(diff, Math.abs(full[t * v + j] - got[j]));
                    }
                    assertTrue(diff / scale < 1e-4, "position " + t + ": relative difference " + diff / scale);
                }
            }
        }
    }
}
