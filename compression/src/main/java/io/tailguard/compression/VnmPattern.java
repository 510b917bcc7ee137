package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;

import java.util.Optional;

/**
 * A V:N:M sparsity pattern (docs/algorithms.md, "V:N:M sparsity"): a weight [rows, cols] is tiled into blocks of V rows
 * × M columns; each block keeps the same 4 columns for all its V rows, and each row keeps N = 2 of
 * those 4 (2:4, the Sparse Tensor Core format). Density 2/M.
 *
 * <p>Columns that do not fill a last whole block are treated as a narrower block (the packed form
 * pads it with zero columns): of its r &lt; M columns it keeps min(4, r) for the block and min(2, r) per
 * row. Rows are not padded: V must divide every layer's row count, as a kernel tiles rows by V.
 *
 * <p>Plain 2:4 is the pattern with M = 4 (every column of a block is selected, so V does not
 * matter); {@link #TWO_FOUR} uses V = 1.
 */
public record VnmPattern(int v, int n, int m) {
    /** Columns each block keeps; the 2:4 hardware format fixes it. */
    public static final int COLUMNS_KEPT = 4;
    /** The largest M: column offsets are stored in one byte, and C(M, 4) choices stay enumerable. */
    public static final int MAX_M = 32;
    public static final VnmPattern TWO_FOUR = new VnmPattern(1, 2, 4);

    public VnmPattern {
        if (v < 1) {
            throw new IllegalArgumentException("pattern " + v + ":" + n + ":" + m + ": V must be >= 1");
        }
        if (n != 2) {
            throw new IllegalArgumentException("pattern " + v + ":" + n + ":" + m
                    + ": N must be 2 (2:4 inside the 4 kept columns of a block)");
        }
        if (m < COLUMNS_KEPT || m > MAX_M) {
            throw new IllegalArgumentException("pattern " + v + ":" + n + ":" + m + ": M must be in "
                    + COLUMNS_KEPT + ".." + MAX_M);
        }
    }

    /** "V:N:M" (e.g. 64:2:5), or "N:M" for plain N:M (only 2:4). */
    public static VnmPattern parse(String s) {
        String[] p = s.strip().split(":");
        try {
            if (p.length == 2) {
                VnmPattern nm = new VnmPattern(1, Integer.parseInt(p[0]), Integer.parseInt(p[1]));
                if (nm.m() != COLUMNS_KEPT) {
                    throw new IllegalArgumentException("pattern " + s + ": an N:M pattern without V must be 2:4");
                }
                return nm;
            }
            if (p.length == 3) {
                return new VnmPattern(Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2]));
            }
        } catch (NumberFormatException e) {
            // falls through to the message below
        }
        throw new IllegalArgumentException("pattern '" + s + "' is not V:N:M (e.g. 64:2:5) or 2:4");
    }

    public boolean isTwoFour() {
        return m == COLUMNS_KEPT;
    }

    /** Kept fraction of a weight whose columns fill whole blocks. */
    public double density() {
        return (double) n / m;
    }

    int columnBlocks(int cols) {
        return (cols + m - 1) / m;
    }

    /** Real (unpadded) columns of column block b. */
    int blockWidth(int cols, int b) {
        return Math.min(m, cols - b * m);
    }

    /** Why this pattern cannot tile a [rows, cols] weight, if it cannot. */
    public Optional<String> misfit(int rows, int cols) {
        if (rows % v != 0) {
            return Optional.of(rows + " rows are not a multiple of V = " + v);
        }
        if (cols < COLUMNS_KEPT) {
            return Optional.of(cols + " columns are fewer than the " + COLUMNS_KEPT + " a block keeps");
        }
        if (cols < m) {
            return Optional.of(cols + " columns are fewer than M = " + m);
        }
        return Optional.empty();
    }

    /** Why this pattern cannot prune every decoder linear layer of a model, if it cannot (names the first layer). */
    public Optional<String> misfit(ModelConfig c) {
        var shapes = ParameterShapes.of(c);
        for (String name : TappedForward.linearNames(c)) {
            long[] s = shapes.get(name);
            Optional<String> why = misfit((int) s[0], (int) s[1]);
            if (why.isPresent()) {
                return Optional.of("pattern " + this + " does not fit " + name + " [" + s[0] + ", " + s[1] + "]: " + why.get());
            }
        }
        return Optional.empty();
    }

    @Override
    public String toString() {
        return isTwoFour() && v == 1 ? n + ":" + m : v + ":" + n + ":" + m;
    }
}
