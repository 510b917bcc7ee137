package io.tailguard.bench;

import com.google.gson.JsonObject;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
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
 * Decode throughput: B random prompts of L tokens are prefilled, then N greedy decode steps are
 * timed (prefill excluded); tokens/s = B * N / decode seconds. The PyTorch eager peer
 * (bench/pytorch_decode.py) measures the same thing on the same checkpoint, in the same run;
 * with --rounds R the two alternate R times and each keeps its best round.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Decode tokens/s, side by side with a PyTorch eager KV-cached decode of the same checkpoint.")
final class DecodeBench implements Callable<Integer> {
    @Mixin
    Common common;

    @ArgGroup(exclusive = true, multiplicity = "1")
    ModelSource source;


    @Option(names = "--batch", required = true, description = "Sequences decoded together.")
    int batch;

    @Option(names = "--context", required = true, description = "Prompt tokens per sequence.")
    int context;

    @Option(names = "--new-tokens", required = true, description = "Timed decode steps.")
    int newTokens;

    @Option(names = "--rounds", defaultValue = "1", description = "Alternating rounds per implementation; best kept (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of weights and prompts (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--pytorch", defaultValue = "auto", description = "Run the PyTorch peer: auto (if /usr/bin/python3 has torch), on, off (default: ${DEFAULT-VALUE}).")
    String pytorch;

    @Override
    public Integer call() throws IOException {
        if (batch < 1 || context < 1 || newTokens < 1 || rounds < 1) {
            throw new BadInput("--batch, --context, --new-tokens and --rounds must be >= 1");
        }
        boolean peer = PeerScript.enabled(pytorch);
        Path tmp = source.checkpoint == null ? Files.createTempDirectory("tailguard-bench-") : null;
        try {
            Path dir = source.directory(seed, tmp);
            double best = 0;
            double bestPeer = 0;
            JsonObject peerJson = null;
            try (Qwen3Model model = ModelLoader.load(dir, Devices.parse(common.device()))) {
                List<int[]> prompts = randomPrompts(model.config().vocabSize());
                Generator gen = new Generator(model);
                // Warm-up: a short run so that one-time costs (native init, JIT) are not timed.
                gen.generate(new GenerationRequest(prompts.stream().map(p -> java.util.Arrays.copyOf(p, Math.min(p.length, 32))).toList(),
                        4, SamplingParams.greedy(), java.util.Set.of(), 0));
                for (int r = 0; r < rounds; r++) {
                    // N timed decode steps need N + 1 tokens: the first comes from the prefill.
                    GenerationResult res = gen.generate(new GenerationRequest(prompts, newTokens + 1,
                            SamplingParams.greedy(), java.util.Set.of(), 0));
                    double tps = (double) batch * res.decodeSteps() / res.decodeSeconds();
                    System.err.printf("tailguard round %d: %.1f tokens/s (prefill %.2fs)%n", r + 1, tps, res.prefillSeconds());
                    best = Math.max(best, tps);
                    if (peer) {
                        JsonObject p = PeerScript.run("bench/pytorch_decode.py", List.of("--checkpoint", dir.toString(),
                                "--batch", "" + batch, "--context", "" + context, "--new-tokens", "" + newTokens,
                                "--seed", "" + seed));
                        double ptps = p.get("tokens_per_s").getAsDouble();
                        System.err.printf("pytorch   round %d: %.1f tokens/s%n", r + 1, ptps);
                        if (ptps > bestPeer) {
                            bestPeer = ptps;
                            peerJson = p;
                        }
                    }
                }
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tokens_per_s", round(best));
            out.put("batch", batch);
            out.put("context", context);
            out.put("new_tokens", newTokens);
            if (peer) {
                out.put("pytorch_tokens_per_s", round(bestPeer));
                out.put("vs_pytorch", Math.round(best / bestPeer * 1000) / 1000.0);
                out.put("pytorch_version", peerJson.get("torch_version").getAsString());
            }
            out.put("rounds", rounds);
            out.put("device", common.device());
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

    private List<int[]> randomPrompts(int vocab) {
        SplittableRandom r = new SplittableRandom(seed ^ 0x5DEECE66DL);
        List<int[]> prompts = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            int[] p = new int[context];
            for (int i = 0; i < context; i++) {
                p[i] = r.nextInt(vocab);
            }
            prompts.add(p);
        }
        return prompts;
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }
}
