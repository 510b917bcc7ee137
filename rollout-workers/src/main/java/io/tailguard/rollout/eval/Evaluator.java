package io.tailguard.rollout.eval;

import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Verdict;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Pass rates of a policy on a task: n prompts, {@code samples} completions each, verified by the
 * task.
 *
 * <p><b>Which prompts.</b> A built-in (generated) task's prompts are {@code (seed, 0 .. n-1)}. For
 * held-out evaluation, pass a seed different from the one training and pretraining draw their
 * prompts with: a generated task has no fixed test split, the seed is the split. A dataset task's
 * prompts are its first n records in file order (all of them when n exceeds the file); the seed only
 * drives sampling there.
 *
 * <p><b>Token layout.</b> Prompts and completions go through {@link TaskFormat}: bos + prompt text
 * (or the chat template's rendering of it), generation stops at eos (or the template's end-of-turn
 * token), and the verifier sees the text before the first stop. A prompt gets
 * {@link TaskFormat#maxNewTokens} new tokens (the worked solution's length plus a margin, or
 * {@code maxNewFallback} for tasks without one); a batch generates up to its longest such budget,
 * and each completion is cut to its own.
 *
 * <p><b>Metrics.</b> With c correct of s samples of a prompt: pass@1 = mean over prompts of c / s;
 * pass@k with k = s is the unbiased estimator of Chen et al. (2021), 1 − C(s − c, k) / C(s, k),
 * averaged over prompts (with k = s it is the share of prompts with at least one correct sample).
 * A completion counts as correct when its verdict's reward is 1. Completion tokens are the tokens
 * before the stop token (itself not counted). Failures are counted by {@link #reasonKey} of their verdict's
 * reason.
 */
public final class Evaluator {

    /**
     * @param n              prompts (dataset tasks: at most the file's records)
     * @param samples        completions per prompt, ≥ 1
     * @param temperature    sampling temperature; 0 is greedy, allowed only with one sample
     * @param seed           prompt seed of generated tasks, and the sampling seed
     * @param maxNewFallback new tokens for a task without worked solutions (math, code)
     * @param batchSize      sequences generated together
     */
    public record EvalOptions(int n, int samples, double temperature, long seed, int maxNewFallback, int batchSize) {
        public EvalOptions {
            if (n < 1) {
                throw new IllegalArgumentException("n (prompts) must be >= 1, got " + n);
            }
            if (samples < 1) {
                throw new IllegalArgumentException("samples must be >= 1, got " + samples);
            }
            if (!(temperature >= 0) || !Double.isFinite(temperature)) {
                throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
            }
            if (temperature == 0 && samples > 1) {
                throw new IllegalArgumentException("temperature 0 (greedy) gives " + samples
                        + " identical samples; use a temperature > 0 with samples > 1");
            }
            if (maxNewFallback < 1) {
                throw new IllegalArgumentException("max new tokens must be >= 1, got " + maxNewFallback);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be >= 1, got " + batchSize);
            }
        }

        /**
         * The held-out pass@1 a run reports (train, train-sync, compress): n prompts of the seed, one
         * greedy sample each, 64 new tokens for tasks without worked solutions, 16 sequences a batch.
         */
        public static EvalOptions heldOut(int n, long seed) {
            return new EvalOptions(n, 1, 0.0, seed, 64, 16);
        }
    }

    /**
     * @param passAt1              mean over prompts of correct / samples
     * @param passAtK              mean over prompts of the unbiased pass@k
     * @param k                    the k of passAtK (= samples)
     * @param n                    prompts evaluated
     * @param meanCompletionTokens mean tokens per completion, before eos
     * @param failureReasons       normalised reason → count, over every incorrect completion
     * @param meanReward           mean verdict reward over every completion (with a graded reward,
     *                             the share of steps right; with exact match, the pass rate)
     */
    public record EvalResult(double passAt1, double passAtK, int k, int n, double meanCompletionTokens,
                             SortedMap<String, Integer> failureReasons, double meanReward) {}

    /** Called after each generated batch with the completions done so far and the total. */
    @FunctionalInterface
    public interface Progress {
        void update(int done, int total);

        Progress NONE = (done, total) -> { };
    }

    private Evaluator() {
    }

    public static EvalResult evaluate(Qwen3Model model, Tokenizer tok, Task task, EvalOptions o, AttentionKernel kernel) {
        return evaluate(model, tok, task, o, kernel, Progress.NONE);
    }

    public static EvalResult evaluate(Qwen3Model model, Tokenizer tok, Task task, EvalOptions o, AttentionKernel kernel,
                                      Progress progress) {
        Set<Integer> stops = TaskFormat.stopTokens(tok, task);
        List<Prompt> prompts = prompts(task, o.n(), o.seed());
        int[][] promptIds = new int[prompts.size()][];
        int[] maxNew = new int[prompts.size()];
        for (int i = 0; i < prompts.size(); i++) {
            Prompt p = prompts.get(i);
            try {
                promptIds[i] = TaskFormat.promptIds(tok, task, p);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("prompt " + p.id() + ": " + e.getMessage());
            }
            maxNew[i] = TaskFormat.maxNewTokens(task, p, tok, o.maxNewFallback());
        }
        // Jobs in order: prompt 0 sample 0 .. s-1, prompt 1 ...; batches are consecutive jobs.
        int total = prompts.size() * o.samples();
        int[] correct = new int[prompts.size()];
        long completionTokens = 0;
        double rewardSum = 0;
        SortedMap<String, Integer> failures = new TreeMap<>();
        Generator generator = new Generator(model, kernel);
        for (int from = 0, batch = 0; from < total; from += o.batchSize(), batch++) {
            int to = Math.min(total, from + o.batchSize());
            List<int[]> ids = new ArrayList<>(to - from);
            int budget = 1;
            for (int j = from; j < to; j++) {
                int p = j / o.samples();
                ids.add(promptIds[p]);
                budget = Math.max(budget, maxNew[p]);
            }
            SamplingParams sampling = new SamplingParams(o.temperature(), 1, 0, batchSeed(o.seed(), batch));
            List<Generated> out = generator.generate(new GenerationRequest(ids, budget, sampling, stops, 0)).sequences();
            for (int j = from; j < to; j++) {
                int p = j / o.samples();
                int[] outIds = out.get(j - from).outputIds();
                if (outIds.length > maxNew[p]) {
                    outIds = java.util.Arrays.copyOf(outIds, maxNew[p]);
                }
                String text = TaskFormat.completionText(tok, task, outIds);
                completionTokens += TaskFormat.tokensBeforeStop(outIds, stops);
                Verdict v = task.verify(prompts.get(p), text);
                rewardSum += v.reward();
                if (v.isCorrect()) {
                    correct[p]++;
                } else {
                    failures.merge(reasonKey(v.reason()), 1, Integer::sum);
                }
            }
            progress.update(to, total);
        }
        double pass1 = 0;
        double passK = 0;
        for (int c : correct) {
            pass1 += (double) c / o.samples();
            passK += passAtK(o.samples(), c, o.samples());
        }
        int n = prompts.size();
        return new EvalResult(pass1 / n, passK / n, o.samples(), n, (double) completionTokens / total, failures,
                rewardSum / total);
    }

    /** The evaluated prompts: (seed, 0 .. n-1) of a generated task, the first n records of a dataset. */
    public static List<Prompt> prompts(Task task, int n, long seed) {
        int count = task.size().isPresent() ? Math.min(n, task.size().getAsInt()) : n;
        List<Prompt> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            out.add(task.prompt(seed, i));
        }
        return out;
    }

    /**
     * The unbiased pass@k estimate from n samples with c correct (Chen et al. 2021):
     * 1 − C(n − c, k) / C(n, k), computed as 1 − Π_{i = n−c+1}^{n} (1 − k / i) for numerical
     * stability.
     */
    static double passAtK(int n, int c, int k) {
        if (k < 1 || k > n || c < 0 || c > n) {
            throw new IllegalArgumentException("pass@k needs 1 <= k <= n and 0 <= c <= n, got n=" + n + " c=" + c + " k=" + k);
        }
        if (n - c < k) {
            return 1.0;
        }
        double fail = 1.0;
        for (int i = n - c + 1; i <= n; i++) {
            fail *= 1.0 - (double) k / i;
        }
        return 1.0 - fail;
    }

    /**
     * A short key that groups failures of one kind: the reason up to its first ':', lower-cased,
     * with runs of digits replaced by "#" ("timeout after 5s" → "timeout after #s"), at most 40
     * characters; "(no reason)" for a blank one.
     */
    static String reasonKey(String reason) {
        String r = reason == null ? "" : reason;
        int colon = r.indexOf(':');
        String k = (colon >= 0 ? r.substring(0, colon) : r).strip().toLowerCase(Locale.ROOT)
                .replaceAll("\\d+", "#").replaceAll("\\s+", " ");
        if (k.isEmpty()) {
            return "(no reason)";
        }
        return k.length() <= 40 ? k : k.substring(0, 40);
    }

    /** Independent sampling streams per batch, from one seed. */
    static long batchSeed(long seed, int batch) {
        long z = seed + 0x9E3779B97F4A7C15L * (batch + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
