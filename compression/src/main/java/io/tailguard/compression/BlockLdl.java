package io.tailguard.compression;

/**
 * Block LDL of a symmetric positive-definite matrix: H = (I + L) D (I + L)ᵀ with L strictly
 * block-lower and D block-diagonal, blocks of {@code block} × {@code block} (the last block may be
 * smaller when the size is not a multiple).
 *
 * <p>Derived from the Cholesky factor C (H = C Cᵀ): with B the block diagonal of C,
 * I + L = C B⁻¹ (unit block diagonal) and D = B Bᵀ. Cholesky is the one step that can fail, which
 * is exactly the signal {@link Factors#prepare} needs to damp more.
 *
 * @param lower the strictly block-lower L, [n, n]
 * @param diag  the block-diagonal D, [n, n] (zero off the diagonal blocks)
 */
record BlockLdl(double[][] lower, double[][] diag, int block) {

    /** The factorisation, or null when H is not positive definite. */
    static BlockLdl of(double[][] h, int block) {
        int n = h.length;
        double[][] c = Matrices.cholesky(h);
        if (c == null) {
            return null;
        }
        double[][] lower = new double[n][n];
        double[][] diag = new double[n][n];
        for (int b0 = 0; b0 < n; b0 += block) {
            int b1 = Math.min(n, b0 + block);
            int s = b1 - b0;
            double[][] bk = new double[s][s];
            for (int i = 0; i < s; i++) {
                for (int j = 0; j <= i; j++) {
                    bk[i][j] = c[b0 + i][b0 + j];
                }
            }
            double[][] bkInv = Matrices.invertLower(bk);
            double[][] dk = Matrices.multiply(bk, Matrices.transpose(bk));
            for (int i = 0; i < s; i++) {
                System.arraycopy(dk[i], 0, diag[b0 + i], b0, s);
            }
            // Block column of C below the diagonal block, times B⁻¹: rows b1..n of I + L.
            for (int r = b1; r < n; r++) {
                for (int j = 0; j < s; j++) {
                    double v = 0;
                    for (int k = j; k < s; k++) {
                        v += c[r][b0 + k] * bkInv[k][j];
                    }
                    lower[r][b0 + j] = v;
                }
            }
        }
        return new BlockLdl(lower, diag, block);
    }
}
