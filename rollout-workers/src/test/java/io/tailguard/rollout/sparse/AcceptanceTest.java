package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AcceptanceTest {

    private static float[] logs(float[] p) {
        float[] out = new float[p.length];
        for (int i = 0; i < p.length; i++) {
            out[i] = (float) Math.log(p[i]);
        }
        return out;
    }

    /** 1 − TV(p, q) = 1 − ½ Σ |p − q|, an independent route to α. */
    private static double oneMinusTv(float[] p, float[] q) {
        double tv = 0;
        for (int i = 0; i < p.length; i++) {
            tv += Math.abs((double) p[i] - q[i]);
        }
        return 1 - tv / 2;
    }

    private static float[] randomDistribution(Random rnd, int n, double sharpness) {
        double[] w = new double[n];
        double s = 0;
        for (int i = 0; i < n; i++) {
            w[i] = Math.exp(sharpness * rnd.nextGaussian());
            s += w[i];
        }
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = (float) (w[i] / s);
        }
        return p;
    }

    @Test
    void handBuiltDistributionMatchesSumOfMinsAndOneMinusTv() {
        float[] p = {0.5f, 0.3f, 0.2f, 0.0f};
        float[] q = {0.4f, 0.1f, 0.3f, 0.2f};
        // min: 0.4 + 0.1 + 0.2 + 0.0 = 0.7; TV = ½(0.1 + 0.2 + 0.1 + 0.2) = 0.3
        assertEquals(0.7, Acceptance.exact(p, q), 1e-6);
        assertEquals(0.7, oneMinusTv(p, q), 1e-6);
        assertEquals(0.7, Acceptance.fromLogprobs(logs(p), logs(q)), 1e-6);
    }

    @Test
    void disjointSupportsGiveZero() {
        assertEquals(0.0, Acceptance.exact(new float[] {1, 0}, new float[] {0, 1}), 0);
    }

    @Test
    void randomDistributionsAgreeWithOneMinusTvInEveryForm() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 50; trial++) {
            int n = 2 + rnd.nextInt(60);
            float[] p = randomDistribution(rnd, n, 2);
            float[] q = randomDistribution(rnd, n, 2);
            double reference = oneMinusTv(p, q);
            assertEquals(reference, Acceptance.exact(p, q), 1e-6);
            assertEquals(reference, Acceptance.fromLogprobs(logs(p), logs(q)), 1e-5);
            // logits = log-probs shifted by arbitrary constants: log-softmax removes the shift
            float[] pLogits = logs(p);
            float[] qLogits = logs(q);
            for (int i = 0; i < n; i++) {
                pLogits[i] += 3.0f;
                qLogits[i] -= 5.0f;
            }
            assertEquals(reference, Acceptance.fromLogits(pLogits, qLogits), 1e-5);
        }
    }

    @Test
    void identicalDistributionsGiveOne() {
        Random rnd = new Random(11);
        float[] p = randomDistribution(rnd, 1000, 3);
        assertEquals(1.0, Acceptance.exact(p, p), 1e-6);
        assertTrue(Acceptance.exact(p, p) <= 1.0);
        assertEquals(1.0, Acceptance.fromLogprobs(logs(p), logs(p)), 1e-5);
        float[] logits = {1.5f, -2f, 0.25f, 7f};
        assertEquals(1.0, Acceptance.fromLogits(logits, logits), 1e-9);
    }

    @Test
    void top20IsALowerBoundOnTheExactValue() {
        Random rnd = new Random(3);
        for (int trial = 0; trial < 30; trial++) {
            float[] p = randomDistribution(rnd, 500, 2.5);
            float[] q = randomDistribution(rnd, 500, 2.5);
            double exact = Acceptance.exact(p, q);
            double approx = Acceptance.topK(logs(p), logs(q), Acceptance.DEFAULT_TOP_K);
            assertTrue(approx <= exact + 1e-6, approx + " > " + exact);
            assertTrue(approx >= 0);
        }
    }

    @Test
    void top20EqualsExactWhenBothSupportsFit() {
        Random rnd = new Random(5);
        int vocab = 1000;
        for (int trial = 0; trial < 20; trial++) {
            float[] p = new float[vocab];
            float[] q = new float[vocab];
            // supports of ≤ 20 tokens, overlapping in part
            float[] a = randomDistribution(rnd, 15, 1.5);
            float[] b = randomDistribution(rnd, 20, 1.5);
            for (int i = 0; i < a.length; i++) {
                p[100 + 3 * i] = a[i];
            }
            for (int i = 0; i < b.length; i++) {
                q[100 + 2 * i] = b[i];
            }
            double exact = Acceptance.exact(p, q);
            assertEquals(oneMinusTv(p, q), exact, 1e-6);
            assertEquals(exact, Acceptance.topK(logs(p), logs(q), 20), 1e-6);
        }
    }

    @Test
    void topKOnIdPairsSumsOnlyTheSharedTokens() {
        // p top-3: ids 4 (0.5), 9 (0.3), 2 (0.1); q top-3: ids 9 (0.6), 4 (0.2), 7 (0.1)
        int[] pIds = {4, 9, 2};
        float[] pLp = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.1)};
        int[] qIds = {9, 4, 7};
        float[] qLp = {(float) Math.log(0.6), (float) Math.log(0.2), (float) Math.log(0.1)};
        // shared: 4 → min(0.5, 0.2) = 0.2; 9 → min(0.3, 0.6) = 0.3; total 0.5
        assertEquals(0.5, Acceptance.topK(pIds, pLp, qIds, qLp), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> Acceptance.topK(new int[] {1, 1}, new float[2], qIds, qLp));
        assertThrows(IllegalArgumentException.class, () -> Acceptance.topK(pIds, new float[2], qIds, qLp));
    }

    @Test
    void topIdsAreTheLargestFirst() {
        float[] v = {0.1f, 5f, -1f, 3f, 5f, 2f};
        assertArrayEquals(new int[] {1, 4, 3}, Acceptance.topIds(v, 3));
        assertArrayEquals(new int[] {1, 4, 3, 5, 0, 2}, Acceptance.topIds(v, 20));
    }

    @Test
    void mismatchedLengthsAndNaNAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> Acceptance.exact(new float[3], new float[4]));
        assertThrows(IllegalArgumentException.class, () -> Acceptance.exact(new float[] {Float.NaN}, new float[] {1}));
    }
}
