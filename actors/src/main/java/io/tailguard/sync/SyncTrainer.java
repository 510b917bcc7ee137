package io.tailguard.sync;

import io.tailguard.learner.AdamW;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.GrpoObjective;
import io.tailguard.learner.LrSchedule;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scorer;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.sparse.BlockTopKAttention;
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
 * function of the run seed and the step, so a run is reproducible and resumable.
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

    public record StepLine(int step, double meanReward, double passRate, GrpoLearner.Report learner,
                           double rolloutSeconds, double learnSeconds, long rolloutTokens) {}

    public record Result(double passAt1Start, double passAt1End, double rolloutSpeedup, List<StepLine> steps) {}

    private final Qwen3Model model;
    private final Tokenizer tok;
    private final Task task;
    private final Schedule schedule;
    private final Options o;

    public SyncTrainer(Qwen3Model model, Tokenizer tok, Task task, Schedule schedule, Options options) {
        this.model = model;
        this.tok = tok;
        this.task = task;
        this.schedule = schedule;
        this.o = options;
    }

    private AttentionKernel kernel() {
        return schedule.isDense() ? AttentionKernel.DENSE : BlockTopKAttention.of(schedule);
    }

    /** Runs every step; with {@code out}, saves a learner checkpoint (weights, moments, state) there at the end. */
    public Result run(Consumer<StepLine> onStep, java.nio.file.Path out, String parent) {
        double start = evaluate();
        List<StepLine> lines = new ArrayList<>();
        Generator gen = new Generator(model, kernel());
        int eos = TaskFormat.requireEos(tok);
        try (GrpoLearner learner = new GrpoLearner(model, o.groupSize(), o.microBatch(), GrpoObjective.Options.defaults(),
                new LrSchedule(o.lr(), o.warmupSteps(), o.steps(), 1.0), AdamW.Options.defaults())) {
            for (int s = 1; s <= o.steps(); s++) {
                long t0 = System.nanoTime();
                Batch batch = rollout(gen, s, eos);
                long t1 = System.nanoTime();
                List<GrpoLearner.Sample> samples = samples(batch);
                GrpoLearner.Report r = learner.step(samples);
                long t2 = System.nanoTime();
                double mean = batch.rewards.stream().mapToDouble(Double::doubleValue).average().orElse(0);
                double pass = batch.rewards.stream().filter(x -> x >= 1.0).count() / (double) batch.rewards.size();
                StepLine line = new StepLine(s, mean, pass, r, (t1 - t0) / 1e9, (t2 - t1) / 1e9, batch.tokens);
                lines.add(line);
                onStep.accept(line);
            }
            if (out != null) {
                io.tailguard.learner.LearnerCheckpoint.save(out, model, learner.optimizer(),
                        new io.tailguard.learner.LearnerCheckpoint.TrainerState(o.steps(), learner.optimizer().steps(),
                                (long) o.steps() * o.promptsPerStep(), o.seed(), "grpo"),
                        tok.toJson(), o.steps(), parent);
            }
        }
        double end = evaluate();
        return new Result(start, end, schedule.isDense() ? 1.0 : measuredRolloutSpeedup(eos), lines);
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

    private Batch rollout(Generator gen, int step, int eos) {
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
        GenerationResult res = gen.generate(new GenerationRequest(prompts, maxNew, new SamplingParams(1.0, 1.0, 0, sampleSeed),
                Set.of(eos), 0));
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

    /** Decode time of one rollout batch, dense over sparse, same prompts and seed. */
    private double measuredRolloutSpeedup(int eos) {
        Batch warmup = rollout(new Generator(model), o.steps() + 1, eos); // untimed: first-touch costs
        long t0 = System.nanoTime();
        rollout(new Generator(model), o.steps() + 1, eos);
        double d = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        rollout(new Generator(model, kernel()), o.steps() + 1, eos);
        double s = (System.nanoTime() - t0) / 1e9;
        return warmup.tokens == 0 ? 1.0 : d / s;
    }
}
