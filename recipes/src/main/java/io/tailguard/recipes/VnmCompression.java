package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.compression.DenseExport;
import io.tailguard.compression.VnmCheckpoint;
import io.tailguard.compression.VnmMask;
import io.tailguard.compression.VnmModel;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * V:N:M pruning of a model (docs/algorithms.md, V:N:M sparsity): importance scores on the calibration
 * sequences, the channel permutation folded into the neighbouring layers, the best per-block masks,
 * then, with recovery steps, the three-stage LoRA recovery ({@link VnmRecovery}) from the same
 * permuted dense weights; before it, the one-shot model's KL (and pass@1) are measured. The pruned
 * model is written as a sparse checkpoint (and, if asked, a plain dense export of its zero-filled
 * weights), then measured read back against the original ({@link CompressionData#quality}).
 */
public final class VnmCompression {

    /**
     * @param recovery null: one-shot pruning; else the recovery's settings (its teacher, if any, is
     *                 the original model)
     */
    public record Options(VnmPattern pattern, VnmPruner.Score score, VnmPruner.PermutationOptions permutation,
                          VnmRecovery.Options recovery) {}

    /**
     * A V:N:M compression as a user asks for it, the one form behind both `compress vnm`'s flags and
     * the compression worker's {@code tailguard.compression.vnm} keys: each parameter's name is the
     * flag's without its dashes and the key's last part ({@code recovery-steps}).
     *
     * @param permuteRounds most rounds of the permutation search per fold group; 0: no permutation
     * @param recoverySteps steps of the three-stage LoRA recovery; 0: one-shot pruning
     * @param klLoss        the recovery distils the original model (KL); false: cross-entropy of the solutions
     */
    public record Settings(VnmPattern pattern, VnmPruner.Score score, int permuteRounds, int recoverySteps, boolean klLoss,
                           int recoveryBatch, double recoveryLr, int loraRank, double loraAlpha, int remaskEvery) {

        /** The first parameter out of range, as "NAME must be ..., got V" with NAME = name.apply(parameter); else empty. */
        public Optional<String> problem(UnaryOperator<String> name) {
            if (permuteRounds < 0) {
                return Optional.of(name.apply("permute-rounds") + " must be >= 0, got " + permuteRounds);
            }
            if (recoverySteps < 0) {
                return Optional.of(name.apply("recovery-steps") + " must be >= 0, got " + recoverySteps);
            }
            if (recoveryBatch < 1) {
                return Optional.of(name.apply("recovery-batch") + " must be >= 1, got " + recoveryBatch);
            }
            if (!(recoveryLr > 0)) {
                return Optional.of(name.apply("recovery-lr") + " must be > 0, got " + recoveryLr);
            }
            if (loraRank < 1) {
                return Optional.of(name.apply("lora-rank") + " must be >= 1, got " + loraRank);
            }
            if (!(loraAlpha > 0)) {
                return Optional.of(name.apply("lora-alpha") + " must be > 0, got " + loraAlpha);
            }
            if (remaskEvery < 1) {
                return Optional.of(name.apply("remask-every") + " must be >= 1, got " + remaskEvery);
            }
            return Optional.empty();
        }

        /**
         * The pruning options for {@code original} (the recovery's teacher when it distils), with the
         * permutation search's other limits at their defaults; seed drives the permutation search and
         * the recovery.
         */
        public Options options(long seed, Qwen3Model original) {
            VnmPruner.PermutationOptions d = VnmPruner.PermutationOptions.defaults();
            VnmPruner.PermutationOptions perm = permuteRounds == 0 ? VnmPruner.PermutationOptions.off()
                    : new VnmPruner.PermutationOptions(true, permuteRounds, d.patience(), d.maxFreed());
            VnmRecovery.Options recovery = recoverySteps == 0 ? null : new VnmRecovery.Options(recoverySteps, recoveryBatch,
                    recoveryLr, loraRank, loraAlpha, remaskEvery, seed, klLoss ? original : null);
            return new Options(pattern, score, perm, recovery);
        }

        /** "activation" or "magnitude" as the score, or an error naming {@code name}. */
        public static VnmPruner.Score parseScore(String name, String value) {
            return switch (value) {
                case "activation" -> VnmPruner.Score.ACTIVATION;
                case "magnitude" -> VnmPruner.Score.MAGNITUDE;
                default -> throw new IllegalArgumentException(name + " must be activation or magnitude, got '" + value + "'");
            };
        }

        /** "kl" (true) or "ce" (false) as the recovery's loss, or an error naming {@code name}. */
        public static boolean parseKlLoss(String name, String value) {
            return switch (value) {
                case "kl" -> true;
                case "ce" -> false;
                default -> throw new IllegalArgumentException(name + " must be kl or ce, got '" + value + "'");
            };
        }
    }

    /**
     * The pruned model and what it took: the permutation search's figures ({@code prepared}); with a
     * recovery, the one-shot KL (and pass@1, null without an evaluation), the recovery's outcome and
     * seconds; {@code seconds} counts scoring, permutation, masks and recovery (not writing and
     * measuring); the quality read back and the bytes of the sparse tensors.
     */
    public record Result(VnmModel pruned, VnmPruner.Prepared prepared, Double klOneShot, Double passAt1OneShot,
                         VnmRecovery.Outcome recovery, double recoverySeconds, double seconds,
                         CompressionData.Quality quality, long bytes) {}

    private VnmCompression() {
    }

    /**
     * Prunes {@code model} (left as it is) from the checkpoint {@code parent} under {@code o}, writes
     * it to {@code out} (and the dense export to {@code exportDequantized}, if not null), and measures
     * it; calib and held are the data's sequences.
     */
    public static Result run(Qwen3Model model, Path parent, CompressionData data, Tokenizer tok, List<int[]> calib,
                             List<int[]> held, Options o, Path out, Path exportDequantized, Device device,
                             VnmRecovery.Listener listener) throws IOException {
        return run(model, parent, data, tok, calib, held, o, out, exportDequantized, device, listener, 0);
    }

    /** As above, writing {@code version} into the checkpoint's manifest (the compression worker's policy version). */
    public static Result run(Qwen3Model model, Path parent, CompressionData data, Tokenizer tok, List<int[]> calib,
                             List<int[]> held, Options o, Path out, Path exportDequantized, Device device,
                             VnmRecovery.Listener listener, long version) throws IOException {
        Result r = prune(model, data, tok, calib, held, o, device, listener);
        String tokJson = CompressionData.tokenizerJson(parent);
        VnmCheckpoint.write(out, r.pruned(), tokJson, version, parent.toString());
        if (exportDequantized != null) {
            DenseExport.write(exportDequantized, r.pruned(), tokJson);
        }
        CompressionData.Quality quality = data.quality(model, out, device, held, tok);
        return new Result(r.pruned(), r.prepared(), r.klOneShot(), r.passAt1OneShot(), r.recovery(), r.recoverySeconds(),
                r.seconds(), quality, Files.size(out.resolve(VnmCheckpoint.SPARSE_TENSORS)));
    }

    /** The pruning and recovery alone (quality null, bytes 0). */
    private static Result prune(Qwen3Model model, CompressionData data, Tokenizer tok, List<int[]> calib, List<int[]> held,
                                Options o, Device device, VnmRecovery.Listener listener) {
        ModelConfig config = model.config();
        VnmPattern p = o.pattern();
        long t0 = System.nanoTime();
        VnmPruner.Prepared prepared = VnmPruner.prepare(model, calib, p, o.score(), o.permutation(), data.seed());
        Map<String, VnmMask> oneShotMasks = VnmPruner.masks(config, prepared.weights(), prepared.inputNorms(), p);
        VnmModel pruned = VnmModel.of(config, p, prepared.weights(), oneShotMasks, prepared.permutations());
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (o.recovery() == null) {
            return new Result(pruned, prepared, null, null, null, 0, seconds, null, 0);
        }
        Double klOneShot;
        Double passOneShot = null;
        try (Qwen3Model oneShot = pruned.toModel(device)) {
            klOneShot = data.kl(model, oneShot, held);
            if (data.evalN() > 0) {
                passOneShot = data.passAt1(oneShot, tok);
            }
        }
        long t1 = System.nanoTime();
        VnmRecovery.Outcome rec;
        try (Qwen3Model student = Qwen3Model.create(config, prepared.weights(), device)) {
            rec = VnmRecovery.run(student, data.task(), tok, prepared.inputNorms(), p, o.recovery(), listener);
        }
        pruned = VnmModel.of(config, p, rec.weights(), rec.masks(), prepared.permutations());
        double recSeconds = (System.nanoTime() - t1) / 1e9;
        return new Result(pruned, prepared, klOneShot, passOneShot, rec, recSeconds, seconds + recSeconds, null, 0);
    }
}
