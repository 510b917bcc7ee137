package io.tailguard.rollout.worker;

import ai.djl.ndarray.types.DataType;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scorer;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.generation.TokenDistributions;
import io.tailguard.rollout.sparse.Acceptance;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Verdict;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * What one rollout worker does with one lease, as a plain library: sample G completions per prompt
 * under the schedule (the sparse actor), score them with the task's verifier, score a sample of
 * them densely, teacher-forced, with the policy's weights (p for the α probe), put
 * α_t = Σ_v min(p_t(v), q_t(v)) of every token of that sample into per-bin tails, and, for a share of
 * the trajectories, replay the same tokens under a shadow schedule (each bin one budget step
 * lower) so the controller learns whether a cheaper budget would still hold the tail. The learner
 * needs no dense pass from here: its own forward gives π_old (GrpoLearner), so the dense scoring is
 * the tail's measurement only, and {@code scoreFraction} of the trajectories (drawn uniformly, so the
 * measured tokens are a uniform sample of the lease's) are enough to read a percentile per bin.
 *
 * <p>The actor runtime and the synchronous loop both call this, so they roll out identically.
 */
public final class RolloutEngine {
    /** Vocabularies up to this size get exact α (full distributions); larger ones the top-20 bound. */
    public static final int EXACT_ALPHA_MAX_VOCAB = 4096;

    /**
     * shadowFraction: the share of all trajectories replayed one rung lower, drawn from the scored
     * ones (so at most scoreFraction); scoreFraction: the share scored densely for α (in (0, 1]: a
     * lease with tails to measure scores at least one trajectory); kvCache: the element type of the
     * sampler's KV caches (FLOAT32, or FLOAT16: an approximation the tail measures like sparsity; the
     * dense scoring and the in-run speedup's dense reference keep float32).
     */
    public record Options(int groupSize, double temperature, int maxNewFallback, int binWidth, double shadowFraction,
                          double scoreFraction, DataType kvCache) {
        public Options {
            if (groupSize < 1 || !(temperature > 0) || maxNewFallback < 1 || binWidth < 1
                    || !(shadowFraction >= 0 && shadowFraction <= 1) || !(scoreFraction > 0 && scoreFraction <= 1)
                    || kvCache != DataType.FLOAT32 && kvCache != DataType.FLOAT16) {
                throw new IllegalArgumentException("bad rollout options: group " + groupSize + ", temperature " + temperature
                        + ", max-new " + maxNewFallback + ", bin width " + binWidth + ", shadow fraction " + shadowFraction
                        + ", score fraction " + scoreFraction + ", KV cache " + kvCache);
            }
        }

        /** The same options on a KV cache of that element type. */
        public Options withKvCache(DataType type) {
            return new Options(groupSize, temperature, maxNewFallback, binWidth, shadowFraction, scoreFraction, type);
        }

        /** With a float32 KV cache. */
        public Options(int groupSize, double temperature, int maxNewFallback, int binWidth, double shadowFraction,
                       double scoreFraction) {
            this(groupSize, temperature, maxNewFallback, binWidth, shadowFraction, scoreFraction, DataType.FLOAT32);
        }
    }

    /** One sampled completion of one prompt: sample s of group groupId, with its sampler's log-probs. */
    public record Trajectory(long groupId, int sample, String promptId, int[] promptIds, int[] outputIds,
                             float[] behaviourLogprobs, double reward, String reason) {}

    /**
     * The lease's result. tails: α of the scored sample under the schedule rolled out with, binned by
     * position (empty when nothing was scored); shadow:
     * α of the replayed share under the shadow schedule (null without one); seconds split into
     * generation (decode and prefill), dense scoring and shadow replay; the generation's own split
     * into prefill and decode ({@link GenerationResult}: the decode loop of decodeSteps steps,
     * sampling included, without a paired reference's steps); speedup: the paired dense measurement, or null when the lease
     * was not measured.
     */
    public record Result(List<Trajectory> trajectories, TailStats tails, TailStats shadow, long generatedTokens,
                         double generateSeconds, double scoreSeconds, double shadowSeconds, double prefillSeconds,
                         double decodeSeconds, int decodeSteps, SpeedupSample speedup) {}

