package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.tailguard.model.ForwardMask;
import io.tailguard.model.GradientCollectors;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scalars;
import io.tailguard.model.lora.LoraAdapter;

import java.util.ArrayList;
import java.util.List;

/**
 * DistillSparse (docs/algorithms.md, "DistillSparse"): after each policy update, the base θ is frozen and only the
 * sparse actor's LoRA φ is updated, on the same trajectories, with
 *
 * <pre>
 *   L(φ) = L_PPO(π_φ) + λ · mean_t k3(π_φ ‖ π_old),     π_φ: the sparse forward with the LoRA
 * </pre>
 *
 * π_φ is the log-prob the sparse actor with the LoRA assigns to each sampled token, from one
 * teacher-forced forward in which attention sees only the pages the Block-Top-k decode keeps (a
 * {@link ForwardMask} from the rollout side). L_PPO is §5's GRPO + TIS objective ({@link
 * GrpoObjective}) with π_φ in the place of π_θ: ratio π_φ/π_old, TIS weight min(π_old/π_inf, C),
 * groups whose rewards are all equal dropped, token-level mean over the kept tokens. The penalty is
 * the k3 estimator between π_φ and π_old, the dense log-probs of the base as this update finds it
 * (a forward with the LoRA off; the published wording: "between the sparse+φ and dense log-probs
 * on the sampled tokens"), over
 * every token, kept groups or not: it needs no reward signal, so φ learns to imitate the dense
 * policy even while every group is degenerate. φ has its own AdamW (no weight decay); gradients
 * reach only φ.
 */
public final class DistillSparse implements AutoCloseable {
    /**
     * The penalty that pulls the sparse actor towards the dense policy.
     * <ul>
     *   <li>{@code K3}: the published one, k3(π_φ ‖ π_old) on the sampled tokens only.</li>
     *   <li>{@code FULL}: the exact KL(π_dense ‖ π_φ) over the whole vocabulary at every generated
     *   position, π_dense being the dense forward of the current base (the LoRA off, no gradient;
     *   the same forward that gives π_old).
     *   α = Σ min(p, q) = 1 − TV depends on the whole distribution, which the sampled token's ratio
     *   sees only one entry of; Pinsker bounds TV by √(KL/2), so this penalty bounds 1 − α directly.</li>
     * </ul>
     */
    public enum Divergence {
        K3, FULL;

        public static Divergence parse(String name) {
            return switch (name) {
                case "k3" -> K3;
                case "full" -> FULL;
                default -> throw new IllegalArgumentException("unknown DistillSparse divergence '" + name + "' (known: k3, full)");
            };
        }

        public String label() {
            return this == K3 ? "k3" : "full";
        }
    }

    /**
     * λ (published 0.001), the weight of the PPO part (published 1; 0 trains φ by the penalty alone),
     * the penalty, the §5 objective's options, sequences per forward/backward.
     */
    public record Options(double klWeight, double ppoWeight, Divergence divergence, GrpoObjective.Options objective,
                          int microBatch) {
        public static Options defaults() {
            return new Options(0.001, GrpoObjective.Options.defaults(), 16);
        }

        /** The published form: L_PPO + λ·k3. */
        public Options(double klWeight, GrpoObjective.Options objective, int microBatch) {
            this(klWeight, 1.0, Divergence.K3, objective, microBatch);
        }

        public Options {
            if (!(klWeight >= 0) || !Double.isFinite(klWeight) || !(ppoWeight >= 0) || !Double.isFinite(ppoWeight)
                    || microBatch < 1 || divergence == null) {
                throw new IllegalArgumentException("bad DistillSparse options: KL weight " + klWeight + ", PPO weight " + ppoWeight
                        + ", divergence " + divergence + ", micro-batch " + microBatch);
            }
        }
    }

    /**
     * @param objective the PPO part over the kept groups' tokens (null when every group was
     *                  degenerate); its k1/k3 compare π_φ with the behaviour π_inf
     * @param klK3      mean k3(π_φ ‖ π_old) over every token, before this update
     * @param klFull    mean KL(π_dense ‖ π_φ) over the vocabulary at every token, before this update
     *                  (NaN unless the divergence is {@code FULL})
     * @param loss      L(φ) before this update
     */
    public record Report(int step, GrpoObjective.Stats objective, double klK3, double klFull, double loss, double gradNorm,
                         double lr, long tokens) {}

