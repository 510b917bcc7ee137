package io.tailguard.bench;

import com.google.gson.JsonObject;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.Devices;
import io.tailguard.model.Qwen3Model;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * Training throughput: forward + backward + AdamW step over B random sequences of L tokens (loss on
 * every next token), side by side with bench/pytorch_train.py on the same checkpoint: an eager torch
 * 2.13 step with scaled-dot-product attention and fused AdamW (foreach where the build lacks it).
 */
@Command(name = "learner", mixinStandardHelpOptions = true,
        description = "Training tokens/s (forward + backward + optimizer), side by side with a PyTorch eager training step.")
final class LearnerBench implements Callable<Integer> {
    @Mixin
    Common common;

    @ArgGroup(exclusive = true, multiplicity = "1")
    ModelSource source;

    @Option(names = "--batch", required = true, description = "Sequences per step.")
    int batch;

    @Option(names = "--seq", required = true, description = "Tokens per sequence.")
    int seq;

    @Option(names = "--steps", defaultValue = "3", description = "Timed steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of weights and data (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--pytorch", defaultValue = "auto", description = "Run the eager PyTorch peer: auto (if the peer Python has torch >= 2 and safetensors), on, off (default: ${DEFAULT-VALUE}).")
    String pytorch;

    @Override
    public Integer call() throws IOException {
        if (batch < 1 || seq < 2 || steps < 1) {
            throw new BadInput("--batch and --steps must be >= 1 and --seq >= 2");
        }
        boolean peer = PeerScript.enabled(pytorch);
        Path tmp = source.checkpoint == null ? Files.createTempDirectory("tailguard-bench-") : null;
        try {
            Path dir = peer ? source.directory(seed, tmp) : null;  // only the peer reads files
            double tps;
            double loss;
            try (Qwen3Model model = source.open(Devices.parse(common.device()), seed);
                 SupervisedTrainer tr = new SupervisedTrainer(model, new LrSchedule(1e-4, 0, steps + 1, 1.0),
                         AdamW.Options.defaults(), batch)) {
                SplittableRandom r = new SplittableRandom(seed);
                List<int[]> prompts = new ArrayList<>();
                List<int[]> rest = new ArrayList<>();
                for (int b = 0; b < batch; b++) {
                    int[] ids = r.ints(seq, 0, model.config().vocabSize()).toArray();
                    prompts.add(new int[] {ids[0]});
                    rest.add(java.util.Arrays.copyOfRange(ids, 1, seq));
                }
                tr.step(prompts, rest); // warm-up
                long t0 = System.nanoTime();
                loss = 0;
                for (int s = 0; s < steps; s++) {
                    loss = tr.step(prompts, rest).loss();
                }
                tps = (double) batch * seq * steps / ((System.nanoTime() - t0) / 1e9);
                System.err.printf("tailguard: %.1f tokens/s%n", tps);
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tokens_per_s", Math.round(tps * 10) / 10.0);
            out.put("batch", batch);
            out.put("seq", seq);
            out.put("steps", steps);
            out.put("loss", loss);
            if (peer) {
                JsonObject p = PeerScript.run("bench/pytorch_train.py", List.of("--checkpoint", dir.toString(),
                        "--batch", "" + batch, "--seq", "" + seq, "--steps", "" + steps, "--seed", "" + seed));
                double ptps = p.get("tokens_per_s").getAsDouble();
                System.err.printf("pytorch:   %.1f tokens/s%n", ptps);
                out.put("pytorch_tokens_per_s", Math.round(ptps * 10) / 10.0);
                out.put("vs_pytorch", PeerFigures.ratio(tps, ptps));
                out.put("pytorch_version", p.get("torch_version").getAsString());
                out.put("pytorch_optimizer", p.get("optimizer").getAsString());
                out.put("pytorch_attention", p.get("attention").getAsString());
                out.put("pytorch_loss", p.get("loss").getAsDouble());
            }
            if (common.json) {
                Json.print(out);
            } else {
                System.out.println(out);
            }
            return 0;
        } finally {
            PeerScript.deleteTree(tmp);
        }
    }
}
