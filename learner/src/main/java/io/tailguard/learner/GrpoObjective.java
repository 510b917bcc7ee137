package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.tailguard.model.Scalars;

/**
 * GRPO with truncated importance sampling (docs/algorithms.md, "GRPO with truncated importance sampling (TIS)"), on the log-probs of sampled tokens:
 *
 * <pre>
 *   L = −(1/T) Σ_t  min(π_old/π_inf, C) · min(ρ_t Â_t, clip(ρ_t, 1−ε_low, 1+ε_high) Â_t),   ρ_t = π_θ/π_old
 * </pre>
 *
 * T is the number of tokens in the batch (token-level mean); π_inf is the sparse behaviour policy,
 * π_old the dense policy with the weights that generated the sample, π_θ the policy being trained.
 * The truncated weight is a constant (no gradient flows through it), as in the published code.
 */
public final class GrpoObjective {
    /** ε_low, ε_high (clip-higher), the TIS cap C. */
    public record Options(double clipLow, double clipHigh, double tisCap) {
        public static Options defaults() {
            return new Options(0.2, 0.28, 3.0);
        }

        public Options {
            if (!(clipLow > 0 && clipLow < 1) || !(clipHigh > 0) || !(tisCap >= 1)) {
                throw new IllegalArgumentException("bad GRPO options: clip-low " + clipLow + ", clip-high " + clipHigh
                        + ", TIS cap " + tisCap);
            }
        }
    }

    /** The per-step statistics §5 asks for (entropy and gradient norm come from the trainer). */
    public record Stats(double loss, long tokens, double meanAbsOldMinusInf, double maxAbsOldMinusInf,
                        double tisTruncatedFraction, double clipFraction, double klK1, double klK3) {}

    private GrpoObjective() {}

    /**
     * Group-normalised advantages: Â_i = (R_i − mean) / (std + eps) within each consecutive group of
     * groupSize rewards (population std). A group whose rewards are all equal carries no signal;
     * its advantages are 0 and the caller's dynamic-sampling filter drops it.
     */
    public static double[] advantages(double[] rewards, int groupSize, double eps) {
        if (groupSize < 1 || rewards.length % groupSize != 0) {
            throw new IllegalArgumentException(rewards.length + " rewards do not form groups of " + groupSize);
        }
        double[] a = new double[rewards.length];
        for (int g = 0; g < rewards.length; g += groupSize) {
            double mean = 0;
            for (int i = g; i < g + groupSize; i++) {
                mean += rewards[i];
            }
            mean /= groupSize;
            double var = 0;
            for (int i = g; i < g + groupSize; i++) {
                var += (rewards[i] - mean) * (rewards[i] - mean);
            }
            double std = Math.sqrt(var / groupSize);
            for (int i = g; i < g + groupSize; i++) {
                a[i] = std == 0 ? 0 : (rewards[i] - mean) / (std + eps);
            }
        }
        return a;
    }

    /** True when every reward of the group starting at index g is equal (dynamic sampling drops it). */
    public static boolean degenerate(double[] rewards, int g, int groupSize) {
        for (int i = g + 1; i < g + groupSize; i++) {
            if (rewards[i] != rewards[g]) {
                return false;
            }
        }
        return true;
    }

    /** The loss (differentiable in logpTheta, shape [T]) and its statistics. */
    public record Result(NDArray loss, Stats stats) {}

    /**
     * @param logpTheta [T] log π_θ of the sampled tokens (carries the gradient)
     * @param logpOld   log π_old, [T]
     * @param logpInf   log π_inf, [T]
     * @param advantage Â per token, [T]
     */
    public static Result compute(NDArray logpTheta, float[] logpOld, float[] logpInf, float[] advantage, Options o) {
        return compute(logpTheta, values(logpTheta), logpOld, logpInf, advantage, o);
    }

    /**
     * The loss with π_old the policy the update starts from: the values of logpTheta itself (no
     * gradient through them), read once for the weights and the statistics alike.
     */
    public static Result computeFromStart(NDArray logpTheta, float[] logpInf, float[] advantage, Options o) {
        float[] theta = values(logpTheta);
        return compute(logpTheta, theta, theta, logpInf, advantage, o);
    }

    private static float[] values(NDArray logpTheta) {
        return logpTheta.toType(DataType.FLOAT32, true).toFloatArray();
    }

    /** theta: logpTheta's values. */
    private static Result compute(NDArray logpTheta, float[] theta, float[] logpOld, float[] logpInf, float[] advantage, Options o) {
        int t = logpOld.length;
        if (t == 0 || logpInf.length != t || advantage.length != t || logpTheta.size() != t) {
            throw new IllegalArgumentException("token arrays disagree in length or are empty");
        }
        NDManager m = logpTheta.getManager();
        float[] weight = new float[t];
        double absSum = 0;
        double absMax = 0;
        long truncated = 0;
        for (int i = 0; i < t; i++) {
            double ratio = Math.exp((double) logpOld[i] - logpInf[i]);
            weight[i] = (float) Math.min(ratio, o.tisCap());
            truncated += ratio > o.tisCap() ? 1 : 0;
            double d = Math.abs(Math.exp(logpOld[i]) - Math.exp(logpInf[i]));
            absSum += d;
            absMax = Math.max(absMax, d);
        }
        DataType dt = logpTheta.getDataType();
        NDArray old = m.create(logpOld).toType(dt, false);
        NDArray adv = m.create(advantage).toType(dt, false);
        NDArray rho = logpTheta.sub(old).exp();
        NDArray unclipped = rho.mul(adv);
        NDArray clipped = rho.clip(1 - o.clipLow(), 1 + o.clipHigh()).mul(adv);
        NDArray surrogate = unclipped.minimum(clipped);
        NDArray loss = Scalars.dividedBy(surrogate.mul(m.create(weight).toType(dt, false)).sum().neg(), t);

        long clippedCount = 0;
        double k1 = 0;
        double k3 = 0;
        for (int i = 0; i < t; i++) {
            double r = Math.exp((double) theta[i] - logpOld[i]);
            boolean outside = (advantage[i] > 0 && r > 1 + o.clipHigh()) || (advantage[i] < 0 && r < 1 - o.clipLow());
            clippedCount += outside ? 1 : 0;
            double logRatio = (double) theta[i] - logpInf[i]; // log π_θ / π_inf, samples from π_inf
            k1 += -logRatio;
            k3 += Math.exp(logRatio) - 1 - logRatio;
        }
        Stats stats = new Stats(loss.toType(DataType.FLOAT64, true).getDouble(), t, absSum / t, absMax, (double) truncated / t,
                (double) clippedCount / t, k1 / t, k3 / t);
        return new Result(loss, stats);
    }

    /**
     * The k3 estimator of KL(π_θ ‖ π_ref) on tokens sampled from π_θ (Schulman's
     * {@code r − 1 − log r}, r = π_ref/π_θ), averaged over the tokens: non-negative per token, zero
     * only where the two agree; differentiable in logpTheta [T]. DistillSparse's penalty between the
     * sparse actor with its LoRA (θ) and the dense policy (ref), docs/algorithms.md, "DistillSparse".
     */
    public static NDArray klK3(NDArray logpTheta, float[] logpRef) {
        int t = logpRef.length;
        if (t == 0 || logpTheta.size() != t) {
            throw new IllegalArgumentException("token arrays disagree in length or are empty");
        }
        NDManager m = logpTheta.getManager();
        NDArray logR = m.create(logpRef).toType(logpTheta.getDataType(), false).sub(logpTheta); // log π_ref/π_θ
        return logR.exp().sub(1).sub(logR).mean();
    }
}