    /**
     * A lease's rollout speedup, measured inside it ({@link Generator#generatePaired}): the sampled
     * batch decoded under the schedule and, in lockstep on its own cache, densely ({@link
     * BlockTopKAttention#dense()}), alternating step by step. Seconds are each mode's timed decode
     * steps (decodeSteps of each) and each cache's prefill; KV positions: what each kernel read over
     * the steps ({@link BlockTopKAttention#positionsRead}); predicted seconds: the cost model's
     * ({@link CostModel}, at the lease's batch, this machine's constants) for the same decode steps
     * at the same contexts, dense and under the schedule.
     */
    public record SpeedupSample(double liveDecodeSeconds, double denseDecodeSeconds, double livePrefillSeconds,
                                double densePrefillSeconds, int decodeSteps, long liveKvPositions, long denseKvPositions,
                                double predictedLiveSeconds, double predictedDenseSeconds) {
        /** Dense over live decode seconds. */
        public double speedup() {
            return denseDecodeSeconds / liveDecodeSeconds;
        }

        /** The cost model's dense over live decode seconds for these steps. */
        public double predictedSpeedup() {
            return predictedDenseSeconds / predictedLiveSeconds;
        }
    }

    private final Qwen3Model model;
    private final Tokenizer tok;
    private final Task task;
    private final Options o;
    private final Set<Integer> stops;
    private final io.tailguard.model.lora.LoraAdapter actorLora;
    /** The cost model's machine constants, read at the first measured lease. */
    private CostModel.Machine machine;
    /** This engine on the other cache type ({@link #withKvCache}), made once. */
    private RolloutEngine other;

    public RolloutEngine(Qwen3Model model, Tokenizer tok, Task task, Options options) {
        this(model, tok, task, options, null);
    }

    /**
     * With {@code actorLora} (DistillSparse's adapter, attached to {@code model} and switched off),
     * the sparse actor decodes with it merged into the weights, both when it samples and when the
     * shadow replay replays its tokens under the shadow schedule (so the shadow α, which decides
     * whether a budget may drop, is the adapted actor's); the dense scoring (p for α) is the
     * policy's without it, as in train-sync --distill.
     */
    public RolloutEngine(Qwen3Model model, Tokenizer tok, Task task, Options options, io.tailguard.model.lora.LoraAdapter actorLora) {
        if (actorLora != null && model.adapter() != actorLora) {
            throw new IllegalArgumentException("the sparse actor's LoRA must be attached to the model it rolls out with");
        }
        this.actorLora = actorLora;
        this.model = model;
        this.tok = tok;
        this.task = task;
        this.o = options;
        this.stops = TaskFormat.stopTokens(tok, task);
    }

    public Options options() {
        return o;
    }

    /**
     * This engine on a KV cache of that element type (a lease of a float16-cache option): the same
     * model, tokenizer, task and LoRA; itself when the type is already its own.
     */
    public RolloutEngine withKvCache(DataType type) {
        if (type == o.kvCache()) {
            return this;
        }
        if (other == null || other.o.kvCache() != type) {
            other = new RolloutEngine(model, tok, task, o.withKvCache(type), actorLora);
            other.machine = machine;
        }
        return other;
    }

    static AttentionKernel kernel(Schedule s) {
        return BlockTopKAttention.forSchedule(s);
    }

    /**
     * Rolls out G samples of each prompt. groupIds[i] names prompt i's group. shadow may be null
     * (no shadow replay); seed fixes sampling and the choice of replayed trajectories.
     */
    public Result run(List<Prompt> prompts, long[] groupIds, Schedule schedule, Schedule shadow, long seed) {
        return run(prompts, groupIds, schedule, shadow, seed, null);
    }

    /**
     * As above, with another model as the rollout actor when {@code actor} is not null (a compressed
     * copy of the policy): it samples under the schedule, so the behaviour log-probs are its own,
     * and the policy scores the sample densely (p for α), as `mismatch --actor` does offline. The LoRA is not used then. Its shadow replay replays with the actor, so the shadow
     * tails are those of the actor one rung lower.
     */
    public Result run(List<Prompt> prompts, long[] groupIds, Schedule schedule, Schedule shadow, long seed, Qwen3Model actor) {
        return run(prompts, groupIds, schedule, shadow, seed, actor, true, false);
    }

    /**
     * As above; with measureSpeedup and a lease that is not plain dense (a sparse schedule, or a
     * compressed actor under any schedule), the generation is paired with a dense decode of the same
     * tokens by the policy's own weights ({@link SpeedupSample}): the trajectories, tails and
     * everything else are those of the unmeasured lease, only slower. A plain dense lease is not
     * measured (there is nothing to compare), nor an actor whose shapes differ from the policy's.
     */
    public Result run(List<Prompt> prompts, long[] groupIds, Schedule schedule, Schedule shadow, long seed, Qwen3Model actor,
                      boolean measureSpeedup) {
        return run(prompts, groupIds, schedule, shadow, seed, actor, !plainDense(schedule, shadow, actor),
                measureSpeedup && (actor != null ? actor.config().equals(model.config())
                        : !schedule.isDense() || o.kvCache() != DataType.FLOAT32));
    }

