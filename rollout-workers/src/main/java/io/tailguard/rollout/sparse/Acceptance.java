package io.tailguard.rollout.sparse;

/**
 * The per-token acceptance rate between the dense policy p and the sparse actor q at one position
 * (docs/algorithms.md, "The α mismatch and its tail"): α = Σ_v min(p(v), q(v)) = 1 − TV(p, q), the speculative-decoding acceptance
 * probability. 1 means identical distributions, 0 disjoint supports.
 *
 * <p>Exact forms take whole next-token distributions (probabilities, log-probabilities or logits, at
 * temperature 1). With a large vocabulary the probe keeps only each side's top-k log-probs (k = 20);
 * {@link #topK(int[], float[], int[], float[])} then sums min(p, q) over the tokens in both top-k
 * sets. Every dropped term is ≥ 0, so the approximation is a lower bound on the exact α, and equals
 * it when each distribution's support fits in its top-k set. A lower bound errs towards "less
 * accepted", i.e. towards bigger budgets: the safe side for a tail guard.
 *
 * <p>Sums run in double. Results are clamped to [0, 1]: float rounding can push Σ min(p, q) of two
 * identical distributions a few ulps above 1.
 */
public final class Acceptance {
    /** The published top-k size for the large-vocabulary approximation. */
    public static final int DEFAULT_TOP_K = 20;

    private Acceptance() {
    }

    /** α = Σ_v min(p_v, q_v) over two probability vectors of the same length. */
    public static double exact(float[] p, float[] q) {
        sameLength(p.length, q.length, "p", "q");
        double sum = 0;
        for (int v = 0; v < p.length; v++) {
            sum += Math.min(p[v], q[v]);
        }
        return clamp(sum);
    }

    /**
     * α from two full log-probability vectors: Σ_v exp(min(log p_v, log q_v)) (exp is monotone, so
     * min commutes with it). −∞ entries are tokens of probability 0.
     */
    public static double fromLogprobs(float[] pLogprobs, float[] qLogprobs) {
        sameLength(pLogprobs.length, qLogprobs.length, "pLogprobs", "qLogprobs");
        double sum = 0;
        for (int v = 0; v < pLogprobs.length; v++) {
            sum += Math.exp(Math.min(pLogprobs[v], qLogprobs[v]));
        }
        return clamp(sum);
    }

    /**
     * α from two full logit vectors at temperature 1: both are log-softmaxed (in double) first.
     */
    public static double fromLogits(float[] pLogits, float[] qLogits) {
        sameLength(pLogits.length, qLogits.length, "pLogits", "qLogits");
        double pNorm = logSumExp(pLogits);
        double qNorm = logSumExp(qLogits);
        double sum = 0;
        for (int v = 0; v < pLogits.length; v++) {
            sum += Math.exp(Math.min(pLogits[v] - pNorm, qLogits[v] - qNorm));
        }
        return clamp(sum);
    }

    /**
     * The large-vocabulary approximation: Σ min(p, q) over the tokens present in BOTH top-k sets,
     * given as (token id, log-prob) pairs. A lower bound on the exact α (see the class comment).
     * Ids within one side must be distinct; the two sides may have different lengths.
     */
    public static double topK(int[] pIds, float[] pLogprobs, int[] qIds, float[] qLogprobs) {
        sameLength(pIds.length, pLogprobs.length, "pIds", "pLogprobs");
        sameLength(qIds.length, qLogprobs.length, "qIds", "qLogprobs");
        distinct(pIds, "pIds");
        distinct(qIds, "qIds");
        // k is ~20: a quadratic scan is cheaper than any map and allocates nothing.
        double sum = 0;
        for (int i = 0; i < pIds.length; i++) {
            for (int j = 0; j < qIds.length; j++) {
                if (pIds[i] == qIds[j]) {
                    sum += Math.exp(Math.min(pLogprobs[i], qLogprobs[j]));
                    break;
                }
            }
        }
        return clamp(sum);
    }

    /**
     * The approximation computed from two full log-prob vectors: keeps each side's top-k tokens and
     * applies {@link #topK(int[], float[], int[], float[])}. For tests and small-vocabulary checks.
     */
    public static double topK(float[] pLogprobs, float[] qLogprobs, int k) {
        sameLength(pLogprobs.length, qLogprobs.length, "pLogprobs", "qLogprobs");
        int[] pIds = topIds(pLogprobs, k);
        int[] qIds = topIds(qLogprobs, k);
        return topK(pIds, gather(pLogprobs, pIds), qIds, gather(qLogprobs, qIds));
    }

    /** The ids of the k largest entries, largest first (ties: lower id first); min(k, n) of them. */
    public static int[] topIds(float[] values, int k) {
        if (k <= 0) {
            throw new IllegalArgumentException("k must be positive, got " + k);
        }
        int n = Math.min(k, values.length);
        int[] ids = new int[n];
        int size = 0;
        // insertion into a sorted run of at most k: O(V·k), fine for k = 20
        for (int v = 0; v < values.length; v++) {
            float x = values[v];
            if (size == n && !(x > values[ids[n - 1]])) {
                continue;
            }
            int pos = size < n ? size++ : n - 1;
            while (pos > 0 && x > values[ids[pos - 1]]) {
                ids[pos] = ids[pos - 1];
                pos--;
            }
            ids[pos] = v;
        }
        return ids;
    }

    private static float[] gather(float[] values, int[] ids) {
        float[] out = new float[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = values[ids[i]];
        }
        return out;
    }

    private static double logSumExp(float[] x) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : x) {
            max = Math.max(max, v);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("all logits are -infinity");
        }
        double s = 0;
        for (float v : x) {
            s += Math.exp(v - max);
        }
        return max + Math.log(s);
    }

    private static void distinct(int[] ids, String name) {
        for (int i = 1; i < ids.length; i++) {
            for (int j = 0; j < i; j++) {
                if (ids[i] == ids[j]) {
                    throw new IllegalArgumentException(name + ": token id " + ids[i] + " appears twice");
                }
            }
        }
    }

    private static void sameLength(int a, int b, String nameA, String nameB) {
        if (a != b) {
            throw new IllegalArgumentException(nameA + " has " + a + " entries but " + nameB + " has " + b);
        }
    }

    private static double clamp(double alpha) {
        if (Double.isNaN(alpha)) {
            throw new IllegalArgumentException("acceptance rate is NaN (NaN in the inputs)");
        }
        return Math.max(0.0, Math.min(1.0, alpha));
    }
}
