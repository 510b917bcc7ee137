package io.tailguard.cli;

import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedCheckpoint;
import io.tailguard.compression.QuantizedModel;
import io.tailguard.compression.YaqaQuantizer;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.eval.Evaluator;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "compress", mixinStandardHelpOptions = true, description = "Compress a checkpoint.",
        subcommands = {CompressCommand.Yaqa.class})
final class CompressCommand {

    @Command(name = "yaqa", mixinStandardHelpOptions = true,
            description = "Quantize every decoder linear layer to B bits (YAQA, or the RTN / LDLQ baselines) and report KL, pass@1 and size.")
    static final class Yaqa implements Callable<Integer> {
        @Mixin
        Common common;

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

        @Option(names = "--seed", defaultValue = "7", description = "Seed of labels, signs and calibration prompts (default: ${DEFAULT-VALUE}).")
        long seed;

        @Override
        public Integer call() throws IOException {
            Method method = method();
            if (!Tasks.builtinNames().contains(task)) {
                throw new BadInput("--task: compress takes a built-in task (" + String.join(", ", Tasks.builtinNames()) + ")");
            }
            if (calibration < 1 || heldOut < 1 || evalN < 0) {
                throw new BadInput("--calibration and --held-out must be >= 1, --eval-n >= 0");
            }
            checkpoint = Checkpoints.resolve(checkpoint);
            Tokenizer tok = Tokenizers.fromCheckpoint(checkpoint);
            Task t = Tasks.builtin(task, context);
            List<int[]> calib = sequences(t, tok, seed, calibration);
            List<int[]> held = sequences(t, tok, seed + 1_000_003L, heldOut);
            try (Qwen3Model model = ModelLoader.load(checkpoint, Devices.parse(common.device()))) {
                long t0 = System.nanoTime();
                QuantizedModel q;
                try {
                    q = YaqaQuantizer.quantize(model, calib, bits, method, seed);
                } catch (IllegalArgumentException e) {
                    throw new BadInput(e.getMessage());
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                QuantizedCheckpoint.write(out, q, 0, checkpoint.toString());
                if (exportDequantized != null) {
                    QuantizedCheckpoint.exportDequantized(q, exportDequantized);
                }
                Map<String, Object> r = new LinkedHashMap<>();
                try (Qwen3Model compressed = QuantizedCheckpoint.read(out).toModel(Devices.parse(common.device()))) {
                    r.put("kl", YaqaQuantizer.klPerToken(model, compressed, held));
                    if (evalN > 0) {
                        r.put("pass_at_1", Evaluator.evaluate(compressed, tok, t,
                                new Evaluator.EvalOptions(evalN, 1, 0.0, 1234, 64, 16), AttentionKernel.DENSE).passAt1());
                        r.put("pass_at_1_original", Evaluator.evaluate(model, tok, t,
                                new Evaluator.EvalOptions(evalN, 1, 0.0, 1234, 64, 16), AttentionKernel.DENSE).passAt1());
                    }
                }
                r.put("bytes", Files.size(out.resolve(QuantizedCheckpoint.QUANT_TENSORS)));
                r.put("float32_linear_bytes", q.float32LinearBytes());
                r.put("seconds", Progress.round(seconds, 2));
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

        /** Prompt plus worked solution of n task prompts, as the model sees them. */
        private static List<int[]> sequences(Task t, Tokenizer tok, long seed, int n) {
            List<int[]> out = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                Prompt p = t.prompt(seed, i);
                int[] prompt = TaskFormat.promptIds(tok, p);
                int[] sol = t.solution(p).map(s -> TaskFormat.completionIds(tok, s)).orElse(new int[0]);
                int[] all = Arrays.copyOf(prompt, prompt.length + sol.length);
                System.arraycopy(sol, 0, all, prompt.length, sol.length);
                out.add(all);
            }
            return out;
        }
    }
}
