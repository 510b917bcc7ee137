package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import io.tailguard.model.GradientCollectors;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scalars;
import io.tailguard.model.TrainingTape;

import java.util.ArrayList;
import java.util.List;

/**
 * One GRPO policy update per {@link #step}: group-normalised advantages, the dynamic-sampling filter
 * (groups whose rewards are all equal are dropped and counted), the GRPO + TIS objective over every
 * remaining sampled token (token-level mean over the batch), accumulated over micro-batches, then
 * one AdamW update. Holds the JVM's one GradientCollector only inside a micro-batch.
 *
 * <p>π_old is the policy this update starts from, read off the same forward that carries the
 * gradient (its values, no gradient through them): the decoupled objective's proximal policy, as
 * AReaL and verl recompute it on the training side. The importance weight min(π_old/π_inf, C) then
 * corrects both the sparse (or compressed) sampler and its staleness, and no dense pass over the
 * trajectories is needed to train on them. With one update per batch ρ = π_θ/π_old is 1 in value,
 * so the PPO clip does not bind; the truncation C bounds each token's weight.
 */
public final class GrpoLearner implements AutoCloseable {
    /**
     * One trajectory: the sampler's (behaviour, π_inf) log-prob of each output token. π_old is not
     * carried: the learner's own forward at the weights it updates supplies it ({@link #step}).
     */
    public record Sample(int[] prompt, int[] output, float[] behaviourLogprobs, double reward) {
        public Sample {
            if (output.length == 0 || behaviourLogprobs.length != output.length) {
                throw new IllegalArgumentException("a sample needs one behaviour log-prob per output token");
            }
        }
    }

    public record Report(int step, GrpoObjective.Stats objective, double entropy, double gradNorm, double lr,
                         int groupsKept, int groupsDropped, double meanReward) {}

    private final Qwen3Model model;
    private final int groupSize;
    private final int microBatch;
    private final GrpoObjective.Options objective;
    private LrSchedule schedule;
    private final AdamW optimizer;
    private int step;
    private long droppedTotal;

    public GrpoLearner(Qwen3Model model, int groupSize, int microBatch, GrpoObjective.Options objective,
                       LrSchedule schedule, AdamW.Options adam) {
        if (groupSize < 2 || microBatch < 1) {
            throw new IllegalArgumentException("group size must be >= 2 and micro-batch >= 1");
        }
        this.model = model;
        this.groupSize = groupSize;
        this.microBatch = microBatch;
        this.objective = objective;
        this.schedule = schedule;
        Gradients.track(model.parameters(), true);
        this.optimizer = new AdamW(model.parameters(), adam, model.manager());
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** After restoring a checkpoint: the next step is step + 1 (the learning rate follows). */
    public void resumeAt(int step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got " + step);
        }
        this.step = step;
    }

    public LrSchedule lrSchedule() {
        return schedule;
    }

    /**
     * Changes the peak learning rate from the next step on, keeping the schedule's shape: step s
     * then uses {@code newPeak × shape(s)} (the warm-up ramp and the decay go on where they are;
     * the steps already taken and the optimizer's moments are untouched).
     */
    public void setPeakLr(double newPeak) {
        schedule = schedule.withPeak(newPeak);
    }

    public int steps() {
        return step;
    }

    /** Groups dropped by the dynamic-sampling filter since the start. */
    public long droppedGroups() {
        return droppedTotal;
    }

    /** Samples come in consecutive groups of groupSize (the G samples of one prompt). */
    public Report step(List<Sample> samples) {
        if (samples.isEmpty() || samples.size() % groupSize != 0) {
            throw new IllegalArgumentException(samples.size() + " samples do not form groups of " + groupSize);
        }
        double[] rewards = samples.stream().mapToDouble(Sample::reward).toArray();
        double[] adv = GrpoObjective.advantages(rewards, groupSize, 1e-6);
        List<Sample> kept = new ArrayList<>();
        List<Double> keptAdv = new ArrayList<>();
        int dropped = 0;
        for (int g = 0; g < samples.size(); g += groupSize) {
            if (GrpoObjective.degenerate(rewards, g, groupSize)) {
                dropped++;
                continue;
            }
            for (int i = g; i < g + groupSize; i++) {
                kept.add(samples.get(i));
                keptAdv.add(adv[i]);
            }
        }
        droppedTotal += dropped;
        double meanReward = java.util.Arrays.stream(rewards).average().orElse(0);
        step++;
        double lr = schedule.at(step);
        if (kept.isEmpty()) {
            return new Report(step, null, Double.NaN, 0, lr, 0, dropped, meanReward);
        }
        long total = 0;
        for (Sample s : kept) {
            total += s.output().length;
        }
        Gradients.zero(model.parameters());
        Accumulated acc = new Accumulated();
        for (int s = 0; s < kept.size(); s += microBatch) {
            int e = Math.min(kept.size(), s + microBatch);
            microStep(kept.subList(s, e), keptAdv.subList(s, e), total, acc);
        }
        double norm = optimizer.step(lr);
        GrpoObjective.Stats st = new GrpoObjective.Stats(acc.loss, total, acc.absSum / total, acc.absMax,
                acc.truncated / total, acc.clipped / total, acc.k1 / total, acc.k3 / total);
        return new Report(step, st, acc.entropy / total, norm, lr, kept.size() / groupSize, dropped, meanReward);
    }

