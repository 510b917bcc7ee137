package io.tailguard.compression;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * V:N:M-aware channel permutation of one fold group (docs/algorithms.md, "V:N:M sparsity"): a permutation of channels
 * that reorders the input columns of some weights (down_proj, or o_proj) and, so that the model
 * computes the same function, the output rows of the weights producing those channels (gate/up, or
 * v). It maximises J = the retained score of all those weights under the pattern.
 *
 * <p>Channels come in classes that may only be permuted among themselves (a KV head's value dims),
 * and a channel may feed several columns (one per query head sharing the KV head): channel d of class
 * g feeds columns {@code base[g][k] + d} of each column-permuted weight, and is row
 * {@code rowBase[g] + d} of each row-permuted weight. Placing channel d at slot s moves all of them to
 * {@code base[g][k] + s} and {@code rowBase[g] + s}.
 *
 * <p>Alternating optimisation: with the current permutation (and so the best masks it allows), free
 * a set of slots such that no column block of a column-permuted weight holds more than one freed
 * column, then reassign the freed channels to the freed slots by linear assignment. With one freed
 * column per block, a block's best kept score depends on the one channel placed in it only, so the
 * assignment's gains are exact and its optimum is the best reassignment for the column side
 * (keeping every channel where it was is among the candidates). Row-side blocks can hold several
 * freed rows, so the new permutation is kept only if the exact J rises. Repeated with fresh random
 * slot sets until {@code patience} rounds in a row find nothing better.
 */
final class ChannelPermutation {
    /** A weight whose input columns follow the permutation: scores [rows, cols], row-major. */
    record Columns(float[] score, int rows, int cols) {}

    /** A weight whose output rows follow the permutation: scores [rows, cols], row-major. */
    record Rows(float[] score, int rows, int cols) {}

    /** Outcome: perm[g][s] = the original channel now at slot s of class g; J before and after. */
    record Outcome(int[][] perm, double before, double after, int rounds) {}

    private final VnmPattern p;
    private final int size;          // channels per class
    private final int[][] base;      // [class][k]: column offset of the k-th column a channel feeds
    private final int[] rowBase;     // [class]: row offset of the class in row-permuted weights
    private final List<Columns> columns;
    private final List<Rows> rows;
    private final int[][] combos;
    private final float[][][] columnMajor; // per column weight: [col][row] scores

    ChannelPermutation(VnmPattern p, int size, int[][] base, int[] rowBase, List<Columns> columns, List<Rows> rows) {
        this.p = p;
        this.size = size;
        this.base = base;
        this.rowBase = rowBase;
        this.columns = columns;
        this.rows = rows;
        this.combos = VnmSelector.combinations(p.m());
        this.columnMajor = new float[columns.size()][][];
        for (int w = 0; w < columns.size(); w++) {
            Columns c = columns.get(w);
            float[][] t = new float[c.cols()][c.rows()];
            for (int r = 0; r < c.rows(); r++) {
                for (int j = 0; j < c.cols(); j++) {
                    t[j][r] = c.score()[r * c.cols() + j];
                }
            }
            columnMajor[w] = t;
        }
    }

    static int[][] identity(int classes, int size) {
        int[][] perm = new int[classes][size];
        for (int[] row : perm) {
            for (int s = 0; s < size; s++) {
                row[s] = s;
            }
        }
        return perm;
    }

    /** Alternating optimisation from the identity; deterministic in the seed. */
    Outcome optimise(long seed, int maxRounds, int patience, int maxFreed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] perm = identity(base.length, size);
        double before = objective(perm);
        double current = before;
        int stale = 0;
        int round = 0;
        while (round < maxRounds && stale < patience) {
            round++;
            int[][] next = reassign(perm, freeSlots(rng, maxFreed));
            double j = objective(next);
            if (j > current * (1 + 1e-12)) {
                perm = next;
                current = j;
                stale = 0;
            } else {
                stale++;
            }
        }
        return new Outcome(perm, before, current, round);
    }

    /** J: the retained score of every column- and row-permuted weight under the pattern. */
    double objective(int[][] perm) {
        double j = 0;
        for (int w = 0; w < columns.size(); w++) {
            Columns c = columns.get(w);
            float[] s = permuteColumns(c.score(), c.rows(), c.cols(), perm);
            j += VnmSelector.select(s, c.rows(), c.cols(), p).retained(s);
        }
        for (Rows r : rows) {
            float[] s = permuteRows(r.score(), r.rows(), r.cols(), perm);
            j += VnmSelector.select(s, r.rows(), r.cols(), p).retained(s);
        }
        return j;
    }

    /** Source column of every column of a column-permuted weight: out[col] = original column. */
    int[] columnSources(int cols, int[][] perm) {
        int[] src = new int[cols];
        for (int j = 0; j < cols; j++) {
            src[j] = j;
        }
        for (int g = 0; g < base.length; g++) {
            for (int off : base[g]) {
                for (int s = 0; s < size; s++) {
                    src[off + s] = off + perm[g][s];
                }
            }
        }
        return src;
    }

    int[] rowSources(int nRows, int[][] perm) {
        int[] src = new int[nRows];
        for (int i = 0; i < nRows; i++) {
            src[i] = i;
        }
        for (int g = 0; g < rowBase.length; g++) {
            for (int s = 0; s < size; s++) {
                src[rowBase[g] + s] = rowBase[g] + perm[g][s];
            }
        }
        return src;
    }

    float[] permuteColumns(float[] w, int nRows, int cols, int[][] perm) {
        int[] src = columnSources(cols, perm);
        float[] out = new float[w.length];
        for (int r = 0; r < nRows; r++) {
            for (int j = 0; j < cols; j++) {
                out[r * cols + j] = w[r * cols + src[j]];
            }
        }
        return out;
    }

    float[] permuteRows(float[] w, int nRows, int cols, int[][] perm) {
        int[] src = rowSources(nRows, perm);
        float[] out = new float[w.length];
        for (int r = 0; r < nRows; r++) {
            System.arraycopy(w, src[r] * cols, out, r * cols, cols);
        }
        return out;
    }

    /** Slots (class, slot) in random order, taken while every column block they feed is still unfreed. */
    List<int[]> freeSlots(SplittableRandom rng, int maxFreed) {
        int n = base.length * size;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int k = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[k];
            order[k] = t;
        }
        List<boolean[]> blocked = new ArrayList<>();
        for (Columns c : columns) {
            blocked.add(new boolean[p.columnBlocks(c.cols())]);
        }
        List<int[]> freed = new ArrayList<>();
        for (int i = 0; i < n && freed.size() < maxFreed; i++) {
            int g = order[i] / size;
            int s = order[i] % size;
            boolean free = true;
            for (int w = 0; w < columns.size() && free; w++) {
                for (int off : base[g]) {
                    free &= !blocked.get(w)[(off + s) / p.m()];
                }
            }
            // two columns of one slot must not share a block either (heads narrower than M)
            for (int w = 0; w < columns.size() && free; w++) {
                for (int a = 0; a < base[g].length && free; a++) {
                    for (int b = a + 1; b < base[g].length; b++) {
                        free &= (base[g][a] + s) / p.m() != (base[g][b] + s) / p.m();
                    }
                }
            }
            if (free) {
                for (int w = 0; w < columns.size(); w++) {
                    for (int off : base[g]) {
                        blocked.get(w)[(off + s) / p.m()] = true;
                    }
                }
                freed.add(new int[] {g, s});
            }
        }
        return freed;
    }

    /** The best reassignment of the freed slots' channels among themselves, class by class. */
    int[][] reassign(int[][] perm, List<int[]> freed) {
        int[][] next = new int[perm.length][];
        for (int g = 0; g < perm.length; g++) {
            next[g] = perm[g].clone();
        }
        List<int[]> srcs = new ArrayList<>();
        for (int w = 0; w < columns.size(); w++) {
            srcs.add(columnSources(columns.get(w).cols(), perm));
        }
        for (int g = 0; g < base.length; g++) {
            List<Integer> slots = new ArrayList<>();
            for (int[] f : freed) {
                if (f[0] == g) {
                    slots.add(f[1]);
                }
            }
            int k = slots.size();
            if (k < 2) {
                continue;
            }
            double[][] gain = new double[k][k];
            for (int b = 0; b < k; b++) {
                int s = slots.get(b);
                for (int w = 0; w < columns.size(); w++) {
                    for (int off : base[g]) {
                        addBlockGains(gain, b, w, srcs.get(w), off + s, off, perm[g], slots);
                    }
                }
            }
            int[] assign = Assignment.maximize(gain); // channel a (of slot a) goes to slot assign[a]
            for (int a = 0; a < k; a++) {
                next[g][slots.get(assign[a])] = perm[g][slots.get(a)];
            }
        }
        return next;
    }

    /**
     * gain[a][b] += the best kept score of the block holding column {@code col} of weight w when that
     * column holds channel perm[slots[a]] (its source column {@code off + channel}).
     */
    private void addBlockGains(double[][] gain, int b, int w, int[] src, int col, int off, int[] permG, List<Integer> slots) {
        Columns c = columns.get(w);
        float[][] t = columnMajor[w];
        int m = p.m();
        int v = p.v();
        int blockStart = col / m * m;
        int width = Math.min(m, c.cols() - blockStart);
        int freedAt = col - blockStart;
        float[] block = new float[v * m];
        for (int rb = 0; rb < c.rows() / v; rb++) {
            for (int i = 0; i < v; i++) {
                for (int j = 0; j < m; j++) {
                    block[i * m + j] = j >= width ? VnmSelector.PAD : j == freedAt ? 0f : t[src[blockStart + j]][rb * v + i];
                }
            }
            for (int a = 0; a < slots.size(); a++) {
                float[] source = t[off + permG[slots.get(a)]];
                for (int i = 0; i < v; i++) {
                    block[i * m + freedAt] = source[rb * v + i];
                }
                gain[a][b] += VnmSelector.bestSum(block, v, m, combos);
            }
        }
    }
}
