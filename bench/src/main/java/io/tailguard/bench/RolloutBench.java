package io.tailguard.bench;

import ai.djl.ndarray.NDManager;
import io.tailguard.actors.cli.BadInput;
import io.tailguard.actors.cli.Common;
import io.tailguard.actors.cli.Json;
import io.tailguard.actors.cli.LoraOption;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.Devices;
import io.tailguard.model.KvCache;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.Budgets;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Dense against sparse decode in one process, alternating step by step: within a round, each
 * decode step of one mode is followed by the same step of the other, each on its own cache, so
 * both see the same state of a shared, noisy machine. Throughputs are each mode's best round; the
 * speedup is the median over rounds of the round's dense time over its sparse time. The prefix
 * cache is filled synthetically (random keys and values at the given context length) instead of by
 * a prefill: decode cost does not depend on the cache's contents, and the output says so.
 *
 * <p>With --compressed DIR (a packed quantized or V:N:M checkpoint of the same model shape), the
 * compressed weights decode densely and sparsely too, in the same alternation (four steps in turn),
 * and their speedups over plain dense and over plain sparse are reported the same way.
 */
@Command(name = "rollout", mixinStandardHelpOptions = true,
        description = "Decode tokens/s, dense against Block-Top-k sparse, with the cost model's prediction.")
final class RolloutBench implements Callable<Integer> {
    /** Untimed decode steps per mode before the first round. */
    static final int WARM_STEPS = 32;

    @Mixin
    Common common;

    @ArgGroup(exclusive = true, multiplicity = "1")
    ModelSource source;


    @ArgGroup(exclusive = true, multiplicity = "1")
    Sparsity sparsity;

    static final class Sparsity {
        @Option(names = "--budget", description = "A fixed KV budget in tokens (a multiple of " + KvCache.PAGE + ", >= "
                + Budgets.MIN_BUDGET + "; the default dense layers).")
        Integer budget;

        @Option(names = "--schedule", description = "A schedule file (config/schedules/).")
        Path schedule;

        Schedule resolve() {
            if (schedule != null) {
                return Schedule.parse(schedule);
            }
            String problem = Budgets.problem(budget);
            if (problem != null) {
                throw new BadInput("--budget: budget " + budget + " " + problem);
            }
            return Schedule.fixed(budget);
        }
    }

    @Option(names = "--batch", required = true, description = "Sequences decoded together.")
    int batch;

    @Option(names = "--context", required = true, description = "Tokens already in the cache of each sequence.")
    int context;

    @Option(names = "--new-tokens", required = true, description = "Timed decode steps per round.")
    int newTokens;

