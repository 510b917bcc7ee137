package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Kronecker factors H ≈ H_O ⊗ H_I of every linear layer's Hessian (docs/algorithms.md, "YAQA, LDLQ and RTN"), collected
 * on the original model in one sweep over the calibration data per pass.
 *
 * <ul>
 *   <li>{@link #inputsOnly} (GPTQ/LDLQ): H_I = Σ_t x_t x_tᵀ, H_O = I (null).</li>
 *   <li>{@link #sketchA}: start H_I = Σ x xᵀ, then alternate H_O ← Σ (x_tᵀ H_I x_t) g_t g_tᵀ / ‖H_I‖²_F
 *       and H_I ← Σ (g_tᵀ H_O g_t) x_t x_tᵀ / ‖H_O‖²_F, one forward/backward pass each: the power
 *       iteration for the nearest Kronecker product, treating tokens as independent samples.</li>
 *   <li>{@link #sketchB}: per sequence G_s = Σ_t g_t x_tᵀ; H_I = E[G_sᵀ G_s] / m and
 *       H_O = E[G_s G_sᵀ] / n, one pass.</li>
 * </ul>
 *
 * @param in  H_I per layer name, [n, n]
 * @param out H_O per layer name, [m, m]; absent for LDLQ
 */
record HessianSketch(Map<String, double[][]> in, Map<String, double[][]> out) {

    static HessianSketch inputsOnly(Qwen3Model model, List<int[]> calibration) {
        Map<String, double[][]> in = newFactors(model.config(), true);
        new TappedForward(model).run(calibration, false, 0, tap ->
                accumulateWeighted(in.get(tap.name()), tap.x(), tap.tokens(), tap.in(), null));
        in.values().forEach(HessianSketch::mirrorUpper);
        return new HessianSketch(in, Map.of());
    }

    static HessianSketch sketchB(Qwen3Model model, List<int[]> calibration, long seed) {
        ModelConfig c = model.config();
        Map<String, double[][]> in = newFactors(c, true);
        Map<String, double[][]> out = newFactors(c, false);
        new TappedForward(model).run(calibration, true, seed, tap -> {
            int m = tap.out();
            int n = tap.in();
            // G_s = Γᵀ X has rank at most T (X [T, n] the inputs, Γ [T, m] the output gradients),
            // so G_sᵀ G_s = Xᵀ (Γ Γᵀ) X and G_s G_sᵀ = Γᵀ (X Xᵀ) Γ go through T × T Gram matrices:
            // T (n² + m²) / 2 + O(T² (m + n)) work instead of m n (T + m + n) through the m × n G_s.
            double[][] x = rows(tap.x(), tap.tokens(), n);
            double[][] g = rows(tap.g(), tap.tokens(), m);
            accumulateUpper(in.get(tap.name()), x, Matrices.multiply(gram(g), x), 1.0 / m);
            accumulateUpper(out.get(tap.name()), g, Matrices.multiply(gram(x), g), 1.0 / n);
        });
        in.values().forEach(HessianSketch::mirrorUpper);
        out.values().forEach(HessianSketch::mirrorUpper);
        // The mean over sequences; a constant factor, kept so the numbers mean what §7 says.
        double s = 1.0 / calibration.size();
        in.values().forEach(h -> scale(h, s));
        out.values().forEach(h -> scale(h, s));
        return new HessianSketch(in, out);
    }

    static HessianSketch sketchA(Qwen3Model model, List<int[]> calibration, long seed, int rounds) {
        ModelConfig c = model.config();
        TappedForward forward = new TappedForward(model);
        Map<String, double[][]> in = inputsOnly(model, calibration).in();
        Map<String, double[][]> out = new HashMap<>();
        for (int round = 0; round < rounds; round++) {
            Map<String, double[][]> newOut = newFactors(c, false);
            Map<String, double[][]> hIn = in;
            forward.run(calibration, true, seed, tap -> accumulateWeighted(newOut.get(tap.name()), tap.g(), tap.tokens(),
                    tap.out(), quadraticForms(hIn.get(tap.name()), tap.x(), tap.tokens(), tap.in())));
            newOut.forEach((name, h) -> scale(h, 1 / Matrices.frobeniusSquared(hIn.get(name))));
            out = newOut;
            Map<String, double[][]> newIn = newFactors(c, true);
            Map<String, double[][]> hOut = out;
            forward.run(calibration, true, seed, tap -> accumulateWeighted(newIn.get(tap.name()), tap.x(), tap.tokens(),
                    tap.in(), quadraticForms(hOut.get(tap.name()), tap.g(), tap.tokens(), tap.out())));
            newIn.forEach((name, h) -> scale(h, 1 / Matrices.frobeniusSquared(hOut.get(name))));
            in = newIn;
        }
        return new HessianSketch(in, out);
    }

    private static Map<String, double[][]> newFactors(ModelConfig c, boolean inputSide) {
        Map<String, double[][]> f = new LinkedHashMap<>();
        Map<String, long[]> shapes = io.tailguard.model.ParameterShapes.of(c);
        for (String name : TappedForward.linearNames(c)) {
            int d = (int) shapes.get(name)[inputSide ? 1 : 0];
            f.put(name, new double[d][d]);
        }
        return f;
    }

    /** v_tᵀ H v_t for each token: the weights Sketch A puts on the other side's outer products. */
    private static double[] quadraticForms(double[][] h, float[] v, int tokens, int d) {
        double[] q = new double[tokens];
        for (int t = 0; t < tokens; t++) {
            double s = 0;
            for (int i = 0; i < d; i++) {
                double vi = v[t * d + i];
                double hv = 0;
                for (int j = 0; j < d; j++) {
                    hv += h[i][j] * v[t * d + j];
                }
                s += vi * hv;
            }
            q[t] = s;
        }
        return q;
    }

    /**
     * into += Σ_t weight_t v_t v_tᵀ (weight 1 when weights is null); v [tokens, d] row-major. One
     * row of {@code into} at a time takes every token's update (a token at a time streamed the whole
     * d × d matrix through memory once per token); each entry still sums over t in order, so the
     * result is unchanged. Unweighted, only the upper triangle is written: v_i v_j = v_j v_i exactly,
     * so {@link #mirrorUpper} completes it to the same matrix.
     */
    private static void accumulateWeighted(double[][] into, float[] v, int tokens, int d, double[] weights) {
        boolean upper = weights == null;
        for (int i = 0; i < d; i++) {
            double[] row = into[i];
            int j0 = upper ? i : 0;
            for (int t = 0; t < tokens; t++) {
                double wt = weights == null ? 1 : weights[t];
                double vi = wt * v[t * d + i];
                if (vi == 0) {
                    continue;
                }
                int base = t * d;
                for (int j = j0; j < d; j++) {
                    row[j] += vi * v[base + j];
                }
            }
        }
    }

    /** v [tokens · d] row-major as tokens rows of d doubles. */
    private static double[][] rows(float[] v, int tokens, int d) {
        double[][] r = new double[tokens][d];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < d; i++) {
                r[t][i] = v[t * d + i];
            }
        }
        return r;
    }

    /** v vᵀ for v [T, d]: the T × T Gram matrix of the rows. */
    private static double[][] gram(double[][] v) {
        int t = v.length;
        double[][] k = new double[t][t];
        for (int a = 0; a < t; a++) {
            for (int b = 0; b <= a; b++) {
                double s = 0;
                double[] va = v[a];
                double[] vb = v[b];
                for (int i = 0; i < va.length; i++) {
                    s += va[i] * vb[i];
                }
                k[a][b] = s;
                k[b][a] = s;
            }
        }
        return k;
    }

    /** The upper triangle (j ≥ i) of into += s · aᵀ b, for a, b [T, d]; the lower is filled by {@link #mirrorUpper}. */
    private static void accumulateUpper(double[][] into, double[][] a, double[][] b, double s) {
        int d = into.length;
        for (int i = 0; i < d; i++) {
            double[] row = into[i]; // one output row at a time stays in cache while the T rows stream by
            for (int t = 0; t < a.length; t++) {
                double ai = s * a[t][i];
                if (ai == 0) {
                    continue;
                }
                double[] bt = b[t];
                for (int j = i; j < d; j++) {
                    row[j] += ai * bt[j];
                }
            }
        }
    }

    /** Copies the upper triangle onto the lower, so the factor is exactly symmetric. */
    private static void mirrorUpper(double[][] h) {
        for (int i = 0; i < h.length; i++) {
            for (int j = i + 1; j < h.length; j++) {
                h[j][i] = h[i][j];
            }
        }
    }

    private static void scale(double[][] h, double s) {
        for (double[] row : h) {
            for (int j = 0; j < row.length; j++) {
                row[j] *= s;
            }
        }
    }
}