    /** Token-weighted sums of the micro-batches' statistics. */
    private static final class Accumulated {
        double loss;
        double absSum;
        double absMax;
        double truncated;
        double clipped;
        double k1;
        double k3;
        double entropy;
    }

    private void microStep(List<Sample> batch, List<Double> adv, long total, Accumulated acc) {
        PackedBatch packed = PackedBatch.of(batch);
        int n = packed.tokens();
        float[] inf = new float[n];
        float[] a = new float[n];
        int k = 0;
        for (int i = 0; i < batch.size(); i++) {
            Sample s = batch.get(i);
            for (int j = 0; j < s.output().length; j++) {
                inf[k] = s.behaviourLogprobs()[j];
                a[k] = adv.get(i).floatValue();
                k++;
            }
        }
        try (NDManager m = model.manager().newSubManager();
             GradientCollector gc = GradientCollectors.exclusive();
             TrainingTape tape = TrainingTape.open(m)) {
            NDArray rows = sharesPrompts(batch) ? sharedRows(batch, m)                        // [n, H]
                    : packed.rows(model.hiddenStates(packed.input(m)), m);
            int[] targets = new int[n];
            for (int i = 0; i < n; i++) {
                targets[i] = (int) packed.targets()[i];
            }
            io.tailguard.model.Qwen3Model.TargetScores scores = model.targetScores(rows, targets, true);
            NDArray theta = scores.logProbs();                                                // [n]
            // π_old: the values of this very forward, at the weights the update starts from
            GrpoObjective.Result r = GrpoObjective.computeFromStart(theta, inf, a, objective);
            NDArray scaled = Scalars.times(r.loss(), (double) n / total);
            tape.backward(gc, scaled);
            GrpoObjective.Stats s = r.stats();
            acc.loss += s.loss() * n / total;
            acc.absSum += s.meanAbsOldMinusInf() * n;
            acc.absMax = Math.max(acc.absMax, s.maxAbsOldMinusInf());
            acc.truncated += s.tisTruncatedFraction() * n;
            acc.clipped += s.clipFraction() * n;
            acc.k1 += s.klK1() * n;
            acc.k3 += s.klK3() * n;
            for (float h : scores.entropy()) {
                acc.entropy += h;
            }
        }
    }

    /** Whether two samples of the micro-batch share their prompt (a group's samples do). */
    static boolean sharesPrompts(List<Sample> batch) {
        return io.tailguard.model.SharedPrompts.of(prompts(batch)).repeats();
    }

    private static List<int[]> prompts(List<Sample> batch) {
        return batch.stream().map(Sample::prompt).toList();
    }

    /**
     * The final-normed hidden states [n, H] at every output token's prediction, in
     * {@link PackedBatch}'s token order, with each distinct prompt computed once for all the samples
     * that share it ({@link Qwen3Model#hiddenShared}): the same values and gradients as one forward
     * over every prompt + output row, at a fraction of the work when prompts are long and a group is
     * large.
     */
    private NDArray sharedRows(List<Sample> batch, NDManager m) {
        io.tailguard.model.SharedPrompts shared = io.tailguard.model.SharedPrompts.of(prompts(batch));
        NDArray[] perSample = new NDArray[batch.size()];
        for (int r = 0; r < shared.distinct().size(); r++) {
            int[] p = shared.distinct().get(r);
            List<Integer> group = shared.sequencesOf(r);
            int longest = 0;
            for (int j : group) {
                longest = Math.max(longest, batch.get(j).output().length);
            }
            // rows are output[:-1] (the last output token is never an input); at least one column
            int t = Math.max(1, longest - 1);
            long[] ids = new long[group.size() * t];
            for (int k = 0; k < group.size(); k++) {
                int[] out = batch.get(group.get(k)).output();
                for (int j = 0; j < out.length - 1; j++) {
                    ids[k * t + j] = out[j];
                }
            }
            long[] prompt = new long[p.length];
            for (int j = 0; j < p.length; j++) {
                prompt[j] = p[j];
            }
            NDArray[] hidden = model.hiddenShared(m.create(prompt, new ai.djl.ndarray.types.Shape(1, p.length)),
                    m.create(ids, new ai.djl.ndarray.types.Shape(group.size(), t)));
            for (int k = 0; k < group.size(); k++) {
                int len = batch.get(group.get(k)).output().length;
                perSample[group.get(k)] = len == 1 ? hidden[0] : ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(hidden[0],
                        hidden[1].get(new ai.djl.ndarray.index.NDIndex("{}, :{}", k, len - 1))), 0);
            }
        }
        return ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(perSample), 0);
    }

    @Override
    public void close() {
        optimizer.close();
        Gradients.track(model.parameters(), false);
    }
}
