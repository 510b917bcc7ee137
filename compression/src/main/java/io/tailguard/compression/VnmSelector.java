package io.tailguard.compression;

import java.util.ArrayList;
import java.util.List;

/**
 * Mask selection under a V:N:M pattern (docs/algorithms.md, "V:N:M sparsity"). For every block of V rows × M columns it
 * tries each of the C(M, 4) column choices, as VENOM's reference does, scores a choice by what the
 * block would finally keep (Σ over its rows of the row's top 2 among the 4 columns), keeps the best
 * (the first in lexicographic order on ties), then keeps each row's top 2 of those 4. Scoring the
 * choice by the final keep rather than by the 4 columns' plain sums makes the result the best mask
 * of the block, which is why the search is exhaustive.
 *
 * <p>Scores are ≥ 0 (|W|, or |W|·‖x‖). Padding columns of a narrow last block score −1, so they are
 * only chosen where a block has fewer than 4 real columns, and only kept where a row has fewer than 2.
 */
final class VnmSelector {
    static final float PAD = -1f;

    private VnmSelector() {}

    /** All 4-subsets of 0 .. m−1 in lexicographic order. */
    static int[][] combinations(int m) {
        List<int[]> out = new ArrayList<>();
        for (int a = 0; a < m; a++) {
            for (int b = a + 1; b < m; b++) {
                for (int c = b + 1; c < m; c++) {
                    for (int d = c + 1; d < m; d++) {
                        out.add(new int[] {a, b, c, d});
                    }
                }
            }
        }
        return out.toArray(new int[0][]);
    }

    /** The best mask of every block of a score matrix [rows · cols], row-major. */
    static VnmMask select(float[] score, int rows, int cols, VnmPattern p) {
        p.misfit(rows, cols).ifPresent(why -> {
            throw new IllegalArgumentException("pattern " + p + ": " + why);
        });
        if (score.length != rows * cols) {
            throw new IllegalArgumentException("score has " + score.length + " entries, not " + rows + " x " + cols);
        }
        int m = p.m();
        int v = p.v();
        int cb = p.columnBlocks(cols);
        int[][] combos = combinations(m);
        byte[] columns = new byte[rows / v * cb * VnmPattern.COLUMNS_KEPT];
        byte[] picks = new byte[rows * cb * p.n()];
        float[] block = new float[v * m]; // [V, M] scores of one block, padding as PAD
        for (int rb = 0; rb < rows / v; rb++) {
            for (int b = 0; b < cb; b++) {
                int width = p.blockWidth(cols, b);
                for (int i = 0; i < v; i++) {
                    int base = (rb * v + i) * cols + b * m;
                    for (int j = 0; j < m; j++) {
                        block[i * m + j] = j < width ? score[base + j] : PAD;
                    }
                }
                int[] best = combos[bestCombination(block, v, m, combos)];
                int at = (rb * cb + b) * VnmPattern.COLUMNS_KEPT;
                for (int k = 0; k < VnmPattern.COLUMNS_KEPT; k++) {
                    columns[at + k] = (byte) best[k];
                }
                for (int i = 0; i < v; i++) {
                    int[] two = topTwo(block, i * m, best);
                    int pat = ((rb * v + i) * cb + b) * p.n();
                    picks[pat] = (byte) two[0];
                    picks[pat + 1] = (byte) two[1];
                }
            }
        }
        return new VnmMask(p, rows, cols, columns, picks);
    }

    /** Index of the combination whose kept sum Σ_rows top2 is largest (first on ties). */
    static int bestCombination(float[] block, int v, int m, int[][] combos) {
        int best = 0;
        double bestSum = Double.NEGATIVE_INFINITY;
        for (int c = 0; c < combos.length; c++) {
            int[] k = combos[c];
            double sum = 0;
            for (int i = 0; i < v; i++) {
                int o = i * m;
                sum += topTwoSum(block[o + k[0]], block[o + k[1]], block[o + k[2]], block[o + k[3]]);
            }
            if (sum > bestSum) {
                bestSum = sum;
                best = c;
            }
        }
        return best;
    }

    /** The kept sum of the block's best choice: what {@link #bestCombination} maximises. */
    static double bestSum(float[] block, int v, int m, int[][] combos) {
        double bestSum = Double.NEGATIVE_INFINITY;
        for (int[] k : combos) {
            double sum = 0;
            for (int i = 0; i < v; i++) {
                int o = i * m;
                sum += topTwoSum(block[o + k[0]], block[o + k[1]], block[o + k[2]], block[o + k[3]]);
            }
            bestSum = Math.max(bestSum, sum);
        }
        return bestSum;
    }

    static double topTwoSum(float a, float b, float c, float d) {
        // the two largest of four: the larger of each pair, then the best of what remains
        float hi1 = Math.max(a, b);
        float lo1 = Math.min(a, b);
        float hi2 = Math.max(c, d);
        float lo2 = Math.min(c, d);
        return hi1 >= hi2 ? (double) hi1 + Math.max(lo1, hi2) : (double) hi2 + Math.max(lo2, hi1);
    }

    /** Positions (0..3, ascending) of the two largest of a row's four selected scores; earlier wins ties. */
    static int[] topTwo(float[] block, int offset, int[] selected) {
        int first = 0;
        for (int k = 1; k < 4; k++) {
            if (block[offset + selected[k]] > block[offset + selected[first]]) {
                first = k;
            }
        }
        int second = first == 0 ? 1 : 0;
        for (int k = 0; k < 4; k++) {
            if (k != first && block[offset + selected[k]] > block[offset + selected[second]]) {
                second = k;
            }
        }
        return first < second ? new int[] {first, second} : new int[] {second, first};
    }
}
