package io.tailguard.compression;

import java.util.Arrays;

/**
 * The linear assignment problem on a square matrix: a permutation maximising Σ_i gain[i][π(i)].
 * Kuhn–Munkres with row and column potentials (the O(n³) shortest-augmenting-path form): rows are
 * added one at a time, each by a Dijkstra-like search over reduced costs that stay ≥ 0.
 */
final class Assignment {
    private Assignment() {}

    /** π with π[i] = the column assigned to row i, maximising the total gain; entries must be finite. */
    static int[] maximize(double[][] gain) {
        int n = gain.length;
        for (double[] row : gain) {
            if (row.length != n) {
                throw new IllegalArgumentException("assignment needs a square matrix, got " + n + " x " + row.length);
            }
            for (double g : row) {
                if (!Double.isFinite(g)) {
                    throw new IllegalArgumentException("assignment gains must be finite, got " + g);
                }
            }
        }
        // Minimise cost = −gain. Index 0 is a virtual column/row; rows and columns are 1-based.
        double[] u = new double[n + 1];
        double[] v = new double[n + 1];
        int[] rowOf = new int[n + 1];   // rowOf[j]: row matched to column j (0: none)
        int[] way = new int[n + 1];
        for (int i = 1; i <= n; i++) {
            rowOf[0] = i;
            int j0 = 0;
            double[] minv = new double[n + 1];
            Arrays.fill(minv, Double.POSITIVE_INFINITY);
            boolean[] used = new boolean[n + 1];
            do {
                used[j0] = true;
                int i0 = rowOf[j0];
                double delta = Double.POSITIVE_INFINITY;
                int j1 = -1;
                for (int j = 1; j <= n; j++) {
                    if (!used[j]) {
                        double cur = -gain[i0 - 1][j - 1] - u[i0] - v[j];
                        if (cur < minv[j]) {
                            minv[j] = cur;
                            way[j] = j0;
                        }
                        if (minv[j] < delta) {
                            delta = minv[j];
                            j1 = j;
                        }
                    }
                }
                for (int j = 0; j <= n; j++) {
                    if (used[j]) {
                        u[rowOf[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
            } while (rowOf[j0] != 0);
            do {
                int j1 = way[j0];
                rowOf[j0] = rowOf[j1];
                j0 = j1;
            } while (j0 != 0);
        }
        int[] assign = new int[n];
        for (int j = 1; j <= n; j++) {
            assign[rowOf[j] - 1] = j - 1;
        }
        return assign;
    }
}