    /** AdamW for the adapter: no weight decay, so φ is what the gradient made it. */
    public static final AdamW.Options ADAM = new AdamW.Options(0.9, 0.95, 1e-8, 0.0, 1.0);

    private final Qwen3Model model;
    private final LoraAdapter lora;
    private final ForwardMask.Factory sparse;
    private final int groupSize;
    private final LrSchedule schedule;
    private final Options o;
    private final AdamW optimizer;
    private int step;

    /**
     * @param lora   the sparse actor's adapter, attached to {@code model}
     * @param sparse the sparse actor's attention as a mask (e.g. rollout's BlockTopKMask of the schedule)
     */
    public DistillSparse(Qwen3Model model, LoraAdapter lora, ForwardMask.Factory sparse, int groupSize, LrSchedule schedule,
                         Options options) {
        if (model.adapter() != lora) {
            throw new IllegalArgumentException("the LoRA must be attached to the model it distils");
        }
        if (groupSize < 2) {
            throw new IllegalArgumentException("group size must be >= 2");
        }
        this.model = model;
        this.lora = lora;
        this.sparse = sparse;
        this.groupSize = groupSize;
        this.schedule = schedule;
        this.o = options;
        Gradients.track(lora.parameters(), true);
        this.optimizer = new AdamW(lora.parameters(), ADAM, model.manager());
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /**
     * After restoring a checkpoint (the LoRA and this optimizer, {@link LearnerCheckpoint#restoreLora}):
     * the next update is step + 1, and its learning rate follows the schedule from there.
     */
    public void resumeAt(int step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got " + step);
        }
        this.step = step;
    }

    /** Updates so far (the step of the last report). */
    public int steps() {
        return step;
    }

    /** One update of φ on the samples of this iteration (consecutive groups of groupSize). */
    public Report step(List<GrpoLearner.Sample> samples) {
        if (samples.isEmpty() || samples.size() % groupSize != 0) {
            throw new IllegalArgumentException(samples.size() + " samples do not form groups of " + groupSize);
        }
        double[] rewards = samples.stream().mapToDouble(GrpoLearner.Sample::reward).toArray();
        double[] adv = GrpoObjective.advantages(rewards, groupSize, 1e-6);
        boolean[] kept = new boolean[samples.size()];
        long all = 0;
        long keptTokens = 0;
        for (int g = 0; g < samples.size(); g += groupSize) {
            boolean keep = !GrpoObjective.degenerate(rewards, g, groupSize);
            for (int i = g; i < g + groupSize; i++) {
                kept[i] = keep;
                all += samples.get(i).output().length;
                keptTokens += keep ? samples.get(i).output().length : 0;
            }
        }
        step++;
        double lr = schedule.at(step);
        Totals acc = new Totals();
        // Freeze the base for this update only: the policy learner tracks it for its whole life.
        boolean baseTracked = model.parameters().values().iterator().next().hasGradient();
        Gradients.track(model.parameters(), false);
        try (LoraAdapter.Switch on = lora.switchTo(true)) {
            Gradients.zero(lora.parameters());
            for (int s = 0; s < samples.size(); s += o.microBatch()) {
                int e = Math.min(samples.size(), s + o.microBatch());
                microStep(samples.subList(s, e), adv, kept, s, all, keptTokens, acc);
            }
        } finally {
            Gradients.track(model.parameters(), baseTracked);
        }
        double norm = optimizer.step(lr);
        GrpoObjective.Stats ppo = keptTokens == 0 ? null : new GrpoObjective.Stats(acc.ppoLoss, keptTokens,
                acc.absSum / keptTokens, acc.absMax, acc.truncated / keptTokens, acc.clipped / keptTokens,
                acc.k1 / keptTokens, acc.k3 / keptTokens);
        double ppoLoss = keptTokens == 0 ? 0 : acc.ppoLoss;
        double penalty = o.divergence() == Divergence.FULL ? acc.full / all : acc.kl / all;
        return new Report(step, ppo, acc.kl / all, o.divergence() == Divergence.FULL ? acc.full / all : Double.NaN,
                o.ppoWeight() * ppoLoss + o.klWeight() * penalty, norm, lr, all);
    }

    private static final class Totals {
        double ppoLoss;
        double kl;       // Σ over tokens of k3
        double full;     // Σ over tokens of KL(π_dense ‖ π_φ), FULL only
        double absSum;
        double absMax;
        double truncated;
        double clipped;
        double k1;
        double k3;
    }

