package io.tailguard.compression;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class AssignmentTest {
    @Test
    void findsTheBestPermutationThatBruteForceFinds() {
        SplittableRandom rng = new SplittableRandom(2);
        for (int trial = 0; trial < 40; trial++) {
            int n = 1 + trial % 7;
            double[][] g = new double[n][n];
            for (double[] row : g) {
                for (int j = 0; j < n; j++) {
                    row[j] = trial % 2 == 0 ? rng.nextInt(5) : rng.nextDouble() * 100 - 50; // ties, negatives
                }
            }
            int[] a = Assignment.maximize(g);
            boolean[] seen = new boolean[n];
            double total = 0;
            for (int i = 0; i < n; i++) {
                seen[a[i]] = true;
                total += g[i][a[i]];
            }
            for (boolean s : seen) {
                assertEquals(true, s, "a permutation");
            }
            assertEquals(bruteForce(g, 0, new boolean[n]), total, 1e-9, "trial " + trial);
        }
    }

    @Test
    void refusesNonSquareOrNonFiniteGains() {
        assertThrows(IllegalArgumentException.class, () -> Assignment.maximize(new double[][] {{1, 2}}));
        assertThrows(IllegalArgumentException.class, () -> Assignment.maximize(new double[][] {{Double.NaN}}));
    }

    private static double bruteForce(double[][] g, int row, boolean[] used) {
        if (row == g.length) {
            return 0;
        }
        double best = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < g.length; j++) {
            if (!used[j]) {
                used[j] = true;
                best = Math.max(best, g[row][j] + bruteForce(g, row + 1, used));
                used[j] = false;
            }
        }
        return best;
    }
}
