package io.tailguard.recipes;

import io.tailguard.learner.AdamW;
import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.GrpoObjective;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.learner.LrSchedule;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scorer;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.BlockTopKMask;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The synchronous RL loop, in one process and one thread: sparse (or dense) rollouts of G samples per
 * prompt → rewards from the task's verifier → dense teacher-forced log-probs with the same weights
 * (π_old) → one GRPO + TIS update → the next step samples from the updated policy. The actor
 * system runs the same parts asynchronously; this loop proves them and serves tests and benchmarks.
 *
 * <p>Step s draws prompts (seed, (s−1)·P … s·P − 1) and samples with seed (seed, s): everything is a
 * function of the run seed and the step, so a run is reproducible and resumable. A learner checkpoint
 * (weights, the policy's AdamW, the step, and under DistillSparse the LoRA and its own AdamW) is
 * therefore the whole state of the loop between steps: resumed from one with the same options, the
 * loop computes the steps the uninterrupted run would have, bit for bit.
 */
public final class SyncTrainer {
    public record Options(int steps, int promptsPerStep, int groupSize, double lr, int warmupSteps, long seed,
                          int microBatch, int evalN, long evalSeed) {
        public Options {
            if (steps < 1 || promptsPerStep < 1 || groupSize < 2 || !(lr > 0) || microBatch < 1 || evalN < 0) {
                throw new IllegalArgumentException("bad train-sync options: steps " + steps + ", prompts " + promptsPerStep
                        + ", group " + groupSize + ", lr " + lr + ", micro-batch " + microBatch + ", eval-n " + evalN);
            }
        }
    }

    /**
     * DistillSparse (ALGORITHMS.md §6): a LoRA of this shape that only the sparse actor uses,
     * trained after each policy update at learning rate lr with KL weight λ, PPO weight (published
     * 1) and penalty ({@link DistillSparse.Divergence}); seed initialises A.
     */
    public record Distill(LoraConfig lora, double lr, double klWeight, double ppoWeight, DistillSparse.Divergence divergence,
                          long seed) {
        /** The published form: L_PPO + λ·k3. */
        public Distill(LoraConfig lora, double lr, double klWeight, long seed) {
            this(lora, lr, klWeight, 1.0, DistillSparse.Divergence.K3, seed);
        }

        public Distill {
            if (!(lr > 0) || !(klWeight >= 0) || !(ppoWeight >= 0) || divergence == null) {
                throw new IllegalArgumentException("bad DistillSparse options: lr " + lr + ", KL weight " + klWeight
                        + ", PPO weight " + ppoWeight + ", divergence " + divergence);
            }
        }
    }

    /** distill is null without DistillSparse; distillSeconds is then 0. */
    public record StepLine(int step, double meanReward, double passRate, GrpoLearner.Report learner,
                           double rolloutSeconds, double learnSeconds, long rolloutTokens,
                           DistillSparse.Report distill, double distillSeconds) {}

    /**
     * passAt1Start is NaN when resumed (the run's start was evaluated before it stopped); passAt1End
     * and rolloutSpeedup are NaN when the run stopped before its last step. resumedFrom is the step
     * of the checkpoint it continued (0 for a fresh run), lastStep the last step it ran.
     */
    public record Result(double passAt1Start, double passAt1End, double rolloutSpeedup, List<StepLine> steps,
                         int resumedFrom, int lastStep) {}

    /**
     * Where and when the learner checkpoint is written: to {@code out} (null: nowhere) after every
     * {@code every} steps (0: only at the end) and after the last step run; the loop stops after step
     * {@code stopAfter} (0: runs to Options.steps), leaving a checkpoint; with {@code resume} it
     * continues from the learner checkpoint in {@code out}. {@code options} (the command's settings
     * that shape the steps) are recorded in the checkpoint's trainer state for a resume to check.
     */
    public record Checkpointing(java.nio.file.Path out, String parent, int every, int stopAfter, boolean resume,
                                java.util.Map<String, String> options) {
        public Checkpointing {
            if (every < 0 || stopAfter < 0) {
                throw new IllegalArgumentException("checkpoint-every and stop-after must be >= 0");
            }
            if (out == null && (every > 0 || stopAfter > 0 || resume)) {
                throw new IllegalArgumentException("checkpointing, stopping and resuming need an output directory");
            }
            options = options == null ? java.util.Map.of() : java.util.Map.copyOf(options);
        }

        public Checkpointing(java.nio.file.Path out, String parent, int every, int stopAfter, boolean resume) {
            this(out, parent, every, stopAfter, resume, java.util.Map.of());
        }

        public static Checkpointing atEnd(java.nio.file.Path out, String parent) {
            return new Checkpointing(out, parent, 0, 0, false);
        }
    }

    /** The kind a learner checkpoint of this loop records: "grpo", or "grpo+distill-sparse". */
    public static String kind(boolean distill) {
        return distill ? "grpo+distill-sparse" : "grpo";
    }

    private final Qwen3Model model;
    private final Tokenizer tok;
    private final Task task;
    private final Schedule schedule;
    private final Options o;
    private final Distill distill;
    private LoraAdapter lora;

    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Schedule schedule, Options options) {
        this(model, tok, task, schedule, options, null);
    }

    /**
     * With {@code distill}, rollouts sample from the sparse actor with a fresh LoRA, the dense probe
     * and the policy update ignore it, and after each update the LoRA alone is trained
     * ({@link DistillSparse}); the checkpoint then carries lora.safetensors and adapter_config.json.
     */
    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Schedule schedule, Options options, Distill distill) {
        if (distill != null && schedule.isDense()) {
            throw new IllegalArgumentException("DistillSparse trains the sparse actor's LoRA: it needs a sparse schedule");
        }
        this.model = model;
        this.tok = tok;
        this.task = task;
        this.schedule = schedule;
        this.o = options;
        this.distill = distill;
    }

    private AttentionKernel kernel() {
        return BlockTopKAttention.forSchedule(schedule);
    }

    /** Runs every step; with {@code out}, saves a learner checkpoint (weights, moments, state) there at the end. */
    public Result run(Consumer<StepLine> onStep, java.nio.file.Path out, String parent) {
        return run(onStep, Checkpointing.atEnd(out, parent));
    }

    /**
     * Runs the steps, writing learner checkpoints as {@code c} says. Resuming, the model must hold the
     * checkpoint's weights (loaded from {@code c.out()}); the policy's optimizer, the LoRA and its
     * optimizer and the step counters are restored here, and the run continues at the checkpoint's
     * step + 1 with the same per-step seeds. The start evaluation is skipped then.
     */
    public Result run(Consumer<StepLine> onStep, Checkpointing c) {
        LearnerCheckpoint.TrainerState resumed = c.resume() ? checkResumable(c.out()) : null;
        int first = resumed == null ? 1 : (int) resumed.step() + 1;
        int last = c.stopAfter() > 0 ? Math.min(c.stopAfter(), o.steps()) : o.steps();
        double start = resumed == null ? evaluate() : Double.NaN;
        List<StepLine> lines = new ArrayList<>();
        Generator gen = new Generator(model, kernel());
        int eos = TaskFormat.requireEos(tok);
        if (distill != null) {
            lora = LoraAdapter.create(model, distill.lora(), distill.seed());
            model.attach(lora);
            lora.setEnabled(false); // on only while the sparse actor samples and while it is distilled
        }
        try (GrpoLearner learner = new GrpoLearner(model, o.groupSize(), o.microBatch(), GrpoObjective.Options.defaults(),
                new LrSchedule(o.lr(), o.warmupSteps(), o.steps(), 1.0), AdamW.Options.defaults());
             DistillSparse distiller = distill == null ? null : new DistillSparse(model, lora, BlockTopKMask.factory(schedule),
                     o.groupSize(), new LrSchedule(distill.lr(), o.warmupSteps(), o.steps(), 1.0),
                     new DistillSparse.Options(distill.klWeight(), distill.ppoWeight(), distill.divergence(),
                             GrpoObjective.Options.defaults(), o.microBatch()))) {
            if (resumed != null) {
                LearnerCheckpoint.restore(c.out(), learner.optimizer());
                learner.resumeAt((int) resumed.step());
                if (distiller != null) {
                    LearnerCheckpoint.restoreLora(c.out(), lora, distiller.optimizer());
                    distiller.resumeAt((int) resumed.step());
                }
            }
            for (int s = first; s <= last; s++) {
                long t0 = System.nanoTime();
                Batch batch = rollout(gen, s, eos, true);
                long t1 = System.nanoTime();
                List<GrpoLearner.Sample> samples = samples(batch);
                GrpoLearner.Report r = learner.step(samples);
                long t2 = System.nanoTime();
                DistillSparse.Report d = distiller == null ? null : distiller.step(samples);
                long t3 = System.nanoTime();
                double mean = batch.rewards.stream().mapToDouble(Double::doubleValue).average().orElse(0);
                double pass = batch.rewards.stream().filter(x -> x >= 1.0).count() / (double) batch.rewards.size();
                StepLine line = new StepLine(s, mean, pass, r, (t1 - t0) / 1e9, (t2 - t1) / 1e9, batch.tokens, d,
                        (t3 - t2) / 1e9);
                lines.add(line);
                // Saved before the line is reported: a run stopped right after a line has its checkpoint.
                if (c.out() != null && (s == last || (c.every() > 0 && s % c.every() == 0))) {
                    save(c, s, learner, distiller);
                }
                onStep.accept(line);
            }
        }
        boolean finished = last == o.steps();
        double end = finished ? evaluate() : Double.NaN;
        double speedup = !finished ? Double.NaN : schedule.isDense() ? 1.0 : measuredRolloutSpeedup(eos);
        return new Result(start, end, speedup, lines, resumed == null ? 0 : (int) resumed.step(), Math.max(last, first - 1));
    }

    /** The checkpoint in out, if this loop with these options can continue it; else IllegalArgumentException. */
    private LearnerCheckpoint.TrainerState checkResumable(java.nio.file.Path out) {
        if (!LearnerCheckpoint.exists(out)) {
            throw new IllegalArgumentException(out + ": no learner checkpoint to resume (" + LearnerCheckpoint.STATE + ", "
                    + LearnerCheckpoint.OPTIMIZER + ")");
        }
        LearnerCheckpoint.TrainerState st = LearnerCheckpoint.state(out);
        java.nio.file.Path f = out.resolve(LearnerCheckpoint.STATE);
        if (!kind(distill != null).equals(st.kind())) {
            throw new IllegalArgumentException(f + ": kind " + st.kind() + ", but this run is " + kind(distill != null));
        }
        if (st.seed() != o.seed()) {
            throw new IllegalArgumentException(f + ": seed " + st.seed() + ", but this run's seed is " + o.seed());
        }
        if (st.step() < 0 || st.step() > o.steps()) {
            throw new IllegalArgumentException(f + ": step " + st.step() + " is outside this run's 0.." + o.steps());
        }
        if (st.dataCursor() != st.step() * o.promptsPerStep()) {
            throw new IllegalArgumentException(f + ": data cursor " + st.dataCursor() + " is not step " + st.step() + " × "
                    + o.promptsPerStep() + " prompts per step");
        }
        return st;
    }

    private void save(Checkpointing c, int step, GrpoLearner learner, DistillSparse distiller) {
        LearnerCheckpoint.save(c.out(), model, learner.optimizer(),
                new LearnerCheckpoint.TrainerState(step, learner.optimizer().steps(), (long) step * o.promptsPerStep(), o.seed(),
                        kind(distill != null), c.options()),
                tok.toJson(), step, c.parent(), lora, distiller == null ? null : distiller.optimizer());
    }

    /** The sparse actor's LoRA under DistillSparse (attached to the model, switched off between uses), else null. */
    public LoraAdapter lora() {
        return lora;
    }

    /** Held-out greedy pass@1, dense (the policy as it is, without the sparse actor). */
    private double evaluate() {
        if (o.evalN() == 0) {
            return Double.NaN;
        }
        return Evaluator.evaluate(model, tok, task, new Evaluator.EvalOptions(o.evalN(), 1, 0.0, o.evalSeed(), 64, 16),
                AttentionKernel.DENSE).passAt1();
    }

    private record Batch(List<Generated> generated, List<Double> rewards, long tokens) {}

    /** With sparseActor, the generator is the sparse actor's and samples with its LoRA (if any). */
    private Batch rollout(Generator gen, int step, int eos, boolean sparseActor) {
        List<int[]> prompts = new ArrayList<>();
        List<Prompt> source = new ArrayList<>();
        int maxNew = 1;
        for (int i = 0; i < o.promptsPerStep(); i++) {
            Prompt p = task.prompt(o.seed(), (long) (step - 1) * o.promptsPerStep() + i);
            int[] ids = TaskFormat.promptIds(tok, p);
            maxNew = Math.max(maxNew, TaskFormat.maxNewTokens(task, p, tok, 64));
            for (int g = 0; g < o.groupSize(); g++) {
                prompts.add(ids);
                source.add(p);
            }
        }
        long sampleSeed = o.seed() * 1_000_003L + step;
        GenerationResult res;
        // The sparse actor samples with its LoRA merged into the weights (no cost per token; the base
        // comes back exactly after); a dense generator never uses it.
        try (LoraAdapter.Switch merged = lora == null || !sparseActor ? null : lora.mergedScope()) {
            res = gen.generate(new GenerationRequest(prompts, maxNew, new SamplingParams(1.0, 1.0, 0, sampleSeed),
                    Set.of(eos), 0));
        }
        List<Double> rewards = new ArrayList<>();
        long tokens = 0;
        for (int i = 0; i < prompts.size(); i++) {
            Generated g = res.sequences().get(i);
            tokens += g.outputIds().length;
            rewards.add(task.verify(source.get(i), TaskFormat.completionText(tok, g.outputIds())).reward());
        }
        return new Batch(res.sequences(), rewards, tokens);
    }

    /** π_inf from the sampler; π_old by dense teacher-forced scoring with the same weights (skipped when dense). */
    private List<GrpoLearner.Sample> samples(Batch b) {
        List<float[]> old;
        if (schedule.isDense()) {
            old = b.generated.stream().map(Generated::logprobs).toList();
        } else {
            List<Scorer.Scores> sc = Scorer.score(model, b.generated.stream().map(Generated::promptIds).toList(),
                    b.generated.stream().map(Generated::outputIds).toList(), Scorer.Options.LOGPROBS_ONLY);
            old = sc.stream().map(Scorer.Scores::logprobs).toList();
        }
        List<GrpoLearner.Sample> out = new ArrayList<>();
        for (int i = 0; i < b.generated.size(); i++) {
            Generated g = b.generated.get(i);
            out.add(new GrpoLearner.Sample(g.promptIds(), g.outputIds(), g.logprobs(), old.get(i), b.rewards.get(i)));
        }
        return out;
    }

    /** Decode time of one rollout batch, dense over sparse (with the LoRA under DistillSparse), same prompts and seed. */
    private double measuredRolloutSpeedup(int eos) {
        Batch warmup = rollout(new Generator(model), o.steps() + 1, eos, false); // untimed: first-touch costs
        long t0 = System.nanoTime();
        rollout(new Generator(model), o.steps() + 1, eos, false);
        double d = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        rollout(new Generator(model, kernel()), o.steps() + 1, eos, true);
        double s = (System.nanoTime() - t0) / 1e9;
        return warmup.tokens == 0 ? 1.0 : d / s;
    }
}