    private void microStep(List<GrpoLearner.Sample> batch, double[] adv, boolean[] kept, int first, long all, long keptTokens,
                           Totals acc) {
        PackedBatch packed = PackedBatch.of(batch);
        int n = packed.tokens();
        try (NDManager m = model.manager().newSubManager()) {
            // The teacher: the dense forward of the current base, the LoRA off. Nothing it touches
            // tracks a gradient (the base is frozen, the LoRA not used), so it adds no graph. Its
            // log-probs of the sampled tokens are π_old; FULL also uses its whole distributions.
            NDArray teacher;
            try (LoraAdapter.Switch off = lora.switchTo(false)) {
                teacher = packed.rows(model.forward(packed.input(m), null).logSoftmax(-1), m);       // [n, V]
            }
            float[] old = packed.sampled(teacher, m).toFloatArray();
            List<Integer> keptIdx = new ArrayList<>();
            List<Float> keptOld = new ArrayList<>();
            List<Float> keptInf = new ArrayList<>();
            List<Float> keptAdv = new ArrayList<>();
            int k = 0;
            for (int i = 0; i < batch.size(); i++) {
                GrpoLearner.Sample s = batch.get(i);
                for (int j = 0; j < s.output().length; j++) {
                    if (kept[first + i]) {
                        keptIdx.add(k);
                        keptOld.add(old[k]);
                        keptInf.add(s.behaviourLogprobs()[j]);
                        keptAdv.add((float) adv[first + i]);
                    }
                    k++;
                }
            }
            microBackward(m, packed, o.divergence() == Divergence.FULL ? teacher : null, n, old, keptIdx, keptOld, keptInf,
                    keptAdv, all, keptTokens, acc);
        }
    }

    private void microBackward(NDManager m, PackedBatch packed, NDArray teacher, int n, float[] old, List<Integer> keptIdx,
                               List<Float> keptOld, List<Float> keptInf, List<Float> keptAdv, long all, long keptTokens,
                               Totals acc) {
        try (GradientCollector gc = GradientCollectors.exclusive()) {
            ForwardMask mask = sparse.forPrompts(packed.promptLengths());
            NDArray logp = model.forward(packed.input(m), mask).logSoftmax(-1);   // [b, t, V], sparse + φ
            NDArray rows = packed.rows(logp, m);                                   // [n, V]
            NDArray phi = packed.sampled(rows, m);                                 // [n]
            NDArray kl = GrpoObjective.klK3(phi, old);
            acc.kl += kl.getFloat() * n;
            NDArray loss;
            if (teacher != null) {
                // mean over tokens of Σ_v p(v)·(log p(v) − log π_φ(v))
                NDArray full = teacher.exp().mul(teacher.sub(rows)).sum(new int[] {1}).mean();
                acc.full += full.getFloat() * n;
                loss = Scalars.times(full, o.klWeight() * n / all);
            } else {
                loss = Scalars.times(kl, o.klWeight() * n / all);
            }
            if (!keptIdx.isEmpty()) {
                int nk = keptIdx.size();
                long[] idx = keptIdx.stream().mapToLong(Integer::longValue).toArray();
                NDArray phiKept = phi.get(new ai.djl.ndarray.index.NDIndex("{}", m.create(idx)));
                GrpoObjective.Result r = GrpoObjective.compute(phiKept, floats(keptOld), floats(keptInf), floats(keptAdv),
                        o.objective());
                if (o.ppoWeight() > 0) {
                    loss = loss.add(Scalars.times(r.loss(), o.ppoWeight() * nk / keptTokens));
                }
                GrpoObjective.Stats st = r.stats();
                acc.ppoLoss += st.loss() * nk / keptTokens;
                acc.absSum += st.meanAbsOldMinusInf() * nk;
                acc.absMax = Math.max(acc.absMax, st.maxAbsOldMinusInf());
                acc.truncated += st.tisTruncatedFraction() * nk;
                acc.clipped += st.clipFraction() * nk;
                acc.k1 += st.klK1() * nk;
                acc.k3 += st.klK3() * nk;
            }
            gc.backward(loss);
        }
    }

    private static float[] floats(List<Float> v) {
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    /** Releases the optimizer's state; the adapter's parameters stop tracking gradients. */
    @Override
    public void close() {
        optimizer.close();
        Gradients.track(lora.parameters(), false);
    }
}
