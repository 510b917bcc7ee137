package io.tailguard.actors.cli;

import io.tailguard.model.Devices;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.model.AttentionKernel;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Pass rates of a checkpoint on a task: N prompts, K completions each, verified by the task.",
                "Built-in tasks use prompts (seed, 0..N-1) at --context tokens; keep --seed different from the seed "
                        + "training drew its prompts with, so the prompts are held out. Dataset tasks use the first N records.",
                "pass@1 is the mean over prompts of correct/K; pass@k (k = K) is the unbiased estimator "
                        + "1 - C(K-c,k)/C(K,k) of Chen et al. (2021), averaged over prompts.",
                "Prints {\"pass_at_1\":..,\"pass_at_k\":..,\"k\":..,\"n\":..,\"mean_reward\":..,\"mean_completion_tokens\":..,"
                        + "\"failures\":{reason:count}}."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true, description = "Checkpoint directory (with its tokenizer.json); \"default\" is the embedded default, trained once and cached.")
    Path checkpoint;

    @Mixin
    TaskOptions task;

    @Option(names = "--n", required = true, description = "Prompts to evaluate (a dataset: at most its records).")
    int n;

    @Option(names = "--context", defaultValue = "512", description = "Prompt length in tokens of a built-in task (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--samples", defaultValue = "1", description = "Completions per prompt, the k of pass@k (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(names = "--temperature", description = "Sampling temperature (default: 0, greedy, with one sample; 1 with several).")
    Double temperature;

    @Option(names = "--seed", defaultValue = "" + PromptStreams.EVAL_SEED, description = "Prompt seed of built-in tasks and sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", defaultValue = "8", description = "Sequences generated together (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--max-new", defaultValue = "512",
            description = "New tokens per completion for tasks without worked solutions (math, code); built-in tasks "
                    + "get their solution's length + 25%% + 8 (default: ${DEFAULT-VALUE}).")
    int maxNew;

    @ArgGroup(exclusive = true, multiplicity = "0..1")
    SparsityOptions sparsity;

    @Mixin
    LoraOption lora;

    @Override
    public Integer call() {
        if (n < 1) {
            throw new BadInput("--n must be >= 1, got " + n);
        }
        if (samples < 1) {
            throw new BadInput("--samples must be >= 1, got " + samples);
        }
        if (batch < 1) {
            throw new BadInput("--batch must be >= 1, got " + batch);
        }
        if (maxNew < 1) {
            throw new BadInput("--max-new must be >= 1, got " + maxNew);
        }
        double t = temperature != null ? temperature : samples == 1 ? 0.0 : 1.0;
        if (!(t >= 0) || !Double.isFinite(t)) {
            throw new BadInput("--temperature must be a finite number >= 0, got " + t);
        }
        if (t == 0 && samples > 1) {
            throw new BadInput("--temperature 0 (greedy) with --samples " + samples + " gives identical samples; use a temperature > 0");
        }
        task.validate();
        Schedule schedule = SparsityOptions.resolveOrDense(sparsity);
        AttentionKernel kernel = BlockTopKAttention.forSchedule(schedule);
        if (lora.lora != null && schedule.isDense()) {
            throw new BadInput("--lora adapts the sparse actor only: give --schedule or --budget with it");
        }
        Task tk = task.resolve(context);
        checkpoint = Checkpoints.resolve(checkpoint);
        tk = io.tailguard.rollout.tasks.ChatTask.of(tk, task.chat(checkpoint));
        Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
        Evaluator.EvalOptions o = new Evaluator.EvalOptions(n, samples, t, seed, maxNew, batch);
        Evaluator.EvalResult r;
        if (lora.lora != null && GenerationModels.isCompressed(checkpoint)) {
            throw new BadInput("--lora: " + checkpoint + " is a compressed checkpoint; a LoRA merges into float32 weights only");
        }
        try (Qwen3Model model = GenerationModels.open(checkpoint, Devices.parse(common.device()))) {
            LoraAdapter adapter = lora.attach(model);
            if (adapter != null) {
                adapter.merge(); // the sparse actor decodes with it, at the cost of the plain model
            }
            Progress bar = new Progress("eval " + tk.name());
            try {
                r = Evaluator.evaluate(model, tok, tk, o, kernel, bar::update);
            } finally {
                bar.finish();
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("pass_at_1", Progress.round(r.passAt1(), 6));
        out.put("pass_at_k", Progress.round(r.passAtK(), 6));
        out.put("k", r.k());
        out.put("n", r.n());
        out.put("mean_reward", Progress.round(r.meanReward(), 6));
        out.put("mean_completion_tokens", Progress.round(r.meanCompletionTokens(), 3));
        out.put("failures", r.failureReasons());
        if (lora.lora != null) {
            out.put("lora", lora.describe());
        }
        if (common.json) {
            Json.print(out);
        } else {
            System.out.printf("%s: pass@1 %.4f, pass@%d %.4f over %d prompts, mean reward %.4f, %.1f tokens per completion%n",
                    tk.name(), r.passAt1(), r.k(), r.passAtK(), r.n(), r.meanReward(), r.meanCompletionTokens());
            r.failureReasons().forEach((k, v) -> System.out.printf("  %6d  %s%n", v, k));
        }
        return 0;
    }
}
