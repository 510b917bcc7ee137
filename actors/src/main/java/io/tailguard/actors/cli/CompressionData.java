package io.tailguard.actors.cli;

import io.tailguard.compression.ModelKl;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What every {@code compress} method calibrates on and is measured with: task prompts with their
 * worked solutions, the KL to the original on held-out prompts, and greedy pass@1.
 *
 * <p>Prompt streams, all distinct: calibration (seed, i), held-out KL (seed + 1000003, i), recovery
 * training (seed + 2000003, i), pass@1 ({@link #EVAL_SEED}, i).
 */
final class CompressionData {
    static final long EVAL_SEED = 1234;
    static final long HELD_OUT_OFFSET = 1_000_003L;
    static final long TRAIN_OFFSET = 2_000_003L;

    @Option(names = "--task", defaultValue = "kv-recall", description = "Built-in task whose prompts calibrate, measure KL and pass@1 (default: ${DEFAULT-VALUE}).")
    String task;

    @Option(names = "--context", defaultValue = "128", description = "Prompt length of the task (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--calibration", defaultValue = "64", description = "Calibration prompts (default: ${DEFAULT-VALUE}).")
    int calibration;

    @Option(names = "--held-out", defaultValue = "16", description = "Held-out prompts for the KL (default: ${DEFAULT-VALUE}).")
    int heldOut;

    @Option(names = "--eval-n", defaultValue = "32", description = "Prompts for pass@1 of the compressed model; 0 skips (default: ${DEFAULT-VALUE}).")
    int evalN;

    @Option(names = "--seed", defaultValue = "7", description = "Seed of the method's randomness and of the calibration prompts (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Checks the options before any model is loaded; the task at --context. */
    Task validate() {
        if (!Tasks.builtinNames().contains(task)) {
            throw new BadInput("--task: compress takes a built-in task (" + String.join(", ", Tasks.builtinNames()) + ")");
        }
        if (heldOut < 1 || evalN < 0 || calibration < 0) {
            throw new BadInput("--held-out must be >= 1, --calibration and --eval-n >= 0");
        }
        try {
            Task t = Tasks.builtin(task, context);
            t.prompt(seed, 0);
            return t;
        } catch (IllegalArgumentException e) {
            throw new BadInput("--context: " + e.getMessage());
        }
    }

    List<int[]> calibration(Task t, Tokenizer tok) {
        return sequences(t, tok, seed, calibration);
    }

    List<int[]> heldOut(Task t, Tokenizer tok) {
        return sequences(t, tok, seed + HELD_OUT_OFFSET, heldOut);
    }

    /** Prompt plus worked solution of n task prompts, as the model sees them. */
    static List<int[]> sequences(Task t, Tokenizer tok, long seed, int n) {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(TaskFormat.solvedIds(tok, t, t.prompt(seed, i)));
        }
        return out;
    }

    double kl(Qwen3Model original, Qwen3Model compressed, List<int[]> held) {
        return ModelKl.perToken(original, compressed, held);
    }

    /** Greedy dense pass@1 on --eval-n prompts (seed {@link #EVAL_SEED}). */
    double passAt1(Qwen3Model model, Tokenizer tok, Task t) {
        return Evaluator.evaluate(model, tok, t, new Evaluator.EvalOptions(evalN, 1, 0.0, EVAL_SEED, 64, 16),
                AttentionKernel.DENSE).passAt1();
    }

    /** The checkpoint's tokenizer.json text, to carry into compressed and exported checkpoints; null if none. */
    /**
     * The compressed checkpoint in {@code dir} read back and dequantized for the KL and pass@1 (the
     * result's "kl", and with an evaluation "pass_at_1" and "pass_at_1_original").
     */
    void putQuality(Map<String, Object> r, Qwen3Model original, Path dir, String device, List<int[]> held, Tokenizer tok, Task t) {
        try (Qwen3Model compressed = loadDequantized(dir, device)) {
            r.put("kl", kl(original, compressed, held));
            if (evalN > 0) {
                r.put("pass_at_1", passAt1(compressed, tok, t));
                r.put("pass_at_1_original", passAt1(original, tok, t));
            }
        }
    }

    /** A packed quantized (quant.json) or V:N:M (vnm.json) checkpoint, dequantized; else a plain one. */
    static Qwen3Model loadDequantized(Path dir, String device) {
        return io.tailguard.compression.CompressedCheckpoints.loadDequantized(dir, io.tailguard.model.Devices.parse(device));
    }

    static String tokenizerJson(Path checkpoint) {
        Path f = checkpoint.resolve(CheckpointDir.TOKENIZER);
        try {
            return Files.isRegularFile(f) ? Files.readString(f) : null;
        } catch (IOException e) {
            throw new UncheckedIOException(f + ": cannot read: " + e.getMessage(), e);
        }
    }
}
