package io.tailguard.compression;

import java.util.SplittableRandom;

/**
 * Incoherence processing: W̃ = Q_out W Q_inᵀ with Q = Had · diag(s), s random ±1 per channel and Had a
 * normalised (orthonormal, symmetric) Hadamard transform. Factors transform alike,
 * H̃_I = Q_in H_I Q_inᵀ and H̃_O = Q_out H_O Q_outᵀ, so tr(ΔW H_I ΔWᵀ H_O) is unchanged and the
 * rounding can run entirely in the rotated basis.
 *
 * <p>Dimensions that are not a power of two (1536 in the {@code small} preset) use a
 * block-diagonal Hadamard whose block is the largest power of two dividing the dimension (1536 →
 * three blocks of 512): exact, orthonormal, no padding to store, at the price of mixing only within
 * blocks; the random signs still act on every channel. An odd dimension degenerates to signs only.
 */
final class Incoherence {
    private Incoherence() {}

    /** Largest power of two dividing n: the Hadamard block this module uses for a dimension. */
    static int hadamardBlock(int n) {
        return Integer.lowestOneBit(n);
    }

    static byte[] randomSigns(int n, SplittableRandom rng) {
        byte[] s = new byte[n];
        for (int i = 0; i < n; i++) {
            s[i] = rng.nextBoolean() ? (byte) 1 : (byte) -1;
        }
        return s;
    }

    /** In place: v ← Had_block-diag · v (fast Walsh–Hadamard per block, scaled 1/sqrt(block)). */
    static void hadamard(double[] v) {
        int n = v.length;
        int b = hadamardBlock(n);
        double scale = 1 / Math.sqrt(b);
        for (int o = 0; o < n; o += b) {
            for (int h = 1; h < b; h <<= 1) {
                for (int i = o; i < o + b; i += h << 1) {
                    for (int j = i; j < i + h; j++) {
                        double x = v[j];
                        double y = v[j + h];
                        v[j] = x + y;
                        v[j + h] = x - y;
                    }
                }
            }
            for (int i = o; i < o + b; i++) {
                v[i] *= scale;
            }
        }
    }

    /** Q v = Had (s ⊙ v), in place. */
    static void apply(double[] v, byte[] signs) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= signs[i];
        }
        hadamard(v);
    }

    /** Qᵀ v = s ⊙ (Had v), in place (Had is symmetric and orthonormal). */
    static void applyTranspose(double[] v, byte[] signs) {
        hadamard(v);
        for (int i = 0; i < v.length; i++) {
            v[i] *= signs[i];
        }
    }

    /** Q_out W Q_inᵀ. */
    static double[][] rotate(double[][] w, byte[] signsOut, byte[] signsIn) {
        double[][] r = Matrices.copy(w);
        for (double[] row : r) {
            apply(row, signsIn);              // rows: (Q_in wᵣ) = (W Q_inᵀ)ᵣ
        }
        double[][] t = Matrices.transpose(r);
        for (double[] col : t) {
            apply(col, signsOut);
        }
        return Matrices.transpose(t);
    }

    /** Q_outᵀ W̃ Q_in: undoes {@link #rotate}. */
    static double[][] unrotate(double[][] w, byte[] signsOut, byte[] signsIn) {
        double[][] r = Matrices.copy(w);
        for (double[] row : r) {
            applyTranspose(row, signsIn);
        }
        double[][] t = Matrices.transpose(r);
        for (double[] col : t) {
            applyTranspose(col, signsOut);
        }
        return Matrices.transpose(t);
    }

    /** Q H Qᵀ for a symmetric factor H. */
    static double[][] rotateFactor(double[][] h, byte[] signs) {
        return rotate(h, signs, signs);
    }
}
