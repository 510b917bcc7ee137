package io.tailguard.cli;

import io.tailguard.model.Devices;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.tasks.Task;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "pretrain", mixinStandardHelpOptions = true,
        description = {"Train a preset from scratch by teacher forcing on a built-in task's worked solutions and "
                + "practice documents (AdamW, warm-up and cosine decay, contexts growing from 64 to --context), write "
                + "the checkpoint, and measure greedy pass@1 on held-out prompts (prompt seed --seed + 1).",
                "The embedded default (--checkpoint default in other commands) is this command with its defaults.",
                "Prints {\"checkpoint\":DIR,\"pass_at_1\":..,\"steps\":..,\"seconds\":..,\"task\":..,\"context\":..}."})
final class PretrainCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--task", defaultValue = PretrainRecipe.QUICKSTART_TASK,
            description = "Built-in task: kv-recall, pointer-chase or marked-sum (default: ${DEFAULT-VALUE}).")
    String task;

    @Option(names = "--preset", defaultValue = "tiny", description = "Model preset: tiny or small (default: ${DEFAULT-VALUE}).")
    String preset;

    @Option(names = "--context", defaultValue = "" + PretrainRecipe.QUICKSTART_CONTEXT,
            description = "Final prompt length in tokens (at least 64; default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--out", required = true, description = "Checkpoint directory to write (replaced atomically).")
    Path out;

    @Option(names = "--steps", defaultValue = "" + PretrainRecipe.DEFAULT_STEPS, description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--batch", defaultValue = "" + PretrainRecipe.DEFAULT_BATCH, description = "Examples per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--lr", defaultValue = "" + PretrainRecipe.DEFAULT_LR, description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--seed", defaultValue = "0",
            description = "Seed of the initialisation and of every training prompt; evaluation uses seed + 1 (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--eval-n", defaultValue = "128", description = "Held-out prompts for pass@1; 0 skips it (default: ${DEFAULT-VALUE}).")
    int evalN;

    @Override
    public Integer call() {
        if (evalN < 0) {
            throw new BadInput("--eval-n must be >= 0, got " + evalN);
        }
        if (context < 64) {
            throw new BadInput("--context must be at least 64 tokens, got " + context);
        }
        PretrainRecipe recipe = PretrainRecipe.of(task, preset, context, steps, batch, lr, seed);
        Task tk = Pretraining.validate(recipe);
        io.tailguard.model.ModelConfig.preset(preset, 1, 0);   // an unknown preset fails before training
        long t0 = System.nanoTime();
        Double pass;
        try (Qwen3Model model = train(recipe, Devices.parse(common.device))) {
            Pretraining.write(out, recipe, model);
            pass = evalN == 0 ? null : evaluate(model, tk, evalN, seed + 1);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.err.printf("wrote %s: %s at context %d, %d steps, pass@1 %s, %.1f s%n", out, task, context, steps,
                pass == null ? "not measured" : String.format("%.3f", pass), seconds);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("checkpoint", out.toString());
        r.put("pass_at_1", pass == null ? null : Progress.round(pass, 6));
        r.put("steps", steps);
        r.put("seconds", Progress.round(seconds, 1));
        r.put("task", task);
        r.put("context", context);
        if (common.json) {
            Json.print(r);
        }
        return 0;
    }

    /** Trains with a progress bar (and the smoothed loss) on stderr. */
    static Qwen3Model train(PretrainRecipe recipe, ai.djl.Device device) {
        Progress bar = new Progress("pretrain " + recipe.task() + " @" + recipe.context());
        double[] ema = {Double.NaN};
        try {
            return Pretraining.train(recipe, device, (s, total, loss) -> {
                ema[0] = Double.isNaN(ema[0]) ? loss : 0.95 * ema[0] + 0.05 * loss;
                bar.update(s, total, String.format("loss %.3f", ema[0]));
            });
        } finally {
            bar.finish();
        }
    }

    /** Greedy pass@1 on prompts (seed, 0..n-1) at the task's context, dense. */
    static double evaluate(Qwen3Model model, Task task, int n, long seed) {
        Progress bar = new Progress("eval " + task.name());
        try {
            return Evaluator.evaluate(model, CharTokenizer.standard(), task, new Evaluator.EvalOptions(n, 1, 0.0, seed, 16, 16),
                    AttentionKernel.DENSE, bar::update).passAt1();
        } finally {
            bar.finish();
        }
    }
}
