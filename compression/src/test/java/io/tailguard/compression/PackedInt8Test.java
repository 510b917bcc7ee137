package io.tailguard.compression;

import io.tailguard.model.PackedLinear;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The int8-activation product of group-quantized packed linears (PackedLinear.Activations.INT8,
 * tg_packed.h's a8 kernels) against an independent double-precision reference of its formula: per
 * sequence j, x̃_j = H_in (s_in ⊙ x_j) with H an explicit (block-diagonal Sylvester) Hadamard matrix,
 * a_j = max |x̃_j| / 127, xq_j = round(x̃_j / a_j), z_jr = a_j Σ_g step_rg (Σ_{k∈g} code_rk xq_jk −
 * (2^bits − 1)/2 · Σ_{k∈g} xq_jk), y_j = s_out ⊙ H_out z_j; and against the float32 product of the
 * dequantized weight within the rounding bound |Δz_jr| ≤ (a_j / 2) Σ_k |W̃_rk|.
 *
 * <p>Both implementations run: the AVX-512 VNNI kernels (where the CPU has them) and the portable
 * ones, forced with {@link PackedLinear#useWideVectors}; they must agree up to float summation order.
 * Shapes reach the kernels' tails: columns not a multiple of 8 (a chunk), 64 or 128 (a block of the
 * 4-bit expansion), odd widths (rows inside bytes, Hadamard block 1), narrow last groups, groups of 8,
 * 24, 32, 64 and 128, widths the wide kernels do not take (2, 3 bits; groups 4, 5, 7), rows not a multiple
 * of the 4 rows run side by side nor of a work item, and every batch from 1 to 9 (a partial and a
 * second tile of 8 sequences).
 */
class PackedInt8Test {
    private static final int[][] SHAPES = {
            // rows, cols, bits, group
            {37, 100, 4, 32},   // 12 chunks + 4 columns; Hadamard block 4 in, 1 out
            {24, 77, 4, 32},    // odd width: rows start inside bytes; block 1 in
            {40, 200, 8, 32},
            {33, 520, 4, 64},   // 65 chunks: a partial 128-column block of the 4-bit expansion; last group 8 wide
            {19, 1000, 8, 128}, // last group 104 wide
            {70, 136, 4, 128},  // rows over several work items, a row tail of 2
            {12, 129, 4, 32},
            {16, 300, 8, 64},
            {64, 512, 4, 32},   // the bench's shape class
            {10, 72, 4, 8},     // group of one chunk
            {20, 150, 4, 24},   // group of three chunks
            {21, 96, 3, 16},    // 3 bits: portable kernels in both modes
            {9, 52, 2, 4},      // group 4: portable
            {11, 45, 4, 5},     // odd group: the portable kernels' per-sequence path
            {13, 61, 8, 7},
    };

    private boolean wideAvailable;

    @BeforeEach
    void needsTheLibrary() {
        Assumptions.assumeTrue(PackedLinear.supported(), () -> "native decoder library not loaded: " + PackedLinear.unsupportedReason());
        wideAvailable = PackedLinear.useWideVectors(true);
    }

    @AfterEach
    void restoreWide() {
        if (PackedLinear.supported()) {
            PackedLinear.useWideVectors(true);
        }
    }

    static PackedLinear pack(QuantizedLinear q, PackedLinear.Activations a) {
        return PackedLinear.quantized(q.rows(), q.cols(), q.bits(), q.groupSize(), PackedCodes.pack(q.codes(), q.bits()),
                QuantizedCheckpoint.halves(q.steps()), PackedCodes.packSigns(q.signsOut()), PackedCodes.packSigns(q.signsIn()), a);
    }

    /** The orthonormal block-diagonal Sylvester Hadamard of n (block: the largest power of two dividing n). */
    static double[][] hadamard(int n) {
        int b = Integer.lowestOneBit(n);
        double[][] h = new double[n][n];
        double s = 1 / Math.sqrt(b);
        for (int o = 0; o < n; o += b) {
            for (int i = 0; i < b; i++) {
                for (int j = 0; j < b; j++) {
                    h[o + i][o + j] = (Integer.bitCount(i & j) & 1) == 0 ? s : -s;
                }
            }
        }
        return h;
    }

    static double[] times(double[][] m, double[] v) {
        double[] out = new double[m.length];
        for (int i = 0; i < m.length; i++) {
            double s = 0;
            for (int j = 0; j < v.length; j++) {
                s += m[i][j] * v[j];
            }
            out[i] = s;
        }
        return out;
    }

    /** W̃[r][k] = step · (code − offset), in double. */
    static double[][] rotatedWeight(QuantizedLinear q) {
        int groups = GroupQuantizer.groupsOf(q.cols(), q.groupSize());
        double offset = ((1 << q.bits()) - 1) / 2.0;
        double[][] w = new double[q.rows()][q.cols()];
        for (int r = 0; r < q.rows(); r++) {
            for (int k = 0; k < q.cols(); k++) {
                w[r][k] = q.steps()[r * groups + k / q.groupSize()] * ((q.codes()[r * q.cols() + k] & 0xff) - offset);
            }
        }
        return w;
    }

    /** x̃ = H_in (s_in ⊙ x) of one sequence, in double from the float input. */
    static double[] rotatedInput(QuantizedLinear q, double[][] hIn, float[] x, int b) {
        double[] v = new double[q.cols()];
        for (int k = 0; k < q.cols(); k++) {
            v[k] = q.signsIn()[k] * (double) x[b * q.cols() + k];
        }
        return times(hIn, v);
    }

    /**
     * Inputs whose rotated values are c_j (q_k + δ_k), |δ_k| ≤ 0.3, with one entry exactly ±127 c_j:
     * a_j = c_j and every xq_jk = q_k with no rounding tie within reach of float32 error, so the
     * reference's xq is the kernel's. Sequence 2 (when present) is all zeros: its output must be 0.
     */
    static float[] designedInputs(QuantizedLinear q, double[][] hIn, int batch, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cols = q.cols();
        float[] x = new float[batch * cols];
        for (int b = 0; b < batch; b++) {
            if (b == 2) {
                continue;
            }
            double c = 0.01 + r.nextDouble();
            double[] t = new double[cols];
            for (int k = 0; k < cols; k++) {
                int qk = (int) Math.max(-126, Math.min(126, Math.round(r.nextGaussian() * 40)));
                t[k] = c * (qk + 0.6 * (r.nextDouble() - 0.5));
            }
            t[r.nextInt(cols)] = (r.nextBoolean() ? 127 : -127) * c;
            double[] v = times(hIn, t); // H is its own inverse
            for (int k = 0; k < cols; k++) {
                x[b * cols + k] = (float) (q.signsIn()[k] * v[k]);
            }
        }
        return x;
    }

    /** The reference y [batch, rows] and, per output, Σ of |terms| carried through H_out (the tolerance's scale). */
    static double[][] reference(QuantizedLinear q, float[] x, int batch) {
        int rows = q.rows(), cols = q.cols(), groups = GroupQuantizer.groupsOf(cols, q.groupSize());
        double[][] hIn = hadamard(cols), hOut = hadamard(rows);
        double offset = ((1 << q.bits()) - 1) / 2.0;
        double[] y = new double[batch * rows];
        double[] scale = new double[batch * rows];
        for (int b = 0; b < batch; b++) {
            double[] t = rotatedInput(q, hIn, x, b);
            double m = 0;
            for (double v : t) {
                m = Math.max(m, Math.abs(v));
            }
            double a = m / 127;
            int[] xq = new int[cols];
            for (int k = 0; k < cols; k++) {
                double u = a == 0 ? 0 : t[k] / a;
                double frac = Math.abs(u - Math.floor(u) - 0.5);
                assertTrue(a == 0 || frac > 0.1, "designed input within 0.1 of a rounding tie: " + u);
                xq[k] = (int) Math.rint(u);
                assertTrue(Math.abs(xq[k]) <= 127);
            }
            double[] z = new double[rows];
            double[] zabs = new double[rows];
            for (int r = 0; r < rows; r++) {
                double s = 0;
                double abs = 0;
                for (int g = 0; g < groups; g++) {
                    long dot = 0;
                    long sum = 0;
                    long absDot = 0;
                    for (int k = g * q.groupSize(); k < Math.min(cols, (g + 1) * q.groupSize()); k++) {
                        int code = q.codes()[r * cols + k] & 0xff;
                        dot += (long) code * xq[k];
                        sum += xq[k];
                        absDot += (long) Math.abs(xq[k]) * Math.round(Math.abs(2 * code - 2 * offset));
                    }
                    double step = q.steps()[r * groups + g];
                    s += step * (dot - offset * sum);
                    abs += step * absDot / 2.0;
                }
                z[r] = a * s;
                zabs[r] = a * abs;
            }
            for (int r = 0; r < rows; r++) {
                double v = 0;
                double sc = 0;
                for (int i = 0; i < rows; i++) {
                    v += hOut[r][i] * z[i];
                    sc += Math.abs(hOut[r][i]) * zabs[i];
                }
                y[b * rows + r] = q.signsOut()[r] * v;
                scale[b * rows + r] = sc;
            }
        }
        return new double[][] {y, scale};
    }

    private float[] multiply(PackedLinear p, float[] x, int batch, boolean wide) {
        PackedLinear.useWideVectors(wide);
        try {
            return p.multiply(x, batch);
        } finally {
            PackedLinear.useWideVectors(true);
        }
    }

    @Test
    void int8ProductIsItsFormulaOnBothKernels() {
        for (int[] s : SHAPES) {
            QuantizedLinear q = PackedLinearTest.randomQuantized(s[0], s[1], s[2], s[3], s[0] * 7919L + s[1]);
            String what = s[0] + "x" + s[1] + " at " + s[2] + " bits, group " + s[3];
            double[][] hIn = hadamard(s[1]);
            try (PackedLinear p = pack(q, PackedLinear.Activations.INT8)) {
                assertEquals(PackedLinear.Activations.INT8, p.activations());
                assertEquals(s[2] + "-bit g" + s[3] + " a8", p.label());
                for (int batch = 1; batch <= 9; batch++) {
                    float[] x = designedInputs(q, hIn, batch, 131L * batch + s[1]);
                    double[][] ref = reference(q, x, batch);
                    float[] wide = multiply(p, x, batch, true);
                    float[] portable = multiply(p, x, batch, false);
                    for (int i = 0; i < ref[0].length; i++) {
                        String at = what + ", batch " + batch + ", sequence " + i / s[0] + ", row " + i % s[0];
                        double tol = 1e-5 * ref[1][i] + 1e-9;
                        assertTrue(Math.abs(wide[i] - ref[0][i]) <= tol, at + " (wide): " + wide[i] + " vs " + ref[0][i] + " ± " + tol);
                        assertTrue(Math.abs(portable[i] - ref[0][i]) <= tol, at + " (portable): " + portable[i] + " vs " + ref[0][i] + " ± " + tol);
                        // the same integer sums; float32 summation order only
                        assertTrue(Math.abs(wide[i] - portable[i]) <= 2e-6 * ref[1][i] + 1e-9, at + ": wide " + wide[i] + " vs portable " + portable[i]);
                        if (i / s[0] == 2) {
                            assertTrue(wide[i] == 0 && portable[i] == 0, at + ": a zero sequence gives " + wide[i] + ", " + portable[i]);
                        }
                    }
                }
            }
        }
    }

    /**
     * Against the float32 product of the dequantized weight: with odd rows the output transform is
     * diag(s_out) (Hadamard block 1), so each output's error is the rotated basis's,
     * |Δ_jr| ≤ (a_j / 2) Σ_k |W̃_rk|. Sequence 0's rotated input is built so that row 0 comes within 10%
     * of the bound (every rounding error 0.45 · a in the direction of sign(W̃_0k)), so a kernel
     * rounding worse than to nearest fails; the other sequences are Gaussian with outliers.
     */
    @Test
    void int8ProductIsWithinTheRoundingBoundOfTheFloat32Product() {
        int[][] shapes = {{37, 100, 4, 32}, {33, 520, 4, 64}, {19, 1000, 8, 128}, {21, 96, 3, 16}, {45, 512, 4, 32}};
        for (int[] s : shapes) {
            int rows = s[0];
            int cols = s[1];
            QuantizedLinear q = PackedLinearTest.randomQuantized(rows, cols, s[2], s[3], rows * 31L + cols);
            double[][] wt = rotatedWeight(q);
            float[] w = q.dequantize();
            double[][] hIn = hadamard(cols);
            int batch = 5;
            SplittableRandom r = new SplittableRandom(cols);
            float[] x = new float[batch * cols];
            double c = 0.05;
            double[] t = new double[cols];
            int kmax = r.nextInt(cols);
            for (int k = 0; k < cols; k++) {
                int qk = r.nextInt(-100, 101);
                t[k] = k == kmax ? 127 * c : c * (qk + 0.45 * Math.signum(wt[0][k]));
            }
            double[] v = times(hIn, t);
            for (int k = 0; k < cols; k++) {
                x[k] = (float) (q.signsIn()[k] * v[k]);
            }
            for (int i = cols; i < x.length; i++) {
                x[i] = (float) (r.nextGaussian() * (r.nextInt(50) == 0 ? 20 : 1));
            }
            String what = rows + "x" + cols + " at " + s[2] + " bits, group " + s[3];
            try (PackedLinear p = pack(q, PackedLinear.Activations.INT8)) {
                for (boolean wide : new boolean[] {true, false}) {
                    float[] y = multiply(p, x, batch, wide);
                    for (int b = 0; b < batch; b++) {
                        double[] xt = rotatedInput(q, hIn, x, b);
                        double a = 0;
                        for (double u : xt) {
                            a = Math.max(a, Math.abs(u) / 127);
                        }
                        for (int row = 0; row < rows; row++) {
                            double exact = 0;
                            double terms = 0;
                            double sumW = 0;
                            for (int k = 0; k < cols; k++) {
                                exact += (double) w[row * cols + k] * x[b * cols + k];
                                terms += Math.abs((double) w[row * cols + k] * x[b * cols + k]);
                                sumW += Math.abs(wt[row][k]);
                            }
                            double bound = a / 2 * sumW;
                            double err = Math.abs(y[b * rows + row] - exact);
                            String at = what + (wide ? " (wide)" : " (portable)") + ", sequence " + b + ", row " + row;
                            assertTrue(err <= bound * (1 + 1e-6) + 1e-5 * terms, at + ": error " + err + " over the bound " + bound);
                            if (b == 0 && row == 0) {
                                assertTrue(err >= 0.8 * bound, at + ": the designed row should come near the bound: " + err + " vs " + bound);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void theWideKernelsAreUsedWhereTheCpuHasThem() {
        // useWideVectors(false) always forces the portable kernels; true reports the CPU's support
        assertTrue(!PackedLinear.useWideVectors(false));
        assertEquals(wideAvailable, PackedLinear.useWideVectors(true));
        String arch = System.getProperty("os.arch");
        Assumptions.assumeTrue(wideAvailable, "no AVX-512 VNNI on this CPU (" + arch + "): the portable kernels only");
    }

    @Test
    void float32RemainsTheDefault() {
        QuantizedLinear q = PackedLinearTest.randomQuantized(8, 64, 4, 32, 5);
        try (PackedLinear p = PackedLinearTest.pack(q)) {
            assertEquals(PackedLinear.Activations.FLOAT32, p.activations());
            assertEquals("4-bit g32", p.label());
        }
    }
}