    @Option(names = "--rounds", defaultValue = "3", description = "Rounds, each of --new-tokens steps per mode, alternating step by step (default: ${DEFAULT-VALUE}).")
    int rounds;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of weights and cache contents (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin
    LoraOption lora;

    @Option(names = "--compressed", description = "A compressed checkpoint directory (quant.json or vnm.json) of the same model shape, timed dense and sparse on its packed weights in the same alternation.")
    Path compressed;

    @Option(names = "--activations", defaultValue = "float32", description = "What --compressed's packed quantized products multiply with: float32 or int8 (default: ${DEFAULT-VALUE}).")
    String activations;

    @Option(names = "--kv-cache", defaultValue = "float32", description = "The KV cache of every mode but dense: float32 or float16 (dense always decodes on float32, the baseline) (default: ${DEFAULT-VALUE}).")
    String kvCache;

    @Override
    public Integer call() {
        if (!activations.equals("float32") && !activations.equals("int8")) {
            throw new BadInput("--activations: float32 or int8, got '" + activations + "'");
        }
        if (!kvCache.equals("float32") && !kvCache.equals("float16")) {
            throw new BadInput("--kv-cache: float32 or float16, got '" + kvCache + "'");
        }
        if (batch < 1 || context < 1 || newTokens < 1 || rounds < 1) {
            throw new BadInput("--batch, --context, --new-tokens and --rounds must be >= 1");
        }
        Schedule schedule = sparsity.resolve();
        BlockTopKAttention sparse = BlockTopKAttention.of(schedule);
        // Dense on the same implementation as sparse (the native kernel keeping every page, where it
        // is loaded): the two modes differ only in the pages they read.
        AttentionKernel denseKernel = BlockTopKAttention.dense();
        if (compressed != null && !io.tailguard.actors.cli.GenerationModels.isCompressed(compressed)) {
            throw new BadInput("--compressed: " + compressed + " has neither quant.json nor vnm.json");
        }
        try (Qwen3Model model = source.openForDecode(Devices.parse(common.device()), seed);
             Qwen3Model packed = compressed == null ? null : io.tailguard.compression.CompressedCheckpoints.load(compressed,
                     Devices.parse(common.device()), activations.equals("int8") ? io.tailguard.model.PackedLinear.Activations.INT8
                             : io.tailguard.model.PackedLinear.Activations.FLOAT32)) {
            if (packed != null && !packed.config().equals(model.config())) {
                throw new BadInput("--compressed: " + compressed + " is not of the model's shape");
            }
            LoraAdapter adapter = lora.attach(model); // switched off: the dense rounds never use it
            if (context + newTokens > model.maxPositions()) {
                throw new BadInput("--context + --new-tokens exceeds max_position_embeddings " + model.maxPositions());
            }
            // Warm-up, the same for both modes, untimed: each kernel decodes WARM_STEPS steps at the
            // batch of the run, at a context long enough for the sparse kernel to be sparse (twice the
            // budget; budgets never decrease with position) but short enough to be cheap. Without it the
            // first sparse round paid for the JIT and the first use of its code paths, which the dense
            // rounds' warm-up never touched.
            int warmContext = (int) Math.min(context, Math.max(4096, 2L * schedule.budgetAt(context)));
            alternate(model, packed, adapter, denseKernel, sparse, warmContext, WARM_STEPS);
            double dense = 0;
            double sparseBest = 0;
            double[] ratios = new double[rounds];
            double[] best = new double[4];
            double[][] vsDense = new double[2][rounds];
            double[][] vsSparse = new double[2][rounds];
            for (int r = 0; r < rounds; r++) {
                double[] ds = alternate(model, packed, adapter, denseKernel, sparse, context, newTokens);
                double d = ds[0];
                double s = ds[1];
                System.err.printf("round %d: dense %.1f tokens/s, sparse %.1f tokens/s, %.2fx%s%n", r + 1, d, s, s / d,
                        packed == null ? "" : String.format(java.util.Locale.ROOT, "; compressed dense %.1f tokens/s (%.2fx), compressed sparse %.1f tokens/s (%.2fx, %.2fx sparse)",
                                ds[2], ds[2] / d, ds[3], ds[3] / d, ds[3] / s));
                dense = Math.max(dense, d);
                sparseBest = Math.max(sparseBest, s);
                ratios[r] = s / d;
                if (packed != null) {
                    best[2] = Math.max(best[2], ds[2]);
                    best[3] = Math.max(best[3], ds[3]);
                    vsDense[0][r] = ds[2] / d;
                    vsDense[1][r] = ds[3] / d;
                    vsSparse[1][r] = ds[3] / s;
                }
            }
            double speedup = median(ratios);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("dense_tokens_per_s", round(dense));
            out.put("sparse_tokens_per_s", round(sparseBest));
            out.put("speedup", Math.round(speedup * 1000) / 1000.0);
            if (packed != null) {
                out.put("compressed", compressed.toString());
                out.put("compressed_dense_tokens_per_s", round(best[2]));
                out.put("compressed_sparse_tokens_per_s", round(best[3]));
                out.put("compressed_speedup", Math.round(median(vsDense[0]) * 1000) / 1000.0);
                out.put("compressed_sparse_speedup", Math.round(median(vsDense[1]) * 1000) / 1000.0);
                out.put("compressed_sparse_vs_sparse", Math.round(median(vsSparse[1]) * 1000) / 1000.0);
                out.put("compressed_packed", packed.isPacked());
            }
            out.put("kv_cache", kvCache);
            if (packed != null) {
                out.put("activations", activations);
            }
            out.put("batch", batch);
            out.put("context", context);
            out.put("new_tokens", newTokens);
            // the schedule's dense layers, as the sparse kernel's
            CostModel cost = new CostModel(model.config(), CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()), batch);
            int kvBytes = kvCache.equals("float16") ? 2 : 4;   // every mode but dense
            double denseCost = 0;
            double sparseCost = 0;
            for (int len = context + 1; len <= context + newTokens; len++) {
                denseCost += cost.denseDecodeTokenCost(len);
                sparseCost += cost.withKvBytes(kvBytes).decodeTokenCost(len, schedule);
            }
            double predicted = denseCost / sparseCost;
            out.put("predicted_speedup", Math.round(predicted * 1000) / 1000.0);
            out.put("of_predicted", Math.round(speedup / predicted * 1000) / 1000.0);
            if (packed != null) {
                // the same steps with the packed weights' bytes in place of the float32 linears'
                long float32Linears = 0;
                for (io.tailguard.model.Projection p : io.tailguard.model.Projection.values()) {
                    for (String mod : p.modules()) {
                        long[] sh = io.tailguard.model.Projection.shape(model.config(), mod);
                        float32Linears += 4L * sh[0] * sh[1] * model.config().numLayers();
                    }
                }
                double weightBytes = 4.0 * model.config().parameterCount() - float32Linears + packed.linearBytes();
                CostModel pc = new CostModel(model.config(), cost.machine(), batch, weightBytes).withKvBytes(kvBytes);
                double packedDense = 0;
                double packedSparse = 0;
                for (int len = context + 1; len <= context + newTokens; len++) {
                    packedDense += pc.denseDecodeTokenCost(len);
                    packedSparse += pc.decodeTokenCost(len, schedule);
                }
                out.put("predicted_compressed_speedup", Math.round(denseCost / packedDense * 1000) / 1000.0);
                out.put("predicted_compressed_sparse_speedup", Math.round(denseCost / packedSparse * 1000) / 1000.0);
                out.put("predicted_compressed_sparse_vs_sparse", Math.round(sparseCost / packedSparse * 1000) / 1000.0);
            }
            if (sparsity.budget != null) {
                out.put("budget", sparsity.budget);
            } else {
                out.put("schedule", sparsity.schedule.toString());
                out.put("schedule_version", schedule.version());
            }
            out.put("rounds", rounds);
            if (adapter != null) {
                out.put("lora", lora.describe());
            }
            out.put("prefix", "synthetic: random keys and values fill the cache instead of a prefill");
            if (common.json) {
                Json.print(out);
            } else {
                System.out.println(out);
            }
        }
        return 0;
    }

