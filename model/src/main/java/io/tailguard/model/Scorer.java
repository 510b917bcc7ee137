package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.List;

/**
 * Teacher-forced scoring: for given prompts and continuations, the model's log-probability of each
 * continuation token (temperature 1), optionally its top-K alternatives or the full next-token
 * distribution, from one batched forward pass. The learner and the mismatch probe call this.
 */
public final class Scorer {
    /** What to return besides the log-prob of each continuation token. */
    public record Options(int topK, boolean distributions) {
        public static final Options LOGPROBS_ONLY = new Options(0, false);
    }

    /**
     * Per continuation token t: {@code logprobs[t]}; with topK > 0, {@code topIds[t]} and
     * {@code topLogprobs[t]} in descending order; with distributions, {@code probs[t]} over the
     * vocabulary.
     */
    public record Scores(float[] logprobs, int[][] topIds, float[][] topLogprobs, float[][] probs) {}

    private Scorer() {}

    public static List<Scores> score(Qwen3Model model, List<int[]> prompts, List<int[]> continuations, Options options) {
        return score(model, prompts, continuations, options, null, null);
    }

    /**
     * As {@link #score(Qwen3Model, List, List, Options)}, with each layer's attention restricted by the
     * mask that {@code sparse} builds for these prompts (null: dense): the log-probs a sparse decode
     * kernel would have assigned, from one forward.
     */
    public static List<Scores> score(Qwen3Model model, List<int[]> prompts, List<int[]> continuations, Options options,
                                     ForwardMask.Factory sparse) {
        return score(model, prompts, continuations, options, sparse, null);
    }

    /**
     * Dense scoring that starts from prompts already prefilled by the same weights (a generation's,
     * {@link PromptPrefill}): each distinct prompt found there is copied into its sequences' caches
     * and not computed again; any other is prefilled here. The same log-probabilities up to float
     * rounding (a prefill batched with other prompts may round otherwise).
     */
    public static List<Scores> score(Qwen3Model model, List<int[]> prompts, List<int[]> continuations, Options options,
                                     PromptPrefill prefilled) {
        return score(model, prompts, continuations, options, null, prefilled);
    }

    private static List<Scores> score(Qwen3Model model, List<int[]> prompts, List<int[]> continuations, Options options,
                                      ForwardMask.Factory sparse, PromptPrefill prefilled) {
        int b = prompts.size();
        if (continuations.size() != b) {
            throw new IllegalArgumentException(b + " prompts but " + continuations.size() + " continuations");
        }
        int t = 0;
        for (int i = 0; i < b; i++) {
            if (prompts.get(i).length < 1 || continuations.get(i).length < 1) {
                throw new IllegalArgumentException("sequence " + i + ": prompt and continuation need at least one token");
            }
            t = Math.max(t, prompts.get(i).length + continuations.get(i).length - 1);
        }
        int vocab = model.config().vocabSize();
        // The last continuation token is never an input: each row is prompt + continuation[:-1].
        long[] ids = new long[b * t];
        for (int i = 0; i < b; i++) {
            int[] p = prompts.get(i);
            int[] c = continuations.get(i);
            for (int j = 0; j < p.length; j++) {
                ids[i * t + j] = check(p[j], vocab, i);
            }
            for (int j = 0; j < c.length - 1; j++) {
                ids[i * t + p.length + j] = check(c[j], vocab, i);
            }
            check(c[c.length - 1], vocab, i);
        }
        SharedPrompts shared = SharedPrompts.of(prompts);
        if (sparse == null && (shared.repeats() || prefilled != null)) {
            return scoreShared(model, shared, continuations, options, prefilled);
        }
        List<Scores> out = new ArrayList<>(b);
        try (NDManager m = model.manager().newSubManager()) {
            ForwardMask mask = null;
            if (sparse != null) {
                int[] promptLengths = new int[b];
                for (int i = 0; i < b; i++) {
                    promptLengths[i] = prompts.get(i).length;
                }
                mask = sparse.forPrompts(promptLengths);
            }
            NDArray hidden = model.hiddenStates(m.create(ids, new Shape(b, t)), mask);
            for (int i = 0; i < b; i++) {
                int[] c = continuations.get(i);
                int p0 = prompts.get(i).length - 1;
                try (NDManager row = m.newSubManager()) {
                    NDArray h = hidden.get(row, new NDIndex("{}, {}:{}", i, p0, p0 + c.length)); // [n, H]
                    out.add(scores(model.logits(h).logSoftmax(-1), c, options, vocab, row));
                }
            }
        }
        return out;
    }