    /**
     * A lease sampled by the dense policy itself (dense schedule, the policy's own weights, no LoRA
     * merged, a float32 cache) with no shadow to replay: its sampler is what the dense scoring would
     * compute, so α is 1 by definition; scoring it would only cost a teacher-forced pass.
     */
    private boolean plainDense(Schedule schedule, Schedule shadow, Qwen3Model actor) {
        return schedule.isDense() && shadow == null && actor == null && actorLora == null && o.kvCache() == DataType.FLOAT32;
    }

    /**
     * A rollout under the schedule as {@link #run} samples it, not scored densely: no sampler
     * distributions are kept and no α is computed, so the tails stay empty. The synchronous loop,
     * which trains on the samples (its learner computes π_old) and has no controller to feed.
     */
    public Result runUnscored(List<Prompt> prompts, long[] groupIds, Schedule schedule, long seed) {
        return run(prompts, groupIds, schedule, null, seed, null, false, false);
    }

    /**
     * The decode time (prefill and decode, seconds) of the batch that {@link #run} would sample under
     * the schedule with this seed, measured alone: nothing is scored, verified or kept.
     */
    public double decodeSeconds(List<Prompt> prompts, Schedule schedule, long seed) {
        List<int[]> ids = new ArrayList<>();
        int maxNew = batchIds(prompts, ids, new ArrayList<>());
        long t0 = System.nanoTime();
        try (io.tailguard.model.lora.LoraAdapter.Switch merged = actorLora == null ? null : actorLora.mergedScope()) {
            new Generator(model, kernel(schedule)).cacheType(o.kvCache()).generate(new GenerationRequest(ids, maxNew,
                    new SamplingParams(o.temperature(), 1.0, 0, seed), stops, 0));
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    /** Each prompt's ids G times into ids (and the prompt into source); returns the batch's completion budget. */
    private int batchIds(List<Prompt> prompts, List<int[]> ids, List<Prompt> source) {
        int maxNew = 1;
        for (Prompt p : prompts) {
            int[] pi = TaskFormat.promptIds(tok, task, p);
            maxNew = Math.max(maxNew, TaskFormat.maxNewTokens(task, p, tok, o.maxNewFallback()));
            for (int g = 0; g < o.groupSize(); g++) {
                ids.add(pi);
                source.add(p);
            }
        }
        return maxNew;
    }

    private Result run(List<Prompt> prompts, long[] groupIds, Schedule schedule, Schedule shadow, long seed, Qwen3Model actor,
                       boolean alpha, boolean paired) {
        if (prompts.size() != groupIds.length || prompts.isEmpty()) {
            throw new IllegalArgumentException(prompts.size() + " prompts but " + groupIds.length + " group ids");
        }
        if (actor != null && actor.config().vocabSize() != model.config().vocabSize()) {
            throw new IllegalArgumentException("the actor's vocabulary (" + actor.config().vocabSize()
                    + ") differs from the policy's (" + model.config().vocabSize() + ")");
        }
        int vocab = model.config().vocabSize();
        boolean exact = vocab <= EXACT_ALPHA_MAX_VOCAB;
        int capture = !alpha ? GenerationRequest.NO_CAPTURE : exact ? 0 : Acceptance.DEFAULT_TOP_K;
        List<int[]> ids = new ArrayList<>();
        List<Prompt> source = new ArrayList<>();
        int maxNew = batchIds(prompts, ids, source);
        long t0 = System.nanoTime();
        GenerationResult res;
        SpeedupSample speedup = null;
        // the scoring starts from the generation's prompt rows when the sampler's weights are the
        // policy's (no compressed actor, no LoRA merged): the same prefill, not computed twice (on a
        // float16 cache too: prompts are prefilled in float32 and only stored rounded, Generator)
        boolean reuse = alpha && actor == null && actorLora == null;
        io.tailguard.model.PromptPrefill prompted = null;
        // with the sparse actor's LoRA merged, the dense reference decodes with the same merged weights:
        // the two modes differ only in the pages they read
        try (io.tailguard.model.lora.LoraAdapter.Switch merged = actorLora == null || actor != null ? null : actorLora.mergedScope()) {
            Generator gen = new Generator(actor != null ? actor : model, kernel(schedule)).cacheType(o.kvCache());
            if (reuse) {
                gen.keepPrompts();
            }
            GenerationRequest req = new GenerationRequest(ids, maxNew, new SamplingParams(o.temperature(), 1.0, 0, seed), stops,
                    0, capture);
            if (paired) {
                // the reference is always the policy's own weights, dense: a compressed actor is
                // measured against what it stands in for
                Generator.Paired p = gen.generatePaired(req, model, BlockTopKAttention.dense(), false);
                res = p.result();
                speedup = sample(p, ids, schedule, actor);
            } else {
                res = gen.generate(req);
            }
            prompted = gen.takePrompts();
        }
        long t1 = System.nanoTime();

        // Dense teacher-forced scoring of the α sample with the policy's weights: p.
        List<Generated> gens = res.sequences();
        List<Integer> scored = alpha ? scoredSample(gens, o.scoreFraction(), seed) : List.of();
        List<Scorer.Scores> dense;
        try (io.tailguard.model.PromptPrefill p = prompted) {
            dense = scored.isEmpty() ? List.of() : Scorer.score(model, scored.stream().map(i -> gens.get(i).promptIds()).toList(),
                    scored.stream().map(i -> gens.get(i).outputIds()).toList(),
                    new Scorer.Options(exact ? 0 : Acceptance.DEFAULT_TOP_K, exact), p);
        }
        long t2 = System.nanoTime();

        TailStats tails = new TailStats(o.binWidth());
        List<Trajectory> out = new ArrayList<>(gens.size());
        for (int k = 0; k < scored.size(); k++) {
            Generated g = gens.get(scored.get(k));
            alphaInto(tails, g.promptIds().length, dense.get(k), g.distributions(), exact);
        }
        for (int i = 0; i < gens.size(); i++) {
            Generated g = gens.get(i);
            Verdict v = task.verify(source.get(i), TaskFormat.completionText(tok, task, g.outputIds()));
            out.add(new Trajectory(groupIds[i / o.groupSize()], i % o.groupSize(), source.get(i).id(), g.promptIds(),
                    g.outputIds(), g.logprobs(), v.reward(), v.reason()));
        }

        TailStats shadowTails = null;
        long t3 = t2;
        if (shadow != null && o.shadowFraction() > 0 && alpha) {
            shadowTails = new TailStats(o.binWidth());
            SplittableRandom pick = new SplittableRandom(seed ^ 0x5DEECE66DL);
            // shadowFraction of all trajectories, drawn from the scored ones (the replay's α needs p)
            double share = Math.min(1.0, o.shadowFraction() / o.scoreFraction());
            List<Integer> chosen = new ArrayList<>();
            for (int k = 0; k < scored.size(); k++) {
                Generated g = gens.get(scored.get(k));
                // a trajectory that never decodes where the shadow attends otherwise would replay its
                // own generation: no evidence about the rung below, at the cost of a second decode
                if (pick.nextDouble() < share) {
                    if (reachesShadow(schedule, shadow, g.promptIds().length, g.outputIds().length)) {
                        chosen.add(k);
                    } else {
                        // still one of the shadow's trajectories: it puts no token in any bin the shadow
                        // lowers, so it counts there as zero disagreements (the sequence α's mean is
                        // over every picked trajectory, not only the long ones)
                        shadowTails.addSequence();
                    }
                }
            }
            if (!chosen.isEmpty()) {
                // the shadow is the sparse actor one rung lower, so it replays with what samples (another
                // actor's weights, or the policy with its LoRA merged): the α it measures is that of
                // what would roll out there
                List<TokenDistributions> q;
                try (io.tailguard.model.lora.LoraAdapter.Switch merged = actorLora == null || actor != null ? null : actorLora.mergedScope()) {
                    q = new Generator(actor != null ? actor : model, kernel(shadow)).cacheType(o.kvCache()).replay(
                            chosen.stream().map(k -> gens.get(scored.get(k)).promptIds()).toList(),
                            chosen.stream().map(k -> gens.get(scored.get(k)).outputIds()).toList(), capture);
                }
                for (int j = 0; j < chosen.size(); j++) {
                    int k = chosen.get(j);
                    alphaInto(shadowTails, gens.get(scored.get(k)).promptIds().length, dense.get(k), q.get(j), exact);
                }
            }
            t3 = System.nanoTime();
        }
        long tokens = 0;
        for (Generated g : gens) {
            tokens += g.outputIds().length;
        }
        return new Result(out, tails, shadowTails, tokens, (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9,
                res.prefillSeconds(), res.decodeSeconds(), res.decodeSteps(), speedup);
    }

    /**
     * The trajectories scored densely for α: ⌈fraction · n⌉ of the n with output (at least one),
     * drawn uniformly without replacement by the lease's seed, in batch order. Uniform over
     * trajectories, so every position bin is sampled in proportion to its tokens.
     */
    static List<Integer> scoredSample(List<Generated> gens, double fraction, long seed) {
        List<Integer> candidates = new ArrayList<>();
        for (int i = 0; i < gens.size(); i++) {
            if (gens.get(i).outputIds().length > 0) {
                candidates.add(i);
            }
        }
        int want = (int) Math.min(candidates.size(), Math.max(1, Math.ceil(fraction * candidates.size() - 1e-9)));
        if (want >= candidates.size()) {
            return candidates;
        }
        SplittableRandom r = new SplittableRandom(seed ^ 0x2545F4914F6CDD1DL);
        for (int i = 0; i < want; i++) {
            java.util.Collections.swap(candidates, i, i + r.nextInt(candidates.size() - i));
        }
        List<Integer> chosen = new ArrayList<>(candidates.subList(0, want));
        java.util.Collections.sort(chosen);
        return chosen;
    }

    /**
     * Whether a trajectory with this prompt and output length decodes at some context length where
     * the shadow schedule attends otherwise than the live one: their budgets (or dense layers)
     * differ there and at least one of them is below the context. Positions 0 … promptLength − 1 are
     * prefilled densely under either; the decode steps run at context lengths promptLength + 1 …
     * promptLength + outputLength − 1 (both ends widened by one here, to err towards replaying).
     */
    static boolean reachesShadow(Schedule live, Schedule shadow, int promptLength, int outputLength) {
        boolean sameLayers = live.denseLayers().equals(shadow.denseLayers());
        for (int len = promptLength; len <= promptLength + outputLength; len++) {
            int a = live.budgetAt(len);
            int b = shadow.budgetAt(len);
            if ((a != b || !sameLayers) && Math.min(a, b) < len) {
                return true;
            }
        }
        return false;
    }

    /**
     * A paired generation as a speedup sample, with the cost model's seconds for the same decode
     * steps: step s (1 ≤ s ≤ steps) of sequence b at context promptLength_b + s, every sequence of
     * the batch at every step (a finished one is still decoded).
     */
    private SpeedupSample sample(Generator.Paired p, List<int[]> ids, Schedule schedule, Qwen3Model actor) {
        if (machine == null) {
            machine = CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath());
        }
        CostModel cost = new CostModel(model.config(), machine, ids.size());
        // a compressed actor reads its own linears' bytes (packed codes, or kept values) per step
        CostModel liveCost = (actor == null ? cost : new CostModel(model.config(), machine, ids.size(),
                4.0 * model.config().parameterCount() - model.linearBytes() + actor.linearBytes()))
                .withKvBytes(o.kvCache() == DataType.FLOAT16 ? 2 : 4);   // and its cache's (the reference's is float32)
        int steps = p.result().decodeSteps();
        double dense = 0;
        double live = 0;
        for (int[] prompt : ids) {
            for (int step = 1; step <= steps; step++) {
                dense += cost.denseDecodeTokenCost(prompt.length + step);
                live += liveCost.decodeTokenCost(prompt.length + step, schedule);
            }
        }
        return new SpeedupSample(p.liveStepSeconds(), p.referenceStepSeconds(), p.result().prefillSeconds(),
                p.referencePrefillSeconds(), steps, p.liveKvPositions(), p.referenceKvPositions(), cost.seconds(live),
                cost.seconds(dense));
    }

    /** α of every token of one trajectory into the tails, at the token's position (its context length); the trajectory counted once. */
    private static void alphaInto(TailStats tails, int promptLength, Scorer.Scores p, TokenDistributions q, boolean exact) {
        for (int t = 0; t < p.logprobs().length; t++) {
            double a;
            if (exact) {
                float[] qp = new float[q.logprobs()[t].length];
                for (int v = 0; v < qp.length; v++) {
                    qp[v] = (float) Math.exp(q.logprobs()[t][v]);
                }
                a = Acceptance.exact(p.probs()[t], qp);
            } else {
                a = Acceptance.topK(p.topIds()[t], p.topLogprobs()[t], q.ids()[t], q.logprobs()[t]);
            }
            tails.add(promptLength + t, a);
        }
        tails.addSequence();
    }
}
