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
 * timed (prefill excluded); tokens/s = B * N / decode seconds, and prefill tokens/s = B * L /
 * prefill seconds beside it. Two peers on torch 2.13 measure the same checkpoint in the same run:
 * the eager script bench/pytorch_decode.py (with --rounds R it and Tailguard alternate R times, each
 * keeping its best round) and transformers' own KV-cached generate (bench/transformers_decode.py,
 * once, after Tailguard's model is closed, bounded in tokens and seconds since it is slow on a CPU).
 * The stronger of the two is the peer that vs_peer compares against.
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Decode and prefill tokens/s, side by side with an eager PyTorch KV-cached decode and transformers' generate of the same checkpoint.")
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

    @Option(names = "--pytorch", defaultValue = "auto", description = "Run the eager PyTorch peer: auto (if the peer Python has torch >= 2 and safetensors), on, off (default: ${DEFAULT-VALUE}).")
    String pytorch;

    @Option(names = "--transformers", defaultValue = "auto", description = "Run transformers' generate as a peer: auto (if the peer Python has transformers), on, off (default: ${DEFAULT-VALUE}).")
    String transformers;

    @Option(names = "--transformers-new-tokens", defaultValue = "8", description = "At most this many of the --new-tokens steps are timed for transformers (default: ${DEFAULT-VALUE}).")
    int transformersNewTokens;

    @Option(names = "--transformers-seconds", defaultValue = "60", description = "transformers' decode stops after this many seconds per cache implementation (default: ${DEFAULT-VALUE}).")
    double transformersSeconds;

    @Option(names = "--transformers-cache", defaultValue = "both", description = "transformers' cache: dynamic, static, or both (the faster counts) (default: ${DEFAULT-VALUE}).")
    String transformersCache;

    @Override
    public Integer call() throws IOException {
        if (batch < 1 || context < 1 || newTokens < 1 || rounds < 1) {
            throw new BadInput("--batch, --context, --new-tokens and --rounds must be >= 1");
        }
        if (transformersNewTokens < 1 || !(transformersSeconds > 0)) {
            throw new BadInput("--transformers-new-tokens must be >= 1 and --transformers-seconds > 0");
        }
        String caches = switch (transformersCache) {
            case "dynamic", "static" -> transformersCache;
            case "both" -> "dynamic,static";
            default -> throw new BadInput("--transformers-cache must be dynamic, static or both, got '" + transformersCache + "'");
        };
        boolean peer = PeerScript.enabled(pytorch);
        boolean hf = PeerScript.transformersEnabled(transformers);
        Path tmp = source.checkpoint == null ? Files.createTempDirectory("tailguard-bench-") : null;
        try {
            Path dir = source.directory(seed, tmp);
            double best = 0;
            double bestPrefill = 0;
            double bestPeer = 0;
            double bestPeerPrefill = 0;
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
                    bestPrefill = Math.max(bestPrefill, (double) batch * context / res.prefillSeconds());
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
                        bestPeerPrefill = Math.max(bestPeerPrefill, p.get("prefill_tokens_per_s").getAsDouble());
                    }
                }
            }
            // After Tailguard's model is closed: transformers loads a copy of its own.
            JsonObject hfJson = hf ? PeerScript.run("bench/transformers_decode.py", List.of("--checkpoint", dir.toString(),
                    "--batch", "" + batch, "--context", "" + context,
                    "--new-tokens", "" + Math.min(newTokens, transformersNewTokens),
                    "--max-decode-seconds", "" + transformersSeconds, "--caches", caches, "--seed", "" + seed)) : null;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tokens_per_s", round(best));
            out.put("prefill_tokens_per_s", round(bestPrefill));
            out.put("batch", batch);
            out.put("context", context);
            out.put("new_tokens", newTokens);
            out.putAll(PeerFigures.decode(best, bestPrefill, peer ? bestPeer : null, peer ? bestPeerPrefill : null,
                    peerJson, hfJson));
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
