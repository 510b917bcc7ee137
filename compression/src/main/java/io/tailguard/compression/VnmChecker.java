package io.tailguard.compression;

import java.util.Optional;

/**
 * Checks any boolean mask against a V:N:M pattern, independently of how it was made. A mask [rows,
 * cols] satisfies V:2:M exactly when, for every block of V rows × M columns with r real columns
 * (r = M except in a narrow last block), every row keeps exactly min(2, r) entries of the block and
 * all its rows together use at most min(4, r) distinct columns (so one choice of 4 columns covers
 * the block). For 2:4 (M = 4) that is exactly 2 of every 4 consecutive entries of a row.
 */
public final class VnmChecker {
    private VnmChecker() {}

    /** The first violation, described with its row and columns, or empty when the mask satisfies the pattern. */
    public static Optional<String> violation(boolean[] mask, int rows, int cols, VnmPattern p) {
        if (mask.length != (long) rows * cols) {
            return Optional.of("mask has " + mask.length + " entries, not " + rows + " x " + cols);
        }
        Optional<String> misfit = p.misfit(rows, cols);
        if (misfit.isPresent()) {
            return misfit;
        }
        int m = p.m();
        for (int rb = 0; rb < rows / p.v(); rb++) {
            for (int b = 0; b < p.columnBlocks(cols); b++) {
                int width = p.blockWidth(cols, b);
                int c0 = b * m;
                boolean[] used = new boolean[width];
                for (int i = 0; i < p.v(); i++) {
                    int r = rb * p.v() + i;
                    int kept = 0;
                    for (int j = 0; j < width; j++) {
                        if (mask[r * cols + c0 + j]) {
                            kept++;
                            used[j] = true;
                        }
                    }
                    int want = Math.min(p.n(), width);
                    if (kept != want) {
                        return Optional.of("row " + r + ", columns " + c0 + ".." + (c0 + width - 1) + ": keeps " + kept
                                + ", pattern " + p + " needs exactly " + want);
                    }
                }
                int distinct = 0;
                for (boolean u : used) {
                    distinct += u ? 1 : 0;
                }
                int allowed = Math.min(VnmPattern.COLUMNS_KEPT, width);
                if (distinct > allowed) {
                    return Optional.of("rows " + rb * p.v() + ".." + ((rb + 1) * p.v() - 1) + ", columns " + c0 + ".."
                            + (c0 + width - 1) + ": use " + distinct + " distinct columns, pattern " + p + " allows " + allowed);
                }
            }
        }
        return Optional.empty();
    }
}
