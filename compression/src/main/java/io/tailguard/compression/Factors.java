package io.tailguard.compression;

/**
 * Turns a raw Hessian factor into one the rounding can use: normalised by its mean diagonal (so
 * the damping is relative, and a factor's overall scale, which the Kronecker product cannot pin
 * down, does not matter), then damped with 0.01·I, doubling the damping until block LDL succeeds.
 */
final class Factors {
    static final double INITIAL_DAMP = 0.01;

    private Factors() {}

    /** A normalised, damped factor and its block LDL. */
    record Prepared(double[][] h, BlockLdl ldl, double damp) {}

    static Prepared prepare(double[][] raw, int block) {
        int n = raw.length;
        double[][] h = Matrices.symmetrize(raw);
        double meanDiag = Matrices.trace(h) / n;
        if (!(meanDiag > 0) || !Double.isFinite(meanDiag)) {
            // A layer that saw no signal (e.g. all-zero gradients): fall back to the identity.
            h = Matrices.identity(n);
            meanDiag = 1;
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                h[i][j] /= meanDiag;
            }
        }
        for (double damp = INITIAL_DAMP; damp < 1e6; damp *= 2) {
            double[][] d = Matrices.copy(h);
            for (int i = 0; i < n; i++) {
                d[i][i] += damp;
            }
            BlockLdl ldl = BlockLdl.of(d, block);
            if (ldl != null) {
                return new Prepared(d, ldl, damp);
            }
        }
        throw new IllegalStateException("factor of size " + n + " stays indefinite after damping");
    }
}
