package io.tailguard.compression;

/**
 * The V:N:M mask of one weight [rows, cols] in its structured form, which is also what the packed
 * checkpoint stores:
 *
 * @param columns for each (row block, column block), row-major over blocks, the 4 selected column
 *                offsets within the block (0 .. M−1, ascending; offsets past the last real column of a
 *                narrow last block are padding)
 * @param picks   for each (row, column block), the 2 kept positions among the block's 4 selected
 *                columns (0 .. 3, ascending): the 2:4 metadata
 */
public record VnmMask(VnmPattern pattern, int rows, int cols, byte[] columns, byte[] picks) {

    public VnmMask {
        if (pattern.misfit(rows, cols).isPresent()) {
            throw new IllegalArgumentException("pattern " + pattern + ": " + pattern.misfit(rows, cols).get());
        }
        int cb = pattern.columnBlocks(cols);
        if (columns.length != rows / pattern.v() * cb * VnmPattern.COLUMNS_KEPT || picks.length != rows * cb * pattern.n()) {
            throw new IllegalArgumentException("mask arrays do not match " + rows + " x " + cols + " at " + pattern);
        }
        // Stored masks come from files too: every block's offsets and every row's positions must be
        // strictly ascending and in range (the structure of the pattern; VnmChecker checks the
        // booleans, e.g. that a narrow last block keeps real columns rather than padding).
        for (int i = 0; i < columns.length; i += VnmPattern.COLUMNS_KEPT) {
            for (int k = 0; k < VnmPattern.COLUMNS_KEPT; k++) {
                int c = columns[i + k];
                if (c < 0 || c >= pattern.m() || (k > 0 && c <= columns[i + k - 1])) {
                    throw new IllegalArgumentException("mask: column offsets of block " + i / VnmPattern.COLUMNS_KEPT
                            + " are not ascending in 0.." + (pattern.m() - 1));
                }
            }
        }
        for (int i = 0; i < picks.length; i += pattern.n()) {
            for (int k = 0; k < pattern.n(); k++) {
                int c = picks[i + k];
                if (c < 0 || c >= VnmPattern.COLUMNS_KEPT || (k > 0 && c <= picks[i + k - 1])) {
                    throw new IllegalArgumentException("mask: 2:4 positions of entry " + i / pattern.n()
                            + " are not ascending in 0..3");
                }
            }
        }
    }

    public int columnBlocks() {
        return pattern.columnBlocks(cols);
    }

    public int rowBlocks() {
        return rows / pattern.v();
    }

    /** Column (absolute, possibly padding ≥ cols) of selected slot k of row block rb, column block b. */
    int column(int rb, int b, int k) {
        return b * pattern.m() + columns[(rb * columnBlocks() + b) * VnmPattern.COLUMNS_KEPT + k];
    }

    /** Absolute column of kept entry e (0 or 1) of row r in column block b; may be padding (≥ cols). */
    int keptColumn(int r, int b, int e) {
        return column(r / pattern.v(), b, picks[(r * columnBlocks() + b) * pattern.n() + e]);
    }

    /** The mask as booleans [rows · cols], row-major; padding columns dropped. */
    public boolean[] toBooleans() {
        boolean[] out = new boolean[rows * cols];
        int cb = columnBlocks();
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cb; b++) {
                for (int e = 0; e < pattern.n(); e++) {
                    int c = keptColumn(r, b, e);
                    if (c < cols) {
                        out[r * cols + c] = true;
                    }
                }
            }
        }
        return out;
    }

    /** Σ of the score over kept entries (score row-major [rows · cols]). */
    public double retained(float[] score) {
        boolean[] keep = toBooleans();
        double s = 0;
        for (int i = 0; i < keep.length; i++) {
            if (keep[i]) {
                s += score[i];
            }
        }
        return s;
    }

    /** w ⊙ mask, row-major. */
    public float[] apply(float[] w) {
        boolean[] keep = toBooleans();
        float[] out = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            out[i] = keep[i] ? w[i] : 0f;
        }
        return out;
    }
}
