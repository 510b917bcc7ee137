package io.tailguard.actors.cli;

import io.tailguard.compression.Method;
import io.tailguard.compression.VnmHeuristic;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.io.ConfigJson;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.recipes.CompressionData;
import io.tailguard.recipes.VnmCompression;
import io.tailguard.recipes.YaqaCompression;
import io.tailguard.recipes.VnmRecovery;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "compress", mixinStandardHelpOptions = true, description = "Compress a checkpoint.",
        subcommands = {CompressCommand.Yaqa.class, CompressCommand.Vnm.class})
final class CompressCommand {

    @Command(name = "yaqa", mixinStandardHelpOptions = true,
            description = "Quantize every decoder linear layer to B bits (YAQA, or the RTN / LDLQ baselines) and report KL, pass@1 and size.")
    static final class Yaqa implements Callable<Integer> {
        @Mixin
        Common common;

        @Mixin
        CompressionOptions data;

        @Option(names = "--checkpoint", required = true, description = "Checkpoint to compress; 'default' is the embedded default.")
        Path checkpoint;

        @Option(names = "--bits", required = true, description = "2, 3 or 4 (up to 8).")
        int bits;

        @Option(names = "--sketch", defaultValue = "B", description = "YAQA Hessian sketch: A or B (default: ${DEFAULT-VALUE}).")
        String sketch;

        @Option(names = "--baseline", description = "Instead of YAQA: rtn or ldlq (same quantizer and incoherence processing).")
        String baseline;

        @Option(names = "--out", required = true, description = "Quantized checkpoint directory (packed codes, scales, signs; written atomically).")
        Path out;

        @Option(names = "--export-dequantized", description = "Also write a plain F32 Hugging Face checkpoint of the dequantized weights here.")
        Path exportDequantized;

