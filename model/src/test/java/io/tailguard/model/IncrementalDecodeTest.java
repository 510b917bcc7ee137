package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cached path (chunked prefill, then decode) must reproduce a full causal forward. */
class IncrementalDecodeTest {
    // head_dim unlike hidden/heads, GQA ratio 3, odd vocabulary
    static final ModelConfig CONFIG = new ModelConfig(37, 48, 64, 3, 6, 2, 20, 1e-6, 10_000.0, 2048, false, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 7, 0.2, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static long[] randomIds(Random r, int n) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(CONFIG.vocabSize());
        }
        return ids;
    }

    /** Logits of every position of one sequence by a full forward, [n][V]. */
    static float[][] fullLogits(NDManager m, long[] ids) {
        NDArray logits = model.forward(m.create(ids, new Shape(1, ids.length)));
        float[] flat = logits.toFloatArray();
        int v = CONFIG.vocabSize();
        float[][] out = new float[ids.length][v];
        for (int t = 0; t < ids.length; t++) {
            System.arraycopy(flat, t * v, out[t], 0, v);
        }
        return out;
    }

    static double maxRelDiff(float[] expected, float[] actual, int offset) {
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[offset + i]));
        }
        return diff / scale;
    }

    void checkBatch(int[] promptLengths, int totalLength, int chunkOverride) {
        Random r = new Random(11);
        int b = promptLengths.length;
        long[][] seqs = new long[b][];
        for (int i = 0; i < b; i++) {
            seqs[i] = randomIds(r, totalLength + i * 5);
        }
        try (NDManager m = NDManager.newBaseManager()) {
            int maxPrompt = 0;
            for (int p : promptLengths) {
                maxPrompt = Math.max(maxPrompt, p);
            }
            long[] padded = new long[b * maxPrompt];
            for (int i = 0; i < b; i++) {
                System.arraycopy(seqs[i], 0, padded, i * maxPrompt, promptLengths[i]);
            }
            int maxLen = 0;
            for (long[] s : seqs) {
                maxLen = Math.max(maxLen, s.length);
            }
            float[][][] expected = new float[b][][];
            for (int i = 0; i < b; i++) {
                expected[i] = fullLogits(m, seqs[i]);
            }
            try (KvCache cache = new KvCache(m, CONFIG, b, maxLen)) {
                NDArray first = model.prefill(m.create(padded, new Shape(b, maxPrompt)), promptLengths, cache);
                float[] got = first.toFloatArray();
                for (int i = 0; i < b; i++) {
                    double d = maxRelDiff(expected[i][promptLengths[i] - 1], got, i * CONFIG.vocabSize());
                    assertTrue(d < 1e-5, "prefill logits of sequence " + i + " differ by " + d);
                }
                // Feed each sequence's own continuation; sequences stay at different lengths.
                int steps = maxLen - maxPrompt - 1;
                for (int s = 0; s < steps; s++) {
                    long[] tokens = new long[b];
                    int[] pos = cache.lengths();
                    for (int i = 0; i < b; i++) {
                        tokens[i] = seqs[i][Math.min(pos[i], seqs[i].length - 1)];
                    }
                    float[] logits = model.decode(tokens, cache, AttentionKernel.DENSE, m).toFloatArray();
                    for (int i = 0; i < b; i++) {
                        if (pos[i] < seqs[i].length) {
                            double d = maxRelDiff(expected[i][pos[i]], logits, i * CONFIG.vocabSize());
                            assertTrue(d < 1e-5, "decode step " + s + " sequence " + i + " differs by " + d);
                        }
                    }
                }
            }
        }
    }

    @Test
    void decodeAfterPrefillEqualsFullForwardForUnequalLengths() {
        checkBatch(new int[] {5, 17, 33}, 60, 0);
    }

    @Test
    void prefillLongerThanOneChunkEqualsFullForward() {
        checkBatch(new int[] {Attention.CHUNK + 40, 3}, Attention.CHUNK + 60, 0);
    }

    @Test
    void landmarksAreTheMeanKeyOfEachFullPage() {
        Random r = new Random(3);
        long[] ids = randomIds(r, 40);
        try (NDManager m = NDManager.newBaseManager();
             KvCache cache = new KvCache(m, CONFIG, 1, 64)) {
            model.prefill(m.create(java.util.Arrays.copyOf(ids, 20), new Shape(1, 20)), new int[] {20}, cache);
            for (int t = 20; t < 40; t++) {
                model.decode(new long[] {ids[t]}, cache, AttentionKernel.DENSE, m);
            }
            assertEquals(40, cache.length(0));
            assertEquals(2, cache.fullPages(0));
            float[] keys = cache.keys(1).toFloatArray();      // [1, kvh, cap, D]
            float[] marks = cache.landmarks(1).toFloatArray(); // [1, kvh, cap/16, D]
            int d = CONFIG.headDim();
            int cap = cache.capacity();
            for (int h = 0; h < CONFIG.numKvHeads(); h++) {
                for (int p = 0; p < 2; p++) {
                    for (int j = 0; j < d; j++) {
                        double sum = 0;
                        for (int t = p * 16; t < p * 16 + 16; t++) {
                            sum += keys[(h * cap + t) * d + j];
                        }
                        assertEquals(sum / 16, marks[(h * (cap / 16) + p) * d + j], 1e-5);
                    }
                }
            }
        }
    }
}
