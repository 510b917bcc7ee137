package io.tailguard.rollout.generation;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks a token from one row of logits on the host. All arithmetic is in double, so the choice is
 * a pure function of the logits, the parameters and the random stream.
 */
final class TokenSampler {
    private TokenSampler() {}

    /** Log-softmax of logits / T (T = 1 when greedy), in double. */
    static double[] logProbs(float[] logits, int offset, int vocab, double temperature) {
        double t = temperature == 0 ? 1.0 : temperature;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[offset + i] / t);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[offset + i] / t - max);
        }
        double logZ = max + Math.log(sum);
        double[] out = new double[vocab];
        for (int i = 0; i < vocab; i++) {
            out[i] = logits[offset + i] / t - logZ;
        }
        return out;
    }

    /** Greedy: the most likely token, lowest id on ties. Otherwise top-k, then top-p, then a draw. */
    static int pick(double[] logp, SamplingParams p, SplittableRandom random) {
        int vocab = logp.length;
        if (p.isGreedy()) {
            int best = 0;
            for (int i = 1; i < vocab; i++) {
                if (logp[i] > logp[best]) {
                    best = i;
                }
            }
            return best;
        }
        Integer[] order = null;
        int keep = vocab;
        if (p.topK() > 0 || p.topP() < 1) {
            order = new Integer[vocab];
            for (int i = 0; i < vocab; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> logp[a] != logp[b] ? Double.compare(logp[b], logp[a]) : Integer.compare(a, b));
            if (p.topK() > 0) {
                keep = Math.min(keep, p.topK());
            }
            if (p.topP() < 1) {
                double mass = 0;
                int n = 0;
                while (n < keep) {
                    mass += Math.exp(logp[order[n]]);
                    n++;
                    if (mass >= p.topP()) {
                        break;
                    }
                }
                keep = n;
            }
        }
        double total = 0;
        for (int i = 0; i < keep; i++) {
            total += Math.exp(logp[order == null ? i : order[i]]);
        }
        double u = random.nextDouble() * total;
        double acc = 0;
        for (int i = 0; i < keep; i++) {
            int id = order == null ? i : order[i];
            acc += Math.exp(logp[id]);
            if (u < acc) {
                return id;
            }
        }
        return order == null ? keep - 1 : order[keep - 1];
    }

    /** The k most likely ids of logp, descending, lowest id first on ties. */
    static int[] topIds(double[] logp, int k) {
        int n = Math.min(k, logp.length);
        int[] best = new int[n];
        double[] val = new double[n];
        int size = 0;
        for (int i = 0; i < logp.length; i++) {
            if (size == n && logp[i] <= val[n - 1]) {
                continue;
            }
            int j = size < n ? size++ : n - 1;
            while (j > 0 && val[j - 1] < logp[i]) {
                best[j] = best[j - 1];
                val[j] = val[j - 1];
                j--;
            }
            best[j] = i;
            val[j] = logp[i];
        }
        return best;
    }
}
