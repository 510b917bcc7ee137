package io.tailguard.learner;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GRPO + TIS loss against a hand-derived closed form and against finite differences of the
 * loss written out independently in double precision.
 */
class GrpoObjectiveTest {
    static final GrpoObjective.Options O = new GrpoObjective.Options(0.2, 0.28, 3.0);

    /** The loss of §5, written out independently. */
    static double reference(double[] th, float[] old, float[] inf, float[] adv) {
        double sum = 0;
        for (int i = 0; i < th.length; i++) {
            double w = Math.min(Math.exp(old[i] - inf[i]), O.tisCap());
            double rho = Math.exp(th[i] - old[i]);
            double clipped = Math.max(1 - O.clipLow(), Math.min(1 + O.clipHigh(), rho));
            sum += w * Math.min(rho * adv[i], clipped * adv[i]);
        }
        return -sum / th.length;
    }

    /** dL/dθ_i: −w ρ Â / T where the unclipped term is the minimum, else 0. */
    static double closedForm(double th, float old, float inf, float adv, int t) {
        double w = Math.min(Math.exp(old - inf), O.tisCap());
        double rho = Math.exp(th - old);
        double clipped = Math.max(1 - O.clipLow(), Math.min(1 + O.clipHigh(), rho));
        boolean unclippedActive = rho * adv <= clipped * adv;
        boolean clipBinds = rho != clipped;
        return unclippedActive || !clipBinds ? -w * rho * adv / t : 0;
    }

    @Test
    void gradientMatchesClosedFormAndFiniteDifferences() {
        // Tokens chosen to cover: unclipped (A>0, A<0), clipped high (A>0, ρ > 1.28), clipped low
        // (A<0, ρ < 0.8), ρ beyond the clip where the unclipped branch is the minimum (A>0, ρ < 0.8;
        // A<0, ρ > 1.28), TIS weight truncated (π_old/π_inf > 3) and not.
        // The last two tokens belong to an empty group (all rewards equal: advantage 0).
        double[] theta = {-1.0, -2.0, -0.5, -3.0, -1.5, -0.2, -2.2, -1.1, -0.7, -1.3};
        float[] old = {-1.1f, -1.9f, -1.0f, -2.5f, -1.0f, -0.8f, -2.0f, -1.0f, -0.9f, -1.2f};
        float[] inf = {-1.2f, -1.9f, -1.1f, -2.4f, -1.1f, -0.9f, -3.5f, -2.5f, -0.9f, -1.0f};
        float[] adv = {0.7f, -0.4f, 1.2f, -0.9f, 0.5f, -1.3f, 0.8f, -0.6f, 0f, 0f};
        int t = theta.length;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray th = m.create(theta).toType(DataType.FLOAT64, false);
            th.setRequiresGradient(true);
            double loss;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                GrpoObjective.Result r = GrpoObjective.compute(th, old, inf, adv, O);
                loss = r.loss().getDouble();
                gc.backward(r.loss());
            }
            double[] grad = th.getGradient().toDoubleArray();
            assertEquals(reference(theta, old, inf, adv), loss, 1e-6);
            double h = 1e-6;
            int clippedSeen = 0;
            for (int i = 0; i < t; i++) {
                double[] up = theta.clone();
                double[] down = theta.clone();
                up[i] += h;
                down[i] -= h;
                double fd = (reference(up, old, inf, adv) - reference(down, old, inf, adv)) / (2 * h);
                double cf = closedForm(theta[i], old[i], inf[i], adv[i], t);
                assertEquals(cf, fd, 1e-6, "closed form vs finite difference, token " + i);
                assertEquals(cf, grad[i], 1e-6, "autograd vs closed form, token " + i);
                clippedSeen += cf == 0 ? 1 : 0;
            }
            assertTrue(clippedSeen >= 4, "the case set must include clipped tokens and the empty group");
            assertEquals(0.0, grad[8], 1e-12);
            assertEquals(0.0, grad[9], 1e-12);
        }
    }

    @Test
    void statisticsCountTruncationAndClipping() {
        float[] old = {-1f, -1f, -1f, -1f};
        float[] inf = {-1f, -3f, -1f, -0.5f};      // weights 1, e^2 > 3 (truncated), 1, e^-0.5
        float[] adv = {1f, 1f, -1f, 1f};
        double[] theta = {-0.5, -1.0, -1.5, -1.0};  // ρ = e^0.5 > 1.28 (A>0: clipped), 1, e^-0.5 < 0.8 (A<0: clipped), 1
        try (NDManager m = NDManager.newBaseManager()) {
            GrpoObjective.Stats s = GrpoObjective.compute(m.create(theta).toType(DataType.FLOAT32, false), old, inf, adv, O).stats();
            assertEquals(0.25, s.tisTruncatedFraction(), 1e-12);
            assertEquals(0.5, s.clipFraction(), 1e-12);
            double d2 = Math.abs(Math.exp(-1) - Math.exp(-3));
            double d4 = Math.abs(Math.exp(-1) - Math.exp(-0.5));
            assertEquals((d2 + d4) / 4, s.meanAbsOldMinusInf(), 1e-6);
            assertEquals(Math.max(d2, d4), s.maxAbsOldMinusInf(), 1e-6);
            // k1 = mean log(π_inf/π_θ); k3 = mean (r − 1 − log r), r = π_θ/π_inf
            double[] lr = {0.5, 2.0, -0.5, -0.5};
            double k1 = 0;
            double k3 = 0;
            for (double x : lr) {
                k1 -= x;
                k3 += Math.exp(x) - 1 - x;
            }
            assertEquals(k1 / 4, s.klK1(), 1e-6);
            assertEquals(k3 / 4, s.klK3(), 1e-5);
        }
    }

    @Test
    void advantagesAreGroupNormalisedAndEqualGroupsAreDegenerate() {
        double[] r = {1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5};
        double[] a = GrpoObjective.advantages(r, 4, 0);
        assertArrayEquals(new double[] {1, -1, -1, 1, 0, 0, 0, 0}, a, 1e-12); // mean 0.5, std 0.5
        assertTrue(GrpoObjective.degenerate(r, 4, 4));
        assertTrue(!GrpoObjective.degenerate(r, 0, 4));
    }

    @Test
    void klK3IsTheMeanOfRMinusOneMinusLogRWithGradientOneMinusROverT() {
        double[] theta = {-1.0, -2.5, -0.3, -4.0};
        float[] ref = {-1.0f, -1.5f, -0.9f, -2.0f};
        int t = theta.length;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray th = m.create(theta).toType(DataType.FLOAT64, false);
            th.setRequiresGradient(true);
            double value;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray kl = GrpoObjective.klK3(th, ref);
                value = kl.getDouble();
                gc.backward(kl);
            }
            double want = 0;
            double[] grad = th.getGradient().toDoubleArray();
            for (int i = 0; i < t; i++) {
                double r = Math.exp(ref[i] - theta[i]);          // π_ref / π_θ
                want += (r - 1 - Math.log(r)) / t;
                assertEquals((1 - r) / t, grad[i], 1e-6, "d k3 / d log π_θ, token " + i);
            }
            assertEquals(want, value, 1e-6);
            assertEquals(0.0, grad[0], 1e-12, "no pull where the two agree");
        }
    }
}