    /** The scores of continuation c from its positions' log-probabilities logp [n, V]. */
    private static Scores scores(NDArray logp, int[] c, Options options, int vocab, NDManager row) {
        long[] target = new long[c.length];
        for (int j = 0; j < c.length; j++) {
            target[j] = c[j];
        }
        NDArray picked = logp.gather(row.create(target, new Shape(c.length, 1)), 1);
        float[] lp = picked.toFloatArray();
        int[][] topIds = null;
        float[][] topLp = null;
        if (options.topK() > 0) {
            int k = Math.min(options.topK(), vocab);
            NDList top = logp.topK(k, -1, true, true);
            float[] vals = top.get(0).toFloatArray();
            long[] idx = top.get(1).toType(DataType.INT64, false).toLongArray();
            topIds = new int[c.length][k];
            topLp = new float[c.length][k];
            for (int j = 0; j < c.length; j++) {
                for (int q = 0; q < k; q++) {
                    topIds[j][q] = (int) idx[j * k + q];
                    topLp[j][q] = vals[j * k + q];
                }
            }
        }
        float[][] probs = null;
        if (options.distributions()) {
            float[] flat = logp.exp().toFloatArray();
            probs = new float[c.length][];
            for (int j = 0; j < c.length; j++) {
                probs[j] = java.util.Arrays.copyOfRange(flat, j * vocab, (j + 1) * vocab);
            }
        }
        return new Scores(lp, topIds, topLp, probs);
    }

    /**
     * Dense scoring with every distinct prompt computed once (a GRPO group's samples share theirs):
     * per prompt, one prefill, its KV cache copied to each of its sequences, and then their
     * continuations teacher-forced over it ({@link Qwen3Model#extend}). The same log-probabilities
     * as one forward over every whole sequence, without repeating the prompt's work per sample.
     */
    private static List<Scores> scoreShared(Qwen3Model model, SharedPrompts shared, List<int[]> continuations, Options options,
                                            PromptPrefill prefilled) {
        int vocab = model.config().vocabSize();
        Scores[] out = new Scores[shared.rowOf().length];
        for (int r = 0; r < shared.distinct().size(); r++) {
            int[] p = shared.distinct().get(r);
            List<Integer> rows = shared.sequencesOf(r);
            int longest = 0;
            for (int j : rows) {
                longest = Math.max(longest, continuations.get(j).length);
            }
            int g = rows.size();
            long[] prompt = new long[p.length];
            for (int j = 0; j < p.length; j++) {
                prompt[j] = p[j];
            }
            // the last continuation token is never an input
            int t = longest - 1;
            long[] ids = new long[g * Math.max(1, t)];
            for (int k = 0; k < g; k++) {
                int[] c = continuations.get(rows.get(k));
                for (int j = 0; j < c.length - 1; j++) {
                    ids[k * t + j] = c[j];
                }
            }
            int kept = prefilled == null ? -1 : prefilled.rowOf(p);
            int capacity = Math.max(p.length + Math.max(1, t), kept < 0 ? 0 : prefilled.cache().capacity());
            try (NDManager m = model.manager().newSubManager();
                 KvCache once = kept >= 0 ? null : new KvCache(m, model.config(), 1, p.length);
                 KvCache cache = new KvCache(m, model.config(), g, capacity)) {
                NDArray first = kept >= 0 ? prefilled.logitsOf(kept, m)                                              // [1, V]
                        : model.prefill(m.create(prompt, new Shape(1, p.length)), new int[] {p.length}, once);
                NDArray rest = null;
                if (t > 0) {
                    int[] rowsOf = new int[g];
                    java.util.Arrays.fill(rowsOf, Math.max(0, kept));
                    cache.copyRowsFrom(kept >= 0 ? prefilled.cache() : once, rowsOf);
                    rest = model.extend(m.create(ids, new Shape(g, t)), cache);                                // [g, t, V]
                }
                for (int k = 0; k < g; k++) {
                    int[] c = continuations.get(rows.get(k));
                    try (NDManager row = m.newSubManager()) {
                        NDArray logits = c.length == 1 ? first.get(row, new NDIndex("0:1"))
                                : NDArrays.concat(new NDList(first.get(row, new NDIndex("0:1")),
                                        rest.get(row, new NDIndex("{}, :{}", k, c.length - 1))), 0);
                        logits.attach(row);
                        out[rows.get(k)] = scores(logits.logSoftmax(-1), c, options, vocab, row);
                    }
                }
            }
        }
        return java.util.Arrays.asList(out);
    }

    private static int check(int id, int vocab, int seq) {
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException("sequence " + seq + ": token id " + id + " outside vocabulary [0, " + vocab + ")");
        }
        return id;
    }
}
