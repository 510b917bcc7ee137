package io.tailguard.recipes;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.compression.VnmMask;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.DistillationTrainer;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Projection;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The three-stage LoRA recovery of a V:N:M-pruned model (docs/algorithms.md, V:N:M sparsity), W′ = (W + s·B·A) ⊙ M,
 * by teacher forcing on the task's prompts with their worked solutions: the loss is either the
 * KL from the original model at every position (distillation, so that recovery heads for what
 * compression is measured by) or the cross-entropy of the solution tokens (fine-tuning on the task):
 * <ol>
 *   <li>dense LoRA (no mask) for the first half of 10 % of the steps, then merged: W ← W + s·B·A;</li>
 *   <li>sparse LoRA for the second half: every {@code remaskEvery} steps the mask is chosen afresh
 *       from the merged dense W (the pattern's best mask under the same scores), a fresh LoRA trains
 *       under it, and is merged densely (W ← W + s·B·A, the pruned entries kept, so they can come
 *       back);</li>
 *   <li>sparse LoRA with the mask fixed (chosen once more from the merged W) for the other 90 %,
 *       merged under the mask at the end: W ← (W + s·B·A) ⊙ M.</li>
 * </ol>
 * The learning rate follows one schedule over all steps (warm-up over stage 1, cosine decay to
 * 10 %); each merge starts a fresh LoRA (B = 0, so the function is continuous) with fresh AdamW
 * moments. Activation scores keep the input norms measured on the original model.
 *
 * <p>Training prompts: their own stream, {@link PromptStreams#recovery} of the seed.
 */
public final class VnmRecovery {
    /** Stages 1 and 2 together take this share of the steps (at most 10 %, docs/algorithms.md, V:N:M sparsity). */
    static final double EARLY_SHARE = 0.10;

    /**
     * @param teacher null: the loss is the cross-entropy of the worked solutions; else the KL from this
     *                (the original, dense) model's next-token distributions at every position of the
     *                prompt and solution ({@link DistillationTrainer})
     */
    public record Options(int steps, int batch, double lr, int rank, double alpha, int remaskEvery, long seed, Qwen3Model teacher) {
        public Options {
            if (steps < 0 || batch < 1 || !(lr > 0) || rank < 1 || !(alpha > 0) || remaskEvery < 1) {
                throw new IllegalArgumentException("recovery: steps must be >= 0; batch, rank and remaskEvery >= 1; lr and alpha > 0");
            }
        }
    }

    /** The recovered weights (pruned under {@code masks}) and what the run did. */
    public record Outcome(Map<String, float[]> weights, Map<String, VnmMask> masks, int[] stageSteps, List<Double> maskChanges,
                   double firstLoss, double lastLoss) {}

    public interface Listener {
        void step(int step, int steps, int stage, double loss);
    }

    private final Qwen3Model model;
    private final ModelConfig c;
    private final Task task;
    private final Tokenizer tok;
    private final Map<String, float[]> norms;
    private final VnmPattern pattern;
    private final Options o;
    private final Listener listener;
    private final LrSchedule schedule;
    private final List<Double> losses = new ArrayList<>();
    private int step;

    private VnmRecovery(Qwen3Model model, Task task, Tokenizer tok, Map<String, float[]> norms, VnmPattern pattern,
                        Options o, Listener listener) {
        this.model = model;
        this.c = model.config();
        this.task = task;
        this.tok = tok;
        this.norms = norms;
        this.pattern = pattern;
        this.o = o;
        this.listener = listener;
        int[] stages = stageSteps(o.steps());
        this.schedule = new LrSchedule(o.lr(), stages[0], Math.max(1, o.steps()), 0.1);
    }

    /** Steps of stages 1, 2 and 3: stages 1 and 2 split 10 % of the steps (rounded down), stage 3 the rest. */
    static int[] stageSteps(int steps) {
        int early = (int) Math.floor(EARLY_SHARE * steps);
        int s1 = early / 2;
        return new int[] {s1, early - s1, steps - early};
    }

    /**
     * Runs the recovery on {@code model}, whose weights are the (permuted) dense weights to prune;
     * they are updated in place and end pruned under the returned masks.
     */
    static Outcome run(Qwen3Model model, Task task, Tokenizer tok, Map<String, float[]> norms, VnmPattern pattern,
                       Options o, Listener listener) {
        return new VnmRecovery(model, task, tok, norms, pattern, o, listener).run();
    }

    private Outcome run() {
        int[] stages = stageSteps(o.steps());
        // Stage 1: dense LoRA.
        train(stages[0], null, 1, false);
        // Stage 2: the mask re-chosen from the merged weights every remaskEvery steps.
        List<Double> changes = new ArrayList<>();
        Map<String, VnmMask> masks = null;
        for (int done = 0; done < stages[1]; ) {
            int n = Math.min(o.remaskEvery(), stages[1] - done);
            Map<String, VnmMask> next = chooseMasks();
            if (masks != null) {
                changes.add(changedFraction(masks, next));
            }
            masks = next;
            train(n, masks, 2, false);
            done += n;
        }
        // Stage 3: the mask fixed; the last merge applies it.
        Map<String, VnmMask> fixed = chooseMasks();
        if (masks != null) {
            changes.add(changedFraction(masks, fixed));
        }
        train(stages[2], fixed, 3, true);
        if (stages[2] == 0) {
            applyMasks(fixed); // no stage 3 ran to merge under the mask
        }
        int k = Math.min(10, losses.size());
        double first = losses.stream().limit(k).mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        double last = losses.stream().skip(losses.size() - k).mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
        return new Outcome(model.hostWeights(), fixed, stages, changes, first, last);
    }

    /** n steps of a fresh LoRA (under masks, if any), then merged: under the masks when {@code maskedMerge}. */
    private void train(int n, Map<String, VnmMask> masks, int stage, boolean maskedMerge) {
        if (n == 0) {
            return;
        }
        try (LoraAdapter lora = LoraAdapter.create(model, new LoraConfig(o.rank(), o.alpha(), LoraConfig.ALL_LINEAR),
                o.seed() + step)) {
            model.attach(lora);
            if (masks != null) {
                setMasks(lora, masks);
            }
            AdamW.Options adamw = new AdamW.Options(0.9, 0.95, 1e-8, 0.0, 1.0); // no decay on the low-rank factors
            try (SupervisedTrainer ce = o.teacher() == null
                    ? new SupervisedTrainer(model, lora.parameters(), schedule, adamw, o.batch()) : null;
                 DistillationTrainer kl = o.teacher() != null
                    ? new DistillationTrainer(model, o.teacher(), lora.parameters(), schedule, adamw) : null) {
                if (ce != null) {
                    ce.resumeAt(step);
                } else {
                    kl.resumeAt(step);
                }
                for (int i = 0; i < n; i++) {
                    List<int[]> prompts = new ArrayList<>(o.batch());
                    List<int[]> completions = new ArrayList<>(o.batch());
                    for (int b = 0; b < o.batch(); b++) {
                        Prompt p = task.prompt(PromptStreams.recovery(o.seed()), (long) step * o.batch() + b);
                        prompts.add(TaskFormat.promptIds(tok, task, p));
                        completions.add(TaskFormat.completionIds(tok, task.solution(p).orElseThrow()));
                    }
                    double loss = ce != null ? ce.step(prompts, completions).loss() : kl.step(concat(prompts, completions)).loss();
                    losses.add(loss);
                    step++;
                    listener.step(step, o.steps(), stage, loss);
                }
            }
            if (masks != null && !maskedMerge) {
                setMasks(lora, null); // merge W + s·B·A densely: the pruned weights stay for the next mask
            }
            lora.merge();
            model.attach(null);
        }
    }

    private static List<int[]> concat(List<int[]> prompts, List<int[]> completions) {
        List<int[]> out = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            int[] p = prompts.get(i);
            int[] c = completions.get(i);
            int[] all = java.util.Arrays.copyOf(p, p.length + c.length);
            System.arraycopy(c, 0, all, p.length, c.length);
            out.add(all);
        }
        return out;
    }

    private Map<String, VnmMask> chooseMasks() {
        return VnmPruner.masks(c, model.hostWeights(), norms, pattern);
    }

    /** W ← W ⊙ M in the model (the merge that stage 3 would have done). */
    private void applyMasks(Map<String, VnmMask> masks) {
        try (LoraAdapter lora = LoraAdapter.create(model, new LoraConfig(1, 1, List.of("q_proj")), 0)) {
            // A fresh adapter's B is zero, so merging it changes nothing but the mask.
            setMasks(lora, masks);
            lora.merge();
        }
    }

    private void setMasks(LoraAdapter lora, Map<String, VnmMask> masks) {
        try (NDManager m = model.manager().newSubManager()) {
            for (int l = 0; l < c.numLayers(); l++) {
                for (String module : LoraConfig.ALL_LINEAR) {
                    if (masks == null) {
                        lora.setMask(l, module, null);
                        continue;
                    }
                    VnmMask mask = masks.get(name(l, module));
                    boolean[] keep = mask.toBooleans();
                    float[] f = new float[keep.length];
                    for (int i = 0; i < f.length; i++) {
                        f[i] = keep[i] ? 1f : 0f;
                    }
                    NDArray arr = m.create(f, new Shape(mask.rows(), mask.cols()));
                    lora.setMask(l, module, arr);
                }
            }
        }
    }

    static String name(int layer, String module) {
        return "model.layers." + layer + "." + Projection.of(module).block() + "." + module + ".weight";
    }

    /** Share of all mask entries that differ between two mask sets. */
    static double changedFraction(Map<String, VnmMask> a, Map<String, VnmMask> b) {
        long changed = 0;
        long total = 0;
        for (Map.Entry<String, VnmMask> e : a.entrySet()) {
            boolean[] x = e.getValue().toBooleans();
            boolean[] y = b.get(e.getKey()).toBooleans();
            for (int i = 0; i < x.length; i++) {
                changed += x[i] != y[i] ? 1 : 0;
            }
            total += x.length;
        }
        return (double) changed / total;
    }
}
