package io.tailguard.bench;

import com.google.gson.JsonObject;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.model.Devices;
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
 *
 * <p>A packed quantized or V:N:M checkpoint directory decodes on its packed weights (the PyTorch
 * peers cannot read it). With --compare, packed variants of the float32 model (RTN at b bits, or a
 * magnitude V:N:M pattern) are built in memory and timed in the same rounds, alternating with the
 * float32 model, each against it.
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

    @Option(names = "--compare", split = ",", paramLabel = "VARIANT",
            description = "Variants timed against the float32 model in the same rounds: qB (packed RTN at B bits, 2..8, groups of 32), qBa8 (the same with int8 activations), a V:N:M pattern (magnitude pruning), each optionally with +kv16 (a float16 KV cache), or kv16 alone (float32 weights, float16 cache), e.g. q4,q4a8,q8,64:2:5,kv16,q4a8+kv16.")
    List<String> compare;

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
        boolean hf = PeerScript.transformersEnabled(transformers);
        List<Variant> variants = new ArrayList<>();
        for (String v : compare == null ? List.<String>of() : compare) {
            variants.add(Variant.parse(v));
        }
        Path tmp = source.checkpoint == null ? Files.createTempDirectory("tailguard-bench-") : null;
        List<Qwen3Model> packed = new ArrayList<>();
        try {
            Path dir = source.directory(seed, tmp);
            boolean compressedDir = io.tailguard.actors.cli.GenerationModels.isCompressed(dir);
            if (compressedDir && !variants.isEmpty()) {
                throw new BadInput("--compare builds packed variants of a float32 model; " + dir + " is already compressed");
            }
            if (compressedDir && "on".equals(pytorch)) {
                throw new BadInput("--pytorch on: the PyTorch peer cannot read the compressed checkpoint " + dir);
            }
            if (!variants.isEmpty() && !io.tailguard.model.PackedLinear.supported()) {
                throw new BadInput("--compare needs the native decoder library: " + io.tailguard.model.PackedLinear.unsupportedReason());
            }
            boolean onGpu = !"cpu".equals(peerDevice(common.device()));
            if (onGpu && "on".equals(pytorch)) {
                throw new BadInput("--pytorch on: the eager PyTorch peer runs on the CPU only; on " + common.device()
                        + " transformers is the peer (--transformers)");
            }
            // the eager script is a CPU peer: on a GPU, transformers on the same GPU is the peer
            boolean peer = !compressedDir && !onGpu && PeerScript.enabled(pytorch);
            double best = 0;
            double bestPrefill = 0;
            double bestPeer = 0;
            double bestPeerPrefill = 0;
            double[] bestVariant = new double[variants.size()];
            List<double[]> checks = new ArrayList<>();
            JsonObject peerJson = null;
            try (Qwen3Model model = io.tailguard.actors.cli.GenerationModels.open(dir, Devices.parse(common.device()))) {
                List<int[]> prompts = randomPrompts(model.config().vocabSize());
                for (Variant v : variants) {
                    long t0 = System.nanoTime();
                    Object compressed = v.plain() ? null : v.compress(model, seed);
                    Qwen3Model p = v.plain() ? model : v.packed(compressed);
                    packed.add(p);
                    System.err.printf("%s: built in %.1fs%n", v.name(), (System.nanoTime() - t0) / 1e9);
                    checks.add(referenceCheck(model, p, compressed, v, prompts));
                }
                Generator gen = new Generator(model);
                // Warm-up: a short run so that one-time costs (native init, JIT) are not timed.
                List<int[]> shortPrompts = prompts.stream().map(p -> java.util.Arrays.copyOf(p, Math.min(p.length, 32))).toList();
                gen.generate(new GenerationRequest(shortPrompts, 4, SamplingParams.greedy(), java.util.Set.of(), 0));
                for (int i = 0; i < packed.size(); i++) {
                    new Generator(packed.get(i)).cacheType(variants.get(i).cache())
                            .generate(new GenerationRequest(shortPrompts, 4, SamplingParams.greedy(), java.util.Set.of(), 0));
                }
                for (int r = 0; r < rounds; r++) {
                    // N timed decode steps need N + 1 tokens: the first comes from the prefill.
                    GenerationResult res = gen.generate(new GenerationRequest(prompts, newTokens + 1,
                            SamplingParams.greedy(), java.util.Set.of(), 0));
                    double tps = (double) batch * res.decodeSteps() / res.decodeSeconds();
                    System.err.printf("tailguard round %d: %.1f tokens/s (prefill %.2fs)%s%n", r + 1, tps, res.prefillSeconds(),
                            model.isPacked() ? " on packed weights" : "");
                    best = Math.max(best, tps);
                    bestPrefill = Math.max(bestPrefill, (double) batch * context / res.prefillSeconds());
                    for (int i = 0; i < packed.size(); i++) {
                        GenerationResult pr = new Generator(packed.get(i)).cacheType(variants.get(i).cache())
                                .generate(new GenerationRequest(prompts, newTokens + 1, SamplingParams.greedy(), java.util.Set.of(), 0));
                        double ptps = (double) batch * pr.decodeSteps() / pr.decodeSeconds();
                        System.err.printf("%-9s round %d: %.1f tokens/s (prefill %.2fs)%n", variants.get(i).name(), r + 1, ptps,
                                pr.prefillSeconds());
                        bestVariant[i] = Math.max(bestVariant[i], ptps);
                    }
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
            JsonObject hfJson = hf && !compressedDir ? PeerScript.run("bench/transformers_decode.py", List.of("--checkpoint", dir.toString(),
                    "--batch", "" + batch, "--context", "" + context,
                    "--new-tokens", "" + Math.min(newTokens, transformersNewTokens),
                    "--max-decode-seconds", "" + transformersSeconds, "--caches", caches, "--seed", "" + seed,
                    "--device", peerDevice(common.device()))) : null;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tokens_per_s", round(best));
            out.put("prefill_tokens_per_s", round(bestPrefill));
            if (compressedDir) {
                out.put("packed", true);
            }
            if (!variants.isEmpty()) {
                List<Map<String, Object>> rows = new ArrayList<>();
                for (int i = 0; i < variants.size(); i++) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("variant", variants.get(i).name());
                    row.put("tokens_per_s", round(bestVariant[i]));
                    row.put("speedup", Math.round(bestVariant[i] / best * 1000) / 1000.0);
                    row.put("linear_bytes", variants.get(i).plain() ? 4L * linearParameters(dir) : packed.get(i).linearBytes());
                    row.put("kv_cache", variants.get(i).cache() == ai.djl.ndarray.types.DataType.FLOAT16 ? "float16" : "float32");
                    row.put("reference_tokens_equal", checks.get(i)[0] == 1);
                    row.put("reference_max_logprob_diff", checks.get(i)[1]);
                    rows.add(row);
                }
                out.put("float32_linear_bytes", 4L * linearParameters(dir));
                out.put("compare", rows);
            }
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
            for (int i = 0; i < packed.size(); i++) {
                if (!variants.get(i).plain()) {
                    packed.get(i).close();
                }
            }
            PeerScript.deleteTree(tmp);
        }
    }

    /** transformers' device for ours: the same GPU (gpu:N is torch's cuda:N), else the CPU. */
    static String peerDevice(String device) {
        return device != null && device.startsWith("gpu:") ? "cuda:" + device.substring(4) : "cpu";
    }

    /** Greedy steps of the reference check. */
    static final int CHECK_STEPS = 8;
    /** Prompt tokens of the reference check. */
    static final int CHECK_PROMPT = 16;

    /**
     * A variant against its reference: packed weights against the same compressed weights dequantized
     * to float32 (the libtorch reference), and a float16 cache against a float32 one; on the first
     * {@link #CHECK_PROMPT} tokens of each prompt: {1 if the greedy tokens of {@link #CHECK_STEPS}
     * steps are the same else 0, the largest difference of their log-probs}.
     */
    private double[] referenceCheck(Qwen3Model model, Qwen3Model variant, Object compressed, Variant v, List<int[]> prompts) {
        List<int[]> shortPrompts = prompts.stream().map(p -> java.util.Arrays.copyOf(p, Math.min(p.length, CHECK_PROMPT))).toList();
        GenerationRequest req = new GenerationRequest(shortPrompts, CHECK_STEPS, SamplingParams.greedy(), java.util.Set.of(), 0);
        GenerationResult got = new Generator(variant).cacheType(v.cache()).generate(req);
        GenerationResult want;
        if (compressed == null) {
            want = new Generator(model).generate(req);
        } else {
            try (Qwen3Model reference = Variant.dequantized(compressed)) {
                want = new Generator(reference).generate(req);
            }
        }
        boolean same = true;
        double diff = 0;
        for (int b = 0; b < shortPrompts.size(); b++) {
            var g = got.sequences().get(b);
            var w = want.sequences().get(b);
            same &= java.util.Arrays.equals(g.outputIds(), w.outputIds());
            for (int t = 0; t < Math.min(g.logprobs().length, w.logprobs().length); t++) {
                diff = Math.max(diff, Math.abs(g.logprobs()[t] - w.logprobs()[t]));
            }
        }
        return new double[] {same ? 1 : 0, diff};
    }

    /** Parameters of the decoder linears of the checkpoint's config. */
    private static long linearParameters(Path dir) {
        io.tailguard.model.ModelConfig c = io.tailguard.model.io.ConfigJson.read(dir.resolve(io.tailguard.model.io.CheckpointDir.CONFIG));
        long total = 0;
        for (io.tailguard.model.Projection p : io.tailguard.model.Projection.values()) {
            for (String m : p.modules()) {
                long[] s = io.tailguard.model.Projection.shape(c, m);
                total += s[0] * s[1];
            }
        }
        return total * c.numLayers();
    }

    /**
     * A variant of the float32 model: RTN at {@code bits} (with int8 activations where {@code
     * activations} is INT8: qBa8), or a magnitude V:N:M {@code pattern}, or neither (the float32
     * weights themselves); with its KV cache float16 where the name ends in {@code +kv16} ({@code
     * kv16} alone: the float32 weights with a float16 cache).
     */
    record Variant(String name, int bits, io.tailguard.compression.VnmPattern pattern,
                   io.tailguard.model.PackedLinear.Activations activations, ai.djl.ndarray.types.DataType cache) {
        static final String KV16 = "+kv16";

        static Variant parse(String s) {
            String name = s.strip();
            String v = name;
            io.tailguard.model.PackedLinear.Activations f32 = io.tailguard.model.PackedLinear.Activations.FLOAT32;
            ai.djl.ndarray.types.DataType cache = ai.djl.ndarray.types.DataType.FLOAT32;
            if (v.equals("kv16")) {
                return new Variant(name, 0, null, f32, ai.djl.ndarray.types.DataType.FLOAT16);
            }
            if (v.endsWith(KV16)) {
                v = v.substring(0, v.length() - KV16.length());
                cache = ai.djl.ndarray.types.DataType.FLOAT16;
            }
            java.util.regex.Matcher q = java.util.regex.Pattern.compile("q([0-9]+)(a8)?").matcher(v);
            if (q.matches()) {
                int bits = Integer.parseInt(q.group(1));
                if (bits < 2 || bits > 8) {
                    throw new BadInput("--compare " + name + ": bits must be in 2..8");
                }
                return new Variant(name, bits, null, q.group(2) != null ? io.tailguard.model.PackedLinear.Activations.INT8 : f32, cache);
            }
            try {
                return new Variant(name, 0, io.tailguard.compression.VnmPattern.parse(v), f32, cache);
            } catch (IllegalArgumentException e) {
                throw new BadInput("--compare " + name + ": not qB (B bits), qBa8, a V:N:M pattern or kv16, each optionally +kv16 ("
                        + e.getMessage() + ")");
            }
        }

        /** The float32 weights (only the cache differs). */
        boolean plain() {
            return bits == 0 && pattern == null;
        }

        /** The compressed weights: a QuantizedModel or a VnmModel. */
        Object compress(Qwen3Model model, long seed) {
            if (pattern == null) {
                return io.tailguard.compression.YaqaQuantizer.quantize(model, null, bits, io.tailguard.compression.Method.RTN, seed);
            }
            java.util.Optional<String> misfit = pattern.misfit(model.config());
            if (misfit.isPresent()) {
                throw new BadInput("--compare " + name + ": " + misfit.get());
            }
            return io.tailguard.compression.VnmPruner.prune(model, null, pattern, io.tailguard.compression.VnmPruner.Score.MAGNITUDE,
                    io.tailguard.compression.VnmPruner.PermutationOptions.off(), seed);
        }

        Qwen3Model packed(Object compressed) {
            return compressed instanceof io.tailguard.compression.QuantizedModel q ? q.toPackedModel(ai.djl.Device.cpu(), activations)
                    : ((io.tailguard.compression.VnmModel) compressed).toPackedModel(ai.djl.Device.cpu());
        }

        static Qwen3Model dequantized(Object compressed) {
            return compressed instanceof io.tailguard.compression.QuantizedModel q ? q.toModel(ai.djl.Device.cpu())
                    : ((io.tailguard.compression.VnmModel) compressed).toModel(ai.djl.Device.cpu());
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
