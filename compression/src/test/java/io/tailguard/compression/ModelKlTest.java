package io.tailguard.compression;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.Qwen3Model;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ModelKlTest {
    @Test
    void klIsTheMeanOverPredictedTokensAndIgnoresWhatComesAfterTheLastToken() {
        List<int[]> held = TinyModels.sequences(3, 9, 4);
        try (Qwen3Model p = TinyModels.model(1); Qwen3Model q = TinyModels.model(2)) {
            // Reference: host softmax in double over positions 0 .. T-2 of each sequence, from the
            // full sequence's logits (so also checks that the last position is the one dropped).
            double sum = 0;
            int n = 0;
            int v = TinyModels.CONFIG.vocabSize();
            for (int[] s : held) {
                float[] a = logits(p, s);
                float[] b = logits(q, s);
                for (int t = 0; t < s.length - 1; t++) {
                    double[] lp = logSoftmax(a, t * v, v);
                    double[] lq = logSoftmax(b, t * v, v);
                    for (int k = 0; k < v; k++) {
                        sum += Math.exp(lp[k]) * (lp[k] - lq[k]);
                    }
                    n++;
                }
            }
            assertEquals(sum / n, ModelKl.perToken(p, q, held), 1e-5 * sum / n);
            assertEquals(0.0, ModelKl.perToken(p, p, held), 1e-6);
            assertThrows(IllegalArgumentException.class, () -> ModelKl.perToken(p, q, List.of(new int[] {3})));
        }
    }

    private static float[] logits(Qwen3Model m, int[] s) {
        long[] ids = new long[s.length];
        for (int i = 0; i < s.length; i++) {
            ids[i] = s[i];
        }
        try (NDManager x = NDManager.newBaseManager()) {
            return m.forward(x.create(ids, new Shape(1, ids.length))).toFloatArray();
        }
    }

    private static double[] logSoftmax(float[] x, int off, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int k = 0; k < v; k++) {
            max = Math.max(max, x[off + k]);
        }
        double z = 0;
        for (int k = 0; k < v; k++) {
            z += Math.exp(x[off + k] - max);
        }
        double[] out = new double[v];
        for (int k = 0; k < v; k++) {
            out[k] = x[off + k] - max - Math.log(z);
        }
        return out;
    }
}
