package io.tailguard.recipes;

import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptOrder;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.worker.RolloutEngine;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The synchronous RL loop, in one process and one thread: sparse (or dense) rollouts of G samples per
 * prompt and rewards from the task's verifier, by the {@link RolloutEngine} that rollout workers use
 * → one GRPO + TIS update of the {@link TrainingSession} that the learner actor uses (its forward
 * gives π_old) → the next step samples from the updated policy. The actor system runs the same parts
 * asynchronously; this loop proves them and serves tests and benchmarks.
 *
 * <p>Step s draws prompts (s−1)·P … s·P − 1 of the seed's {@link PromptOrder} and samples with seed (seed, s): everything is a
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
     * DistillSparse (docs/algorithms.md, DistillSparse): a LoRA of this shape that only the sparse actor uses,
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
     * continues from the learner checkpoint in {@code out}. {@code options} (the settings that
     * shape the steps, {@link SyncResume#settings}) are recorded in the checkpoint's trainer state for
     * a resume to check ({@link SyncResume#step}).
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

        static Checkpointing atEnd(java.nio.file.Path out, String parent) {
            return new Checkpointing(out, parent, 0, 0, false);
        }
    }

    /** The learning rate's warm-up steps of a train-sync run of {@code steps} steps: a tenth of them, at most 5. */
    public static int warmupSteps(int steps) {
        return Math.min(5, steps / 10);
    }

    /** The kind a learner checkpoint of this loop records: "grpo", or "grpo+distill-sparse". */
    public static String kind(boolean distill) {
        return distill ? "grpo+distill-sparse" : "grpo";
    }

    private final Qwen3Model model;
    private final Tokenizer tok;
    private final Task task;
    /** Held-out evaluation's task: the task itself for a generated one (its seed is the split), a held-out file's, or null: none. */
    private final Task heldOut;
    private final Schedule schedule;
    private final Options o;
    private final Distill distill;
    private final PromptOrder order;
    private LoraAdapter lora;

    /** Completion budget when a task does not bound its answer. */
    private static final int MAX_NEW_FALLBACK = 64;
    /** Position bins of the rollouts' α tails (the loop does not report them; the engine collects them). */
    private static final int TAIL_BIN_WIDTH = 64;

    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Schedule schedule, Options options) {
        this(model, tok, task, schedule, options, null);
    }

    /**
     * With {@code distill}, rollouts sample from the sparse actor with a fresh LoRA, the dense probe
     * and the policy update ignore it, and after each update the LoRA alone is trained
     * ({@link DistillSparse}); the checkpoint then carries it in its folder lora.
     */
    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Schedule schedule, Options options, Distill distill) {
        this(model, tok, task, task.size().isPresent() ? null : task, schedule, options, distill);
    }

    /**
     * With the task of held-out evaluation: for a generated task the task itself (the evaluation
     * seed is its split); for a dataset task the task of a held-out file of the same kind, or null,
     * and then pass@1 is not evaluated (NaN) rather than measured on training records.
     */
    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Task heldOut, Schedule schedule, Options options,
                       Distill distill) {
        if (distill != null && schedule.isDense()) {
            throw new IllegalArgumentException("DistillSparse trains the sparse actor's LoRA: it needs a sparse schedule");
        }
        this.model = model;
        this.tok = tok;
        this.task = task;
        this.heldOut = heldOut;
        this.order = PromptOrder.of(task, PromptStreams.training(options.seed()));
        this.schedule = schedule;
        this.o = options;
        this.distill = distill;
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
        int resumedFrom = c.resume() ? SyncResume.step(c.out(), o, distill != null, c.options()) : 0;
        int first = resumedFrom + 1;
        int last = c.stopAfter() > 0 ? Math.min(c.stopAfter(), o.steps()) : o.steps();
        double start = c.resume() ? Double.NaN : evaluate();
        List<StepLine> lines = new ArrayList<>();
        RolloutEngine engine;
        try (TrainingSession session = new TrainingSession(model,
                new TrainingSession.Options(o.groupSize(), o.microBatch(), o.lr(), o.warmupSteps(), o.steps()))) {
            if (distill != null) {
                session.startDistill(LoraAdapter.create(model, distill.lora(), distill.seed()),
                        new TrainingSession.Distill(distill.lr(), distill.klWeight(), distill.ppoWeight(), distill.divergence()));
                lora = session.lora();
            }
            engine = engine(lora);
            if (c.resume()) {
                session.restore(c.out());
                if (distill != null) {
                    session.restoreDistill(c.out(), resumedFrom);
                }
            }
            for (int s = first; s <= last; s++) {
                long t0 = System.nanoTime();
                RolloutEngine.Result batch = rollout(engine, s);
                long t1 = System.nanoTime();
                List<GrpoLearner.Sample> samples = TrainingSession.samples(batch.trajectories());
                GrpoLearner.Report r = session.policyStep(samples);
                long t2 = System.nanoTime();
                DistillSparse.Report d = distill == null ? null : session.distillStep(samples, schedule);
                long t3 = System.nanoTime();
                double mean = samples.stream().mapToDouble(GrpoLearner.Sample::reward).average().orElse(0);
                double pass = samples.stream().filter(x -> x.reward() >= 1.0).count() / (double) samples.size();
                StepLine line = new StepLine(s, mean, pass, r, (t1 - t0) / 1e9, (t2 - t1) / 1e9,
                        batch.generatedTokens(), d, (t3 - t2) / 1e9);
                lines.add(line);
                // Saved before the line is reported: a run stopped right after a line has its checkpoint.
                if (c.out() != null && (s == last || (c.every() > 0 && s % c.every() == 0))) {
                    session.save(c.out(), new LearnerCheckpoint.TrainerState(s, session.optimizerSteps(),
                                    (long) s * o.promptsPerStep(), o.seed(), kind(distill != null), c.options()),
                            tok.toJson(), s, c.parent());
                }
                onStep.accept(line);
            }
        }
        boolean finished = last == o.steps();
        double end = finished ? evaluate() : Double.NaN;
        double speedup = !finished ? Double.NaN : schedule.isDense() ? 1.0 : measuredRolloutSpeedup(engine);
        return new Result(start, end, speedup, lines, resumedFrom, Math.max(last, first - 1));
    }

    /** The sparse actor's LoRA under DistillSparse (attached to the model, switched off between uses), else null. */
    public LoraAdapter lora() {
        return lora;
    }

    /** Held-out greedy pass@1, dense (the policy as it is, without the sparse actor). */
    private double evaluate() {
        if (o.evalN() == 0 || heldOut == null) {
            return Double.NaN;
        }
        return Evaluator.evaluate(model, tok, heldOut, Evaluator.EvalOptions.heldOut(o.evalN(), o.evalSeed()),
                AttentionKernel.DENSE).passAt1();
    }

    /** The sampler of the loop: the schedule's sparse actor, with the LoRA merged while it samples (if any). */
    private RolloutEngine engine(LoraAdapter actorLora) {
        return new RolloutEngine(model, tok, task, new RolloutEngine.Options(o.groupSize(), 1.0, MAX_NEW_FALLBACK,
                TAIL_BIN_WIDTH, 0.0, 1.0), actorLora);
    }

    /**
     * Step s's prompts: indices (s−1)·P … s·P − 1 of the training stream ({@link PromptOrder}: the
     * prompts (seed, i) of a generated task, the records π(i mod n) of a dataset).
     */
    private List<Prompt> prompts(int step) {
        List<Prompt> prompts = new ArrayList<>(o.promptsPerStep());
        for (int i = 0; i < o.promptsPerStep(); i++) {
            prompts.add(order.prompt((long) (step - 1) * o.promptsPerStep() + i));
        }
        return prompts;
    }

    /**
     * Step s's rollout: G samples of each of its prompts, sampled with seed (seed, s) and rewarded by
     * the task's verifier; nothing is scored densely (the learner's forward gives π_old).
     */
    private RolloutEngine.Result rollout(RolloutEngine engine, int step) {
        List<Prompt> prompts = prompts(step);
        long[] groups = new long[prompts.size()];
        for (int i = 0; i < groups.length; i++) {
            groups[i] = (long) (step - 1) * o.promptsPerStep() + i;
        }
        long seed = PromptStreams.sampling(o.seed(), step);
        return engine.runUnscored(prompts, groups, schedule, seed);
    }

    /**
     * Decode time of one rollout batch, dense over sparse (with the LoRA under DistillSparse), same
     * prompts and seed: those of the step after the last.
     */
    private double measuredRolloutSpeedup(RolloutEngine sparse) {
        RolloutEngine dense = engine(null);
        List<Prompt> prompts = prompts(o.steps() + 1);
        long seed = PromptStreams.sampling(o.seed(), o.steps() + 1);
        dense.decodeSeconds(prompts, Schedule.dense(), seed); // untimed: first-touch costs
        double d = dense.decodeSeconds(prompts, Schedule.dense(), seed);
        double s = sparse.decodeSeconds(prompts, schedule, seed);
        return d / s;
    }
}