        @Override
        public Integer call() throws IOException {
            Method method = method();
            if (bits < 2 || bits > 8) {
                throw new BadInput("--bits must be in 2..8, got " + bits);
            }
            CompressionData d = data.validate();
            checkpoint = Checkpoints.resolve(checkpoint);
            Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
            List<int[]> calib = d.calibration(tok);
            List<int[]> held = d.heldOut(tok);
            try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()))) {
                YaqaCompression.Result res;
                try {
                    res = YaqaCompression.run(model, checkpoint, d, tok, calib, held,
                            new YaqaCompression.Options(bits, method, data.seed), out, exportDequantized,
                            Devices.parse(common.device()));
                } catch (IllegalArgumentException e) {
                    throw new BadInput(e.getMessage() + (calib.isEmpty() ? " (--calibration is 0)" : ""));
                }
                Map<String, Object> r = new LinkedHashMap<>();
                CompressionOptions.put(r, res.quality());
                r.put("bytes", res.bytes());
                r.put("float32_linear_bytes", res.quantized().float32LinearBytes());
                r.put("seconds", Progress.round(res.seconds(), 2));
                r.put("method", method.name());
                r.put("bits", bits);
                r.put("checkpoint", out.toString());
                Json.print(r);
            }
            return 0;
        }

        private Method method() {
            if (baseline != null) {
                return switch (baseline) {
                    case "rtn" -> Method.RTN;
                    case "ldlq" -> Method.LDLQ;
                    default -> throw new BadInput("--baseline must be rtn or ldlq, got '" + baseline + "'");
                };
            }
            return switch (sketch) {
                case "A" -> Method.YAQA_A;
                case "B" -> Method.YAQA_B;
                default -> throw new BadInput("--sketch must be A or B, got '" + sketch + "'");
            };
        }
    }

    @Command(name = "vnm", mixinStandardHelpOptions = true,
            description = {"Prune every decoder linear layer to a V:N:M pattern (docs/algorithms.md, V:N:M sparsity): scores, channel "
                    + "permutation folded into the neighbouring layers, exhaustive per-block masks, then the three-stage "
                    + "LoRA recovery; write the packed sparse checkpoint and report KL, pass@1, size and time.",
                    "Prints {\"kl\":..,\"pass_at_1\":..,\"bytes\":..,\"seconds\":..,...}."})
    static final class Vnm implements Callable<Integer> {
        @Mixin
        Common common;

        @Mixin
        CompressionOptions data;

        @Option(names = "--checkpoint", required = true, description = "Checkpoint to prune; 'default' is the embedded default.")
        Path checkpoint;

        @Option(names = "--pattern", description = "V:N:M pattern, e.g. 64:2:5 (N must be 2; M in 4..32; V must divide every layer's rows).")
        String pattern;

        @Option(names = "--speedup", description = "Instead of --pattern: choose V and M for this predicted speedup over dense (the most diverse pattern that meets it).")
        Double speedup;

        @Option(names = "--baseline", description = "2:4: prune with plain 2:4 magnitude pruning instead (no permutation; --pattern and --speedup are then unused).")
        String baseline;

        @Option(names = "--score", description = "Importance: activation (|W|·‖x‖ over the calibration tokens, the default for V:N:M) or magnitude (|W|, the default for --baseline).")
        String score;

        @Option(names = "--no-permute", description = "Skip the channel permutation.")
        boolean noPermute;

        @Option(names = "--permute-rounds", defaultValue = "200",
                description = "Most rounds of the permutation search per fold group; it stops earlier after 12 rounds without gain (default: ${DEFAULT-VALUE}).")
        int permuteRounds;

        @Option(names = "--recovery-steps", defaultValue = "300",
                description = "Steps of the three-stage LoRA recovery (dense LoRA, then re-masked sparse LoRA, 5 %% each; then the mask fixed); 0: one-shot pruning (default: ${DEFAULT-VALUE}).")
        int recoverySteps;

        @Option(names = "--recovery-loss", defaultValue = "kl",
                description = "kl: distil the original model's next-token distributions at every position (the KL that is reported); ce: cross-entropy of the worked solutions (default: ${DEFAULT-VALUE}).")
        String recoveryLoss;

        @Option(names = "--recovery-batch", defaultValue = "8", description = "Task prompts with worked solutions per recovery step (default: ${DEFAULT-VALUE}).")
        int recoveryBatch;

        @Option(names = "--recovery-lr", defaultValue = "1e-3", description = "Peak learning rate of the LoRA (AdamW; warm-up over stage 1, cosine to 10 %%) (default: ${DEFAULT-VALUE}).")
        double recoveryLr;

        @Option(names = "--lora-rank", defaultValue = "8", description = "LoRA rank on all seven linear modules (default: ${DEFAULT-VALUE}).")
        int loraRank;

        @Option(names = "--lora-alpha", defaultValue = "16", description = "LoRA alpha; the update is scaled by alpha / rank (default: ${DEFAULT-VALUE}).")
        double loraAlpha;

        @Option(names = "--remask-every", defaultValue = "5", description = "Stage 2 re-chooses the mask after merging every this many steps (default: ${DEFAULT-VALUE}).")
        int remaskEvery;

        @Option(names = "--out", required = true, description = "Sparse checkpoint directory (values, 2:4 metadata, column offsets; written atomically).")
        Path out;

        @Option(names = "--export-dequantized", description = "Also write a plain F32 Hugging Face checkpoint of the pruned (dense, zero-filled) weights here.")
        Path exportDequantized;

        @Override
        public Integer call() throws IOException {
            CompressionData d = data.validate();
            VnmPruner.Score scoring = scoring();
            checkpoint = Checkpoints.resolve(checkpoint);
            if (!Files.isDirectory(checkpoint)) {
                throw new BadInput("--checkpoint: " + checkpoint + " is not a directory");
            }
            ModelConfig config = ConfigJson.read(checkpoint.resolve(CheckpointDir.CONFIG));
            VnmPattern p = pattern(config);
            if (scoring == VnmPruner.Score.ACTIVATION && data.calibration < 1) {
                throw new BadInput("activation scores need calibration data: --calibration must be >= 1 (or use --score magnitude)");
            }
            Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
            List<int[]> calib = d.calibration(tok);
            List<int[]> held = d.heldOut(tok);
            if (!noPermute && baseline == null && permuteRounds < 1) {
                throw new BadInput("--permute-rounds must be >= 1 (--no-permute skips the permutation)");
            }
            VnmCompression.Settings settings;
            try {
                settings = new VnmCompression.Settings(p, scoring, noPermute || baseline != null ? 0 : permuteRounds, recoverySteps,
                        VnmCompression.Settings.parseKlLoss("--recovery-loss", recoveryLoss), recoveryBatch, recoveryLr, loraRank,
                        loraAlpha, remaskEvery);
            } catch (IllegalArgumentException e) {
                throw new BadInput(e.getMessage());
            }
            settings.problem(name -> "--" + name).ifPresent(why -> {
                throw new BadInput(why);
            });
            try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()))) {
                VnmCompression.Options options = settings.options(data.seed, model);
                VnmRecovery.Options recovery = options.recovery();
                Progress bar = new Progress("recovery");
                VnmCompression.Result res;
                try {
                    res = VnmCompression.run(model, checkpoint, d, tok, calib, held,
                            options, out, exportDequantized,
                            Devices.parse(common.device()),
                            (s, n, stage, loss) -> bar.update(s, n, "stage " + stage + " loss " + String.format("%.3f", loss)));
                } catch (IllegalArgumentException e) {
                    throw new BadInput(e.getMessage());
                } finally {
                    bar.finish();
                }
                Map<String, Object> r = new LinkedHashMap<>();
                CompressionOptions.put(r, res.quality());
                r.put("bytes", res.bytes());
                r.put("float32_linear_bytes", res.pruned().float32LinearBytes());
                r.put("seconds", Progress.round(res.seconds(), 2));
                r.put("pattern", p.toString());
                r.put("density", p.density());
                r.put("predicted_speedup", Progress.round(VnmHeuristic.predictedSpeedup(p.v(), p.m()), 3));
                r.put("score", scoring.name().toLowerCase());
                VnmPruner.Prepared prepared = res.prepared();
                if (!prepared.groups().isEmpty()) {
                    Map<String, Object> g = new LinkedHashMap<>();
                    g.put("retained_before", Progress.round(prepared.retainedBefore(), 5));
                    g.put("retained_after", Progress.round(prepared.retainedAfter(), 5));
                    g.put("gain_percent", Progress.round(prepared.gainPercent(), 3));
                    r.put("permutation", g);
                }
                if (recovery != null) {
                    VnmRecovery.Outcome rec = res.recovery();
                    r.put("kl_one_shot", res.klOneShot());
                    if (res.passAt1OneShot() != null) {
                        r.put("pass_at_1_one_shot", res.passAt1OneShot());
                    }
                    Map<String, Object> rr = new LinkedHashMap<>();
                    rr.put("steps", recoverySteps);
                    rr.put("loss", recoveryLoss);
                    rr.put("stage_steps", rec.stageSteps());
                    rr.put("mask_changes", rec.maskChanges().stream().map(x -> Progress.round(x, 5)).toList());
                    rr.put("loss_first", rec.firstLoss());
                    rr.put("loss_last", rec.lastLoss());
                    rr.put("seconds", Progress.round(res.recoverySeconds(), 2));
                    r.put("recovery", rr);
                }
                r.put("checkpoint", out.toString());
                Json.print(r);
            }
            return 0;
        }

        private VnmPruner.Score scoring() {
            if (score == null) {
                return baseline != null ? VnmPruner.Score.MAGNITUDE : VnmPruner.Score.ACTIVATION;
            }
            try {
                return VnmCompression.Settings.parseScore("--score", score);
            } catch (IllegalArgumentException e) {
                throw new BadInput(e.getMessage());
            }
        }

        private VnmPattern pattern(ModelConfig config) {
            VnmPattern p;
            if (baseline != null) {
                if (!baseline.equals("2:4")) {
                    throw new BadInput("--baseline must be 2:4, got '" + baseline + "'");
                }
                p = VnmPattern.TWO_FOUR;
            } else if (pattern != null && speedup != null) {
                throw new BadInput("give --pattern or --speedup, not both");
            } else if (pattern != null) {
                try {
                    p = VnmPattern.parse(pattern);
                } catch (IllegalArgumentException e) {
                    throw new BadInput("--pattern: " + e.getMessage());
                }
            } else if (speedup != null) {
                p = VnmHeuristic.choose(config, speedup).orElseThrow(() -> new BadInput("--speedup " + speedup
                        + ": no V:2:M pattern (V in 16..128, M in 4..32) that fits every layer is predicted to reach it"));
            } else {
                throw new BadInput("give --pattern V:N:M (e.g. 64:2:5), --speedup X or --baseline 2:4");
            }
            p.misfit(config).ifPresent(why -> {
                throw new BadInput("--pattern: " + why);
            });
            return p;
        }
    }
}
