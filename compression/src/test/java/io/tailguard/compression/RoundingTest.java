package io.tailguard.compression;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RoundingTest {

    // ---- helpers the test owns, so the identity is checked against an independent computation ----

    static double[][] gaussian(int r, int c, SplittableRandom rng) {
        double[][] a = new double[r][c];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < c; j++) {
                a[i][j] = Math.sqrt(-2 * Math.log(1 - rng.nextDouble())) * Math.cos(2 * Math.PI * rng.nextDouble());
            }
        }
        return a;
    }

    /** A random SPD matrix A Aᵀ / k + ridge·I. */
    static double[][] randomSpd(int n, int k, double ridge, SplittableRandom rng) {
        double[][] a = gaussian(n, k, rng);
        double[][] h = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += a[i][p] * a[j][p];
                }
                h[i][j] = s / k + (i == j ? ridge : 0);
            }
        }
        return h;
    }

    static double[][] mul(double[][] a, double[][] b) {
        double[][] o = new double[a.length][b[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < b[0].length; j++) {
                double s = 0;
                for (int k = 0; k < b.length; k++) {
                    s += a[i][k] * b[k][j];
                }
                o[i][j] = s;
            }
        }
        return o;
    }

    static double[][] t(double[][] a) {
        double[][] o = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                o[j][i] = a[i][j];
            }
        }
        return o;
    }

    static double[][] plusIdentity(double[][] l) {
        double[][] o = new double[l.length][];
        for (int i = 0; i < l.length; i++) {
            o[i] = l[i].clone();
            o[i][i] += 1;
        }
        return o;
    }

    static double tr(double[][] a) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i][i];
        }
        return s;
    }

    /**
     * Block LDL by block Gaussian elimination on Schur complements (not via Cholesky, as the code
     * under test does): D_kk = S_kk, L_ik = S_ik D_kk⁻¹, S_ij -= L_ik D_kk L_jkᵀ.
     */
    static double[][][] ldlBySchur(double[][] h, int b) {
        int n = h.length;
        double[][] s = new double[n][];
        for (int i = 0; i < n; i++) {
            s[i] = h[i].clone();
        }
        double[][] l = new double[n][n];
        double[][] d = new double[n][n];
        for (int k0 = 0; k0 < n; k0 += b) {
            int k1 = Math.min(n, k0 + b);
            int w = k1 - k0;
            double[][] dk = new double[w][w];
            for (int i = 0; i < w; i++) {
                for (int j = 0; j < w; j++) {
                    dk[i][j] = s[k0 + i][k0 + j];
                    d[k0 + i][k0 + j] = dk[i][j];
                }
            }
            double[][] dkInv = invert(dk);
            for (int i = k1; i < n; i++) {
                for (int j = 0; j < w; j++) {
                    double v = 0;
                    for (int p = 0; p < w; p++) {
                        v += s[i][k0 + p] * dkInv[p][j];
                    }
                    l[i][k0 + j] = v;
                }
            }
            for (int i = k1; i < n; i++) {
                for (int j = k1; j < n; j++) {
                    double v = 0;
                    for (int p = 0; p < w; p++) {
                        v += l[i][k0 + p] * s[k0 + p][j];
                    }
                    s[i][j] -= v;
                }
            }
        }
        return new double[][][] {l, d};
    }

    /** Gauss–Jordan with partial pivoting. */
    static double[][] invert(double[][] a) {
        int n = a.length;
        double[][] m = new double[n][2 * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(a[i], 0, m[i], 0, n);
            m[i][n + i] = 1;
        }
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int r = c + 1; r < n; r++) {
                if (Math.abs(m[r][c]) > Math.abs(m[p][c])) {
                    p = r;
                }
            }
            double[] tmp = m[c];
            m[c] = m[p];
            m[p] = tmp;
            double piv = m[c][c];
            for (int j = 0; j < 2 * n; j++) {
                m[c][j] /= piv;
            }
            for (int r = 0; r < n; r++) {
                if (r != c && m[r][c] != 0) {
                    double f = m[r][c];
                    for (int j = 0; j < 2 * n; j++) {
                        m[r][j] -= f * m[c][j];
                    }
                }
            }
        }
        double[][] inv = new double[n][n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(m[i], n, inv[i], 0, n);
        }
        return inv;
    }

    static double proxy(double[][] dw, double[][] hIn, double[][] hOut) {
        return tr(mul(mul(mul(dw, hIn), t(dw)), hOut));
    }

    static double[][] minus(double[][] a, double[][] b) {
        double[][] o = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                o[i][j] = a[i][j] - b[i][j];
            }
        }
        return o;
    }

    // ---- tests ----

    @Test
    void blockLdlReconstructsTheFactorWithStrictlyBlockLowerLAndBlockDiagonalD() {
        SplittableRandom rng = new SplittableRandom(1);
        int n = 40; // not a multiple of 16: the last block is smaller
        double[][] h = randomSpd(n, 60, 0.05, rng);
        BlockLdl f = BlockLdl.of(h, 16);
        double[][] back = mul(mul(plusIdentity(f.lower()), f.diag()), t(plusIdentity(f.lower())));
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                assertEquals(h[i][j], back[i][j], 1e-10);
                if (i / 16 <= j / 16) {
                    assertEquals(0.0, f.lower()[i][j], "L must be strictly block-lower at " + i + "," + j);
                }
                if (i / 16 != j / 16) {
                    assertEquals(0.0, f.diag()[i][j], "D must be block-diagonal at " + i + "," + j);
                }
            }
        }
        double[][][] ref = ldlBySchur(h, 16);
        for (int i = 0; i < n; i++) {
            assertArrayEquals(ref[0][i], f.lower()[i], 1e-9);
            assertArrayEquals(ref[1][i], f.diag()[i], 1e-9);
        }
    }

    @Test
    void yaqaProxyErrorEqualsTraceOfResidualAgainstBothDiagonalFactors() {
        for (long seed = 0; seed < 4; seed++) {
            SplittableRandom rng = new SplittableRandom(100 + seed);
            int m = 48;
            int n = 80;
            double[][] hIn = randomSpd(n, 2 * n, 0.01, rng);
            double[][] hOut = randomSpd(m, 2 * m, 0.01, rng);
            double[][] w = gaussian(m, n, rng);
            int bits = 2 + (int) seed % 3;
            GroupQuantizer q = GroupQuantizer.fit(w, bits, 32);
            BlockLdl in = BlockLdl.of(hIn, 16);
            BlockLdl out = BlockLdl.of(hOut, 16);
            TwoSidedRounding.Result res = TwoSidedRounding.round(w, in.lower(), out.lower(), q);

            // Independently: the LDL by Schur complements, R = (I + L_O)ᵀ ΔW (I + L_I).
            double[][][] li = ldlBySchur(hIn, 16);
            double[][][] lo = ldlBySchur(hOut, 16);
            double[][] dw = minus(w, res.quantized());
            double[][] r = mul(mul(t(plusIdentity(lo[0])), dw), plusIdentity(li[0]));
            double expected = tr(mul(mul(mul(r, li[1]), t(r)), lo[1]));
            double actual = proxy(dw, hIn, hOut);
            assertEquals(expected, actual, 1e-9 * Math.abs(expected), "seed " + seed);
            // ... and that R is exactly the per-tile rounding residual target − Ŵ.
            for (int i = 0; i < m; i++) {
                assertArrayEquals(r[i], res.residual()[i], 1e-9);
            }
        }
    }

    @Test
    void residualOfAnUnclampedWeightIsAtMostHalfAStep() {
        SplittableRandom rng = new SplittableRandom(7);
        double[][] w = gaussian(32, 64, rng);
        GroupQuantizer q = GroupQuantizer.fit(w, 4, 32);
        TwoSidedRounding.Result res = TwoSidedRounding.round(w, null, null, q);
        for (int i = 0; i < 32; i++) {
            for (int j = 0; j < 64; j++) {
                int c = res.codes()[i][j];
                if (c > 0 && c < 15) {
                    assertTrue(Math.abs(res.residual()[i][j]) <= q.step(i, j) / 2 + 1e-12);
                }
                assertEquals(q.value(c, i, j), res.quantized()[i][j]);
            }
        }
    }

    @Test
    void yaqaBeatsLdlqWhenTheOutputFactorIsFarFromIdentity() {
        for (long seed = 0; seed < 3; seed++) {
            SplittableRandom rng = new SplittableRandom(200 + seed);
            int m = 64;
            int n = 64;
            double[][] hIn = randomSpd(n, 2 * n, 0.01, rng);
            // Output channels strongly correlated: a rank-4 component dominates H_O.
            double[][] hOut = randomSpd(m, 4, 0.02, rng);
            float[] w = new float[m * n];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) (0.1 * Math.sqrt(-2 * Math.log(1 - rng.nextDouble())) * Math.cos(2 * Math.PI * rng.nextDouble()));
            }
            for (int bits = 2; bits <= 4; bits++) {
                double yaqa = trueProxy(w, m, n, LayerQuantizer.quantize("w", w, m, n, hIn, hOut, bits, 32,
                        new SplittableRandom(seed)).layer(), hIn, hOut);
                double ldlq = trueProxy(w, m, n, LayerQuantizer.quantize("w", w, m, n, hIn, null, bits, 32,
                        new SplittableRandom(seed)).layer(), hIn, hOut);
                double rtn = trueProxy(w, m, n, LayerQuantizer.quantize("w", w, m, n, null, null, bits, 32,
                        new SplittableRandom(seed)).layer(), hIn, hOut);
                System.out.printf("far-from-identity H_O seed %d bits %d: proxy RTN %.4g LDLQ %.4g YAQA %.4g%n",
                        seed, bits, rtn, ldlq, yaqa);
                assertTrue(yaqa < ldlq, "YAQA " + yaqa + " should beat LDLQ " + ldlq);
            }
        }
    }

    @Test
    void ldlqBeatsRoundToNearestOnItsOwnObjectiveAndEqualsItWhenTheFactorIsIdentity() {
        SplittableRandom rng = new SplittableRandom(11);
        int m = 32;
        int n = 64;
        // Correlated inputs, as real activations are.
        double[][] hIn = randomSpd(n, 8, 0.01, rng);
        float[] w = new float[m * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rng.nextDouble(-0.2, 0.2);
        }
        double[][] identityOut = Matrices.identity(m);
        for (int bits = 2; bits <= 4; bits++) {
            QuantizedLinear ldlq = LayerQuantizer.quantize("w", w, m, n, hIn, null, bits, 32, new SplittableRandom(3)).layer();
            QuantizedLinear rtn = LayerQuantizer.quantize("w", w, m, n, null, null, bits, 32, new SplittableRandom(3)).layer();
            double pl = trueProxy(w, m, n, ldlq, hIn, identityOut);
            double pr = trueProxy(w, m, n, rtn, hIn, identityOut);
            assertTrue(pl < pr, "bits " + bits + ": LDLQ " + pl + " should beat RTN " + pr);
        }
        QuantizedLinear ldlqIdentity = LayerQuantizer.quantize("w", w, m, n, Matrices.identity(n), null, 3, 32,
                new SplittableRandom(5)).layer();
        QuantizedLinear rtn = LayerQuantizer.quantize("w", w, m, n, null, null, 3, 32, new SplittableRandom(5)).layer();
        assertArrayEquals(rtn.codes(), ldlqIdentity.codes());
    }

    @Test
    void incoherenceIsOrthogonalAndUndoesItself() {
        SplittableRandom rng = new SplittableRandom(3);
        for (int[] dims : new int[][] {{64, 128}, {48, 96}, {24, 40}}) {
            double[][] w = gaussian(dims[0], dims[1], rng);
            byte[] so = Incoherence.randomSigns(dims[0], rng);
            byte[] si = Incoherence.randomSigns(dims[1], rng);
            double[][] rot = Incoherence.rotate(w, so, si);
            double[][] back = Incoherence.unrotate(rot, so, si);
            for (int i = 0; i < dims[0]; i++) {
                assertArrayEquals(w[i], back[i], 1e-12);
            }
            double[][] hIn = randomSpd(dims[1], dims[1], 0.1, rng);
            double[][] hOut = randomSpd(dims[0], dims[0], 0.1, rng);
            double before = proxy(w, hIn, hOut);
            double after = proxy(rot, Incoherence.rotateFactor(hIn, si), Incoherence.rotateFactor(hOut, so));
            assertEquals(before, after, 1e-9 * before);
        }
        assertEquals(512, Incoherence.hadamardBlock(1536));
        assertEquals(64, Incoherence.hadamardBlock(64));
    }

    @Test
    void dampingGrowsUntilASingularFactorFactorises() {
        double[][] singular = new double[32][32]; // rank one
        for (int i = 0; i < 32; i++) {
            for (int j = 0; j < 32; j++) {
                singular[i][j] = 1;
            }
        }
        Factors.Prepared p = Factors.prepare(singular, 16);
        assertEquals(1.0 + p.damp(), p.h()[0][0], 1e-12); // normalised to mean diagonal 1, then damped
        assertTrue(p.damp() >= Factors.INITIAL_DAMP);
    }

    /** tr(ΔW H_I ΔWᵀ H_O) in the original basis with the raw factors. */
    static double trueProxy(float[] w, int m, int n, QuantizedLinear q, double[][] hIn, double[][] hOut) {
        float[] wq = q.dequantize();
        double[][] dw = new double[m][n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                dw[i][j] = w[i * n + j] - wq[i * n + j];
            }
        }
        return proxy(dw, hIn, hOut);
    }
}
