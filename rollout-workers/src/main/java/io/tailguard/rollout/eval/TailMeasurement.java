package io.tailguard.rollout.eval;

import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.sparse.Acceptance;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.MismatchProbe;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The α tail of a schedule on task prompts (docs/algorithms.md, "The α mismatch and its tail"), offline: sparse trajectories are
 * sampled at temperature 1 under the schedule (Block-Top-k, dense layers {0, 1}), capturing the
 * sampler's distributions (all of them when the vocabulary has at most {@link #FULL_CAPTURE_VOCAB}
 * tokens, else the top {@link Acceptance#DEFAULT_TOP_K}), and a share of them is probed densely with
 * the same weights ({@link MismatchProbe}) into per-position-bin tail statistics. Prompts and
 * completions follow {@link TaskFormat}; generation stops at eos or after
 * {@link TaskFormat#maxNewTokens} (the batch's largest).
 */
public final class TailMeasurement {
    /** Up to this vocabulary size α is computed exactly from full distributions. */
    public static final int FULL_CAPTURE_VOCAB = 4096;

    /**
     * @param tails           α by position bin
     * @param trajectories    sparse trajectories generated
     * @param probed          of which probed densely
     * @param generatedTokens tokens generated over all trajectories
     */
    public record Result(TailStats tails, int trajectories, int probed, long generatedTokens) {}

    private TailMeasurement() {
    }

    /**
     * @param prompts        in order; consecutive prompts are batched together, so pass prompts of
     *                       similar length next to each other
     * @param probeFraction  share of trajectories probed, in [0, 1]
     * @param seed           sampling and probe-selection seed
     * @param maxNewFallback new tokens for a task without worked solutions
     */
    public static Result measure(Qwen3Model model, Tokenizer tok, Task task, List<Prompt> prompts, Schedule schedule,
                                 int binWidth, double probeFraction, long seed, int batchSize, int maxNewFallback,
                                 Evaluator.Progress progress) {
        return measure(model, tok, task, prompts, schedule, binWidth, probeFraction, seed, batchSize, maxNewFallback,
                progress, null);
    }

    /**
     * As above, with a LoRA that only the sparse actor uses (DistillSparse, docs/algorithms.md, "DistillSparse"): it is
     * merged into the weights while sampling and off while the dense probe scores, whatever its
     * state before (restored exactly after each). Null measures the model as it is.
     */
    public static Result measure(Qwen3Model model, Tokenizer tok, Task task, List<Prompt> prompts, Schedule schedule,
                                 int binWidth, double probeFraction, long seed, int batchSize, int maxNewFallback,
                                 Evaluator.Progress progress, LoraAdapter actorLora) {
        return measure(model, null, tok, task, prompts, schedule, binWidth, probeFraction, seed, batchSize, maxNewFallback,
                progress, actorLora);
    }

    /**
     * As above, with another model as the rollout actor (say, a quantized or pruned copy of the
     * policy, loaded dense): it samples under the schedule, and {@code model}, the dense policy,
     * probes. Null samples with {@code model} itself. The two must share the vocabulary.
     */
    public static Result measure(Qwen3Model model, Qwen3Model actor, Tokenizer tok, Task task, List<Prompt> prompts,
                                 Schedule schedule, int binWidth, double probeFraction, long seed, int batchSize,
                                 int maxNewFallback, Evaluator.Progress progress, LoraAdapter actorLora) {
        if (actor != null && actor.config().vocabSize() != model.config().vocabSize()) {
            throw new IllegalArgumentException("the actor's vocabulary (" + actor.config().vocabSize()
                    + ") differs from the policy's (" + model.config().vocabSize() + ")");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts to measure on");
        }
        Set<Integer> stops = TaskFormat.stopTokens(tok, task);
        int capture = model.config().vocabSize() <= FULL_CAPTURE_VOCAB ? 0 : Acceptance.DEFAULT_TOP_K;
        Generator generator = new Generator(actor != null ? actor : model, BlockTopKAttention.of(schedule));
        MismatchProbe probe = new MismatchProbe(model, probeFraction, seed);
        TailStats tails = new TailStats(binWidth);
        int probed = 0;
        long tokens = 0;
        for (int from = 0, batch = 0; from < prompts.size(); from += batchSize, batch++) {
            int to = Math.min(prompts.size(), from + batchSize);
            List<int[]> ids = new ArrayList<>(to - from);
            int maxNew = 1;
            for (int i = from; i < to; i++) {
                Prompt p = prompts.get(i);
                try {
                    ids.add(TaskFormat.promptIds(tok, task, p));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("prompt " + p.id() + ": " + e.getMessage());
                }
                maxNew = Math.max(maxNew, TaskFormat.maxNewTokens(task, p, tok, maxNewFallback));
            }
            SamplingParams sampling = new SamplingParams(1.0, 1, 0, Evaluator.batchSeed(seed, batch));
            List<Generated> out;
            try (LoraAdapter.Switch merged = actorLora == null ? null : actorLora.mergedScope()) {
                out = generator.generate(new GenerationRequest(ids, maxNew, sampling, stops, 0, capture)).sequences();
            }
            for (Generated g : out) {
                tokens += g.outputIds().length;
            }
            try (LoraAdapter.Switch off = actorLora == null ? null : actorLora.switchTo(false)) {
                probed += probe.probe(out, tails);
            }
            progress.update(to, prompts.size());
        }
        return new Result(tails, prompts.size(), probed, tokens);
    }
}
