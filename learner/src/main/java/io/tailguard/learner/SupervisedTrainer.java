package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.tailguard.model.GradientCollectors;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scalars;
import io.tailguard.model.TrainingTape;

import java.util.List;
import java.util.Map;

/**
 * Teacher forcing: each example is a prompt and a completion; the loss is the mean cross-entropy
 * of the completion tokens given everything before them (prompt tokens are context, not targets).
 * One {@link #step} is one optimizer update over all its examples, accumulated over micro-batches.
 * Holds the JVM's one GradientCollector only while a step runs.
 */
public final class SupervisedTrainer implements AutoCloseable {
    public record StepStats(int step, double loss, double lr, double gradNorm, long tokens) {}

    private final Qwen3Model model;
    private final Map<String, NDArray> params;
    private final LrSchedule schedule;
    private final int microBatch;
    private final AdamW optimizer;
    private int step;

    /** Trains every parameter of the model. */
    public SupervisedTrainer(Qwen3Model model, LrSchedule schedule, AdamW.Options options, int microBatch) {
        this(model, model.parameters(), schedule, options, microBatch);
    }

    /**
     * Trains only {@code trainable} (e.g. the A and B of a LoRA attached to the model), with the
     * model's forward as the loss: everything else stays as it is and gets no gradient.
     */
    public SupervisedTrainer(Qwen3Model model, Map<String, NDArray> trainable, LrSchedule schedule, AdamW.Options options,
                             int microBatch) {
        if (microBatch < 1) {
            throw new IllegalArgumentException("micro-batch must be >= 1, got " + microBatch);
        }
        if (trainable.isEmpty()) {
            throw new IllegalArgumentException("nothing to train");
        }
        this.model = model;
        this.params = trainable;
        this.schedule = schedule;
        this.microBatch = microBatch;
        Gradients.track(params, true);
        this.optimizer = new AdamW(params, options, model.manager());
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

    public StepStats step(List<int[]> prompts, List<int[]> completions) {
        long tokens = 0;
        for (int[] c : completions) {
            tokens += c.length;
        }
        if (tokens == 0) {
            throw new IllegalArgumentException("no completion tokens to train on");
        }
        double lossSum = 0;
        Gradients.zero(params);
        for (int s = 0; s < prompts.size(); s += microBatch) {
            int e = Math.min(prompts.size(), s + microBatch);
            lossSum += accumulate(prompts.subList(s, e), completions.subList(s, e), tokens);
        }
        step++;
        double lr = schedule.at(step);
        double norm = optimizer.step(lr);
        return new StepStats(step, lossSum, lr, norm, tokens);
    }

    /** Forward and backward of one micro-batch; its loss is scaled by 1 / all tokens of the step. */
    private double accumulate(List<int[]> prompts, List<int[]> completions, long stepTokens) {
        int b = prompts.size();
        int t = 0;
        for (int i = 0; i < b; i++) {
            t = Math.max(t, prompts.get(i).length + completions.get(i).length - 1);
        }
        long[] input = new long[b * t];
        // the positions whose next token is a completion token, and that token: only these rows
        // go through the vocabulary projection (prompt positions and padding are context only)
        int targets = 0;
        for (int[] c : completions) {
            targets += c.length;
        }
        long[] at = new long[targets];
        long[] target = new long[targets];
        int k = 0;
        for (int i = 0; i < b; i++) {
            int[] p = prompts.get(i);
            int[] c = completions.get(i);
            int n = p.length + c.length;
            for (int j = 0; j < n - 1; j++) {
                input[i * t + j] = j < p.length ? p[j] : c[j - p.length];
                int next = j + 1;
                if (next >= p.length) {
                    at[k] = (long) i * t + j;
                    target[k] = c[next - p.length];
                    k++;
                }
            }
        }
        if (k < targets) { // a completion's first token has no position before it when its prompt is empty
            at = java.util.Arrays.copyOf(at, k);
            target = java.util.Arrays.copyOf(target, k);
            targets = k;
        }
        if (targets == 0) {
            return 0; // nothing predicted in this micro-batch: no loss and no gradient
        }
        try (NDManager m = model.manager().newSubManager();
             GradientCollector gc = GradientCollectors.exclusive();
             TrainingTape tape = TrainingTape.open(m)) {
            NDArray hidden = model.hiddenStates(m.create(input, new Shape(b, t)));        // [b, t, H]
            NDArray rows = hidden.reshape((long) b * t, -1).get(new ai.djl.ndarray.index.NDIndex("{}", m.create(at)));
            int[] ids = new int[targets];
            for (int i = 0; i < targets; i++) {
                ids[i] = (int) target[i];
            }
            NDArray picked = model.targetLogProbs(rows, ids);                                 // [n]
            NDArray loss = Scalars.dividedBy(picked.sum().neg(), stepTokens);
            tape.backward(gc, loss);
            return loss.getFloat();
        }
    }

    @Override
    public void close() {
        optimizer.close();
        Gradients.track(params, false);
    }
}
