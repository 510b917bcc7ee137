package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Batched teacher-forced scoring against per-sequence logits turned into log-probs by hand. */
class ScorerTest {
    static final ModelConfig CONFIG = new ModelConfig(23, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 256, false, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 9, 0.3, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** log softmax of the logits after position t of the unpadded sequence, in double. */
    static double[] referenceLogprobs(int[] seq, int t) {
        try (NDManager m = NDManager.newBaseManager()) {
            long[] ids = new long[seq.length];
            for (int i = 0; i < seq.length; i++) {
                ids[i] = seq[i];
            }
            float[] logits = model.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
            int v = CONFIG.vocabSize();
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[t * v + j]);
            }
            double sum = 0;
            for (int j = 0; j < v; j++) {
                sum += Math.exp(logits[t * v + j] - max);
            }
            double[] out = new double[v];
            for (int j = 0; j < v; j++) {
                out[j] = logits[t * v + j] - max - Math.log(sum);
            }
            return out;
        }
    }

    @Test
    void batchedScoresOfUnequalSequencesMatchPerSequenceLogSoftmax() {
        List<int[]> prompts = List.of(new int[] {1, 2, 3}, new int[] {7}, new int[] {4, 4, 4, 4, 4, 4, 4});
        List<int[]> conts = List.of(new int[] {5, 6, 7, 8}, new int[] {9, 10}, new int[] {11, 12, 13, 14, 15, 16});
        List<Scorer.Scores> s = Scorer.score(model, prompts, conts, new Scorer.Options(5, true));
        for (int i = 0; i < prompts.size(); i++) {
            int[] p = prompts.get(i);
            int[] c = conts.get(i);
            int[] full = new int[p.length + c.length];
            System.arraycopy(p, 0, full, 0, p.length);
            System.arraycopy(c, 0, full, p.length, c.length);
            for (int t = 0; t < c.length; t++) {
                double[] ref = referenceLogprobs(full, p.length - 1 + t);
                assertEquals(ref[c[t]], s.get(i).logprobs()[t], 1e-4, "seq " + i + " token " + t);
                double total = 0;
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    assertEquals(Math.exp(ref[v]), s.get(i).probs()[t][v], 1e-5);
                    total += s.get(i).probs()[t][v];
                }
                assertEquals(1.0, total, 1e-4);
                int[] top = s.get(i).topIds()[t];
                for (int k = 0; k < top.length; k++) {
                    assertEquals(ref[top[k]], s.get(i).topLogprobs()[t][k], 1e-4);
                    if (k > 0) {
                        assertTrue(ref[top[k - 1]] >= ref[top[k]] - 1e-6, "top-K is in descending order");
                    }
                }
                // nothing outside the top-K beats its last entry
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    final int vv = v;
                    if (java.util.Arrays.stream(top).noneMatch(x -> x == vv)) {
                        assertTrue(ref[v] <= ref[top[top.length - 1]] + 1e-6);
                    }
                }
            }
        }
    }

    @Test
    void tokenOutsideTheVocabularyIsRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> Scorer.score(model, List.of(new int[] {1}), List.of(new int[] {23}), Scorer.Options.LOGPROBS_ONLY));
    }

    @Test
    void samplesOfASharedPromptScoreAsTheirWholeSequencesDo() {
        // a lease's groups: prompts repeated, interleaved, with continuations of different lengths
        // (one of a single token, one longer than a prefill chunk would hold at once)
        java.util.Random rng = new java.util.Random(4);
        int[] a = rng.ints(21, 1, 23).toArray();
        int[] b = rng.ints(9, 1, 23).toArray();
        List<int[]> prompts = List.of(a, b, a, a, b);
        List<int[]> conts = List.of(rng.ints(7, 0, 23).toArray(), rng.ints(1, 0, 23).toArray(), rng.ints(12, 0, 23).toArray(),
                rng.ints(3, 0, 23).toArray(), rng.ints(80, 0, 23).toArray());
        Scorer.Options options = new Scorer.Options(3, true);
        List<Scorer.Scores> shared = Scorer.score(model, prompts, conts, options);
        for (int i = 0; i < prompts.size(); i++) {
            int[] p = prompts.get(i);
            int[] c = conts.get(i);
            int[] seq = new int[p.length + c.length];
            System.arraycopy(p, 0, seq, 0, p.length);
            System.arraycopy(c, 0, seq, p.length, c.length);
            Scorer.Scores s = shared.get(i);
            assertEquals(c.length, s.logprobs().length);
            for (int t = 0; t < c.length; t++) {
                double[] ref = referenceLogprobs(seq, p.length - 1 + t);
                assertEquals(ref[c[t]], s.logprobs()[t], 1e-4, "sequence " + i + " token " + t);
                assertEquals(Math.exp(ref[s.topIds()[t][0]]), s.probs()[t][s.topIds()[t][0]], 1e-4);
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    assertTrue(ref[v] <= ref[s.topIds()[t][0]] + 1e-5, "top-1 is the largest");
                }
            }
        }
    }
}
