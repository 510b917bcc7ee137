package io.tailguard.rollout.sparse;

import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scorer;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.TokenDistributions;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The α probe of docs/algorithms.md, "The α mismatch and its tail". For a sparse trajectory, the dense policy (same weights) scores
 * the trajectory teacher-forced, and every generated token gets α_t = Σ_v min(p_t(v), q_t(v)),
 * with q_t the sparse actor's temperature-1 distribution captured during generation. Exact when the
 * generator captured full distributions; from the top-K of both sides (a lower bound) otherwise.
 * α is added to the tail statistics at the token's position (its context length), and each probed
 * trajectory is counted once (the sequence α).
 */
public final class MismatchProbe {
    private final Qwen3Model dense;
    private final double fraction;
    private final SplittableRandom pick;

    /**
     * @param dense    the policy with the weights the actor sampled with, scored densely
     * @param fraction the share of trajectories probed, in [0, 1]
     * @param seed     chooses which trajectories, reproducibly
     */
    public MismatchProbe(Qwen3Model dense, double fraction, long seed) {
        if (!(fraction >= 0 && fraction <= 1)) {
            throw new IllegalArgumentException("probe fraction must be in [0, 1], got " + fraction);
        }
        this.dense = dense;
        this.fraction = fraction;
        this.pick = new SplittableRandom(seed);
    }

    /** Probes a share of the trajectories (each needs captured distributions); returns how many. */
    public int probe(List<Generated> trajectories, TailStats tails) {
        List<Generated> chosen = new ArrayList<>();
        for (Generated g : trajectories) {
            if (pick.nextDouble() < fraction && g.outputIds().length > 0) {
                chosen.add(g);
            }
        }
        if (chosen.isEmpty()) {
            return 0;
        }
        List<double[]> alphas = alphas(dense, chosen);
        for (int i = 0; i < chosen.size(); i++) {
            int start = chosen.get(i).promptIds().length;
            double[] a = alphas.get(i);
            for (int t = 0; t < a.length; t++) {
                tails.add(start + t, a[t]);
            }
            tails.addSequence();
        }
        return chosen.size();
    }

    /** α of every generated token of each trajectory, from one batched dense scoring pass. */
    public static List<double[]> alphas(Qwen3Model dense, List<Generated> trajectories) {
        TokenDistributions first = requireCaptured(trajectories.get(0));
        boolean full = first.isFull();
        int k = full ? 0 : first.ids()[0].length;
        List<int[]> prompts = new ArrayList<>();
        List<int[]> outputs = new ArrayList<>();
        for (Generated g : trajectories) {
            if (requireCaptured(g).isFull() != full) {
                throw new IllegalArgumentException("trajectories mix full and top-K distributions");
            }
            prompts.add(g.promptIds());
            outputs.add(g.outputIds());
        }
        List<Scorer.Scores> scores = Scorer.score(dense, prompts, outputs, new Scorer.Options(full ? 0 : k, full));
        List<double[]> out = new ArrayList<>();
        for (int i = 0; i < trajectories.size(); i++) {
            TokenDistributions q = trajectories.get(i).distributions();
            Scorer.Scores p = scores.get(i);
            double[] a = new double[outputs.get(i).length];
            for (int t = 0; t < a.length; t++) {
                a[t] = full
                        ? Acceptance.exact(p.probs()[t], exp(q.logprobs()[t]))
                        : Acceptance.topK(p.topIds()[t], p.topLogprobs()[t], q.ids()[t], q.logprobs()[t]);
            }
            out.add(a);
        }
        return out;
    }

    private static TokenDistributions requireCaptured(Generated g) {
        if (g.distributions() == null) {
            throw new IllegalArgumentException("trajectory has no captured distributions (generate with captureTopK >= 0)");
        }
        return g.distributions();
    }

    private static float[] exp(float[] logprobs) {
        float[] p = new float[logprobs.length];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) Math.exp(logprobs[i]);
        }
        return p;
    }
}
