package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.compression.CompressedCheckpoints;
import io.tailguard.compression.ModelKl;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptStreams;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongFunction;

/**
 * What a compression method calibrates on and is measured with: task prompts with their worked
 * solutions, the KL to the original on held-out prompts, and greedy pass@1.
 *
 * <p>Prompt streams, all distinct ({@link PromptStreams}): calibration (seed, i), held-out KL
 * (seed + 1000003, i), V:N:M recovery training (seed + 2000003, i), pass@1
 * ({@link PromptStreams#EVAL_SEED}, i).
 *
 * @param calibration calibration sequences (0: none, for methods that need none)
 * @param heldOut     held-out sequences of the KL, at least 1
 * @param evalN       prompts of pass@1; 0 skips it
 */
public record CompressionData(Task task, int calibration, int heldOut, int evalN, long seed) {

    /** What a compressed checkpoint scores: the KL per token; pass@1 of it and of the original (null when evalN is 0). */
    public record Quality(double kl, Double passAt1, Double passAt1Original) {}

    public CompressionData {
        if (heldOut < 1 || evalN < 0 || calibration < 0) {
            throw new IllegalArgumentException("heldOut must be >= 1, calibration and evalN >= 0; got " + heldOut + ", "
                    + calibration + ", " + evalN);
        }
    }

    public List<int[]> calibration(Tokenizer tok) {
        return sequences(task, tok, seed, calibration);
    }

    public List<int[]> heldOut(Tokenizer tok) {
        return sequences(task, tok, PromptStreams.heldOut(seed), heldOut);
    }

    /** Prompt plus worked solution of the task's prompts (seed, 0 .. n − 1), as the model sees them. */
    static List<int[]> sequences(Task t, Tokenizer tok, long seed, int n) {
        return solved(tok, t, i -> t.prompt(seed, i), 0, n);
    }

    /**
     * Prompt plus worked solution of prompts {@code from .. from + n − 1} of a prompt stream (the
     * actor runtime's draws each prompt's context too); {@code t} writes the solutions.
     */
    public static List<int[]> solved(Tokenizer tok, Task t, LongFunction<Prompt> prompts, long from, int n) {
        List<int[]> out = new ArrayList<>(n);
        for (long i = from; i < from + n; i++) {
            out.add(TaskFormat.solvedIds(tok, t, prompts.apply(i)));
        }
        return out;
    }

    public double kl(Qwen3Model original, Qwen3Model compressed, List<int[]> held) {
        return ModelKl.perToken(original, compressed, held);
    }

    /** Greedy dense pass@1 on evalN prompts (seed {@link PromptStreams#EVAL_SEED}). */
    public double passAt1(Qwen3Model model, Tokenizer tok) {
        return Evaluator.evaluate(model, tok, task, Evaluator.EvalOptions.heldOut(evalN, PromptStreams.EVAL_SEED),
                AttentionKernel.DENSE).passAt1();
    }

    /** The compressed checkpoint in {@code dir} read back and dequantized, measured against the original. */
    public Quality quality(Qwen3Model original, Path dir, Device device, List<int[]> held, Tokenizer tok) {
        try (Qwen3Model compressed = CompressedCheckpoints.loadDequantized(dir, device)) {
            double kl = kl(original, compressed, held);
            if (evalN == 0) {
                return new Quality(kl, null, null);
            }
            return new Quality(kl, passAt1(compressed, tok), passAt1(original, tok));
        }
    }

    /** The checkpoint's tokenizer.json text, to carry into compressed and exported checkpoints; null if none. */
    public static String tokenizerJson(Path checkpoint) {
        Path f = checkpoint.resolve(CheckpointDir.TOKENIZER);
        try {
            return Files.isRegularFile(f) ? Files.readString(f) : null;
        } catch (IOException e) {
            throw new UncheckedIOException(f + ": cannot read: " + e.getMessage(), e);
        }
    }
}