    /**
     * One round: n greedy decode steps of each mode from synthetically filled caches, alternating
     * dense step, sparse step. The sparse steps run as rollouts run the sparse actor, with its LoRA
     * (if any) merged; the merge and unmerge are not timed. Returns tokens/s over the batch, {dense,
     * sparse}.
     */
    private double[] alternate(Qwen3Model model, Qwen3Model packed, LoraAdapter adapter, AttentionKernel denseKernel,
                               AttentionKernel sparseKernel, int ctx, int n) {
        int modes = packed == null ? 2 : 4;
        try (NDManager m = model.manager().newSubManager()) {
            KvCache[] caches = new KvCache[modes];
            long[][] next = new long[modes][batch];
            long[] ns = new long[modes];
            try {
                int[] lengths = new int[batch];
                Arrays.fill(lengths, ctx);
                ai.djl.ndarray.types.DataType other = kvCache.equals("float16") ? ai.djl.ndarray.types.DataType.FLOAT16
                        : ai.djl.ndarray.types.DataType.FLOAT32;
                for (int i = 0; i < modes; i++) {
                    caches[i] = new KvCache(m, model.config(), batch, ctx + n, i == 0 ? ai.djl.ndarray.types.DataType.FLOAT32 : other);
                    caches[i].fillSynthetic(seed, lengths);
                }
                for (int s = 0; s < n; s++) {
                    ns[0] += step(model, denseKernel, caches[0], next[0], m);
                    try (LoraAdapter.Switch merged = adapter == null ? null : adapter.mergedScope()) {
                        ns[1] += step(model, sparseKernel, caches[1], next[1], m);
                    }
                    if (packed != null) {
                        ns[2] += step(packed, denseKernel, caches[2], next[2], m);
                        ns[3] += step(packed, sparseKernel, caches[3], next[3], m);
                    }
                }
            } finally {
                for (KvCache c : caches) {
                    if (c != null) {
                        c.close();
                    }
                }
            }
            double[] tps = new double[modes];
            for (int i = 0; i < modes; i++) {
                tps[i] = batch * (double) n / (ns[i] / 1e9);
            }
            return tps;
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /**
     * One timed greedy decode step: writes the next tokens into {@code next}; returns nanoseconds.
     * The argmax runs where the logits are (on a GPU, only B token ids come back to the host, and
     * reading them waits for the step to finish, so the time is the step's).
     */
    private long step(Qwen3Model model, AttentionKernel kernel, KvCache cache, long[] next, NDManager m) {
        try (NDManager step = m.newSubManager()) {
            long t0 = System.nanoTime();
            long[] ids = model.decode(next, cache, kernel, step).argMax(1).toType(ai.djl.ndarray.types.DataType.INT64, false)
                    .toLongArray();
            System.arraycopy(ids, 0, next, 0, batch);
            return System.nanoTime() - t0;
        }
    }

    private static double round(double x) {
        return Math.round(x * 10) / 10.0;
    }
}
