package io.tailguard.rollout.sparse;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigSyntax;
import com.typesafe.config.ConfigValue;
import com.typesafe.config.ConfigValueType;
import io.tailguard.model.ModelConfig;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static io.tailguard.model.KvCache.PAGE;

/**
 * Predicted decode cost, dense and under a {@link Schedule} (docs/algorithms.md, "The cost model").
 *
 * <p><b>Unit.</b> Every cost is in <em>effective FLOPs</em>: FLOPs + I · bytes moved, where
 * I = flopsPerSecond / bytesPerSecond of the {@link Machine} (FLOP per byte). Dividing by
 * flopsPerSecond ({@link #seconds}) gives the time assuming compute and memory traffic do not
 * overlap. Speedups are ratios, so they do not depend on the unit.
 *
 * <p><b>Modelling choices</b> (what the published method leaves open is decided here):
 * <ul>
 *   <li>Values are float32: weights and K/V cache entries cost 4 bytes each (this is what the
 *       Java actor runs), except a float16 KV cache ({@link #withKvBytes}: 2 bytes per key and value
 *       element; landmarks stay float32).</li>
 *   <li>A multiply-add counts as 2 FLOPs everywhere, as in "linear layers cost 2P".</li>
 *   <li>Linear layers, per decode token: 2P FLOPs and 4P / batch bytes, P = {@link
 *       ModelConfig#parameterCount()}: the batch shares one read of the weights. P includes the
 *       embedding: with tied embeddings it is the LM head's read; untied, the input embedding is
 *       over-counted (its lookup reads one row) — a small bias towards linear cost, i.e. towards a
 *       lower predicted speedup.</li>
 *   <li>Dense attention, per layer and KV head, at context L (keys the step attends over,
 *       including the new token): reads K and V, 2·L·D values = 8·L·D bytes; computes, for each of
 *       the r query heads of the group, q·K (L·D multiply-adds) and p·V (L·D multiply-adds):
 *       4·r·L·D FLOPs ("computes r times that").</li>
 *   <li>Sparse attention with budget B &lt; L: reads 2·B·D values (8·B·D bytes) and computes
 *       4·r·B·D FLOPs over the kept tokens (taken as exactly B: a partially filled recent page makes
 *       it slightly fewer); plus landmark scoring over the ⌊L/16⌋ full pages (16 = the page,
 *       {@code KvCache.PAGE}): reads ⌊L/16⌋·D landmark values (4 bytes each) and computes one dot
 *       product each with the group's mean query, 2·⌊L/16⌋·D FLOPs. The mean query (r·D adds) and
 *       the top-k selection are ignored.</li>
 *   <li>B ≥ L means dense: the kernel attends over every token. The schedule's dense layers
 *       ({@link Schedule#denseLayers()}, default {0, 1}) are always dense, as in the kernel, which
 *       reads them from the same schedule. Just past the budget (L slightly above B) sparse can
 *       cost more than dense, since landmark scoring is extra; the model reports that as it is,
 *       because the kernel goes sparse whenever B &lt; L.</li>
 *   <li>Compressed weights ({@link #CostModel(ModelConfig, Machine, int, double)}, or per format
 *       {@link #withWeights} with {@link WeightFormat#weightBytes}): the same 2P FLOPs, and the
 *       bytes the packed weights really take per step instead of 4P (quantized codes with their
 *       steps and signs, or V:N:M kept values with their positions); unpacking and the
 *       incoherence transforms are ignored like the other elementwise work. Prefill stays at 4P
 *       bytes: a packed model's prefill multiplies with dequantized float32 weights.</li>
 *   <li>Ignored everywhere: norms, RoPE, softmax, activations, sampling, and kernel launch
 *       overheads (they scale with neither L nor B; they make measured speedups lower than
 *       predicted).</li>
 *   <li>Prefill (dense on both sides), prompt of n tokens: linear 2P·n FLOPs and one read of the
 *       weights, 4P / batch bytes; causal attention 4·r·D·n(n+1)/2 FLOPs per layer and KV head
 *       (query i attends over i keys) and one read of the prompt's K and V, 8·n·D bytes.</li>
 *   <li>Generating N tokens after a prompt of n: the first new token comes from the prefill's
 *       logits; then N − 1 decode steps, step i (1 ≤ i &lt; N) at context n + i, with the schedule's
 *       budget at that context (as the generator does: the new token's key is in the cache).</li>
 * </ul>
 */
public final class CostModel {
    static final int BYTES_PER_VALUE = 4;

    /**
     * The two machine constants the model needs: sustained float32 matmul FLOP/s and memory
     * bandwidth in bytes/s, as measured by {@link MachineProbe} ({@code bench machine}).
     */
    public record Machine(double flopsPerSecond, double bytesPerSecond) {
        /**
         * A conservative guess for a machine never measured: a few CPU cores, 50 GFLOP/s float32
         * and 10 GB/s (I = 5 FLOP/byte). Replace it by measuring ({@code bench machine}).
         */
        public static final Machine DEFAULT = new Machine(50e9, 10e9);
        static final int FORMAT = 1;

        public Machine {
            if (!(flopsPerSecond > 0) || !Double.isFinite(flopsPerSecond)) {
                throw new IllegalArgumentException("flops_per_second must be a positive number, got " + flopsPerSecond);
            }
            if (!(bytesPerSecond > 0) || !Double.isFinite(bytesPerSecond)) {
                throw new IllegalArgumentException("bytes_per_second must be a positive number, got " + bytesPerSecond);
            }
        }

        /** I, the machine's balance point in FLOP per byte. */
        public double flopsPerByte() {
            return flopsPerSecond / bytesPerSecond;
        }

        /**
         * Where measurements live: the system property {@code tailguard.machine.file}, else the
         * environment variable {@code TAILGUARD_MACHINE_FILE}, else
         * {@code $XDG_CACHE_HOME/tailguard/machine.json}, else {@code ~/.cache/tailguard/machine.json}.
         */
        public static Path defaultPath() {
            String prop = System.getProperty("tailguard.machine.file");
            if (prop != null && !prop.isBlank()) {
                return Path.of(prop);
            }
            String env = System.getenv("TAILGUARD_MACHINE_FILE");
            if (env != null && !env.isBlank()) {
                return Path.of(env);
            }
            String xdg = System.getenv("XDG_CACHE_HOME");
            Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
            return cache.resolve("tailguard").resolve("machine.json");
        }

        /**
         * Reads a machine file: JSON {@code {"format": 1, "flops_per_second": ..., "bytes_per_second":
         * ...}}. Errors are one line naming the file and the key.
         */
        public static Machine load(Path file) {
            Config c;
            try {
                String text = Files.readString(file, StandardCharsets.UTF_8);
                c = ConfigFactory.parseString(text, ConfigParseOptions.defaults().setSyntax(ConfigSyntax.JSON)
                        .setOriginDescription(file.toString()));
            } catch (IOException e) {
                throw new IllegalArgumentException(file + ": cannot read machine file: " + e.getMessage());
            } catch (ConfigException e) {
                throw new IllegalArgumentException(file + ": not valid JSON: " + String.valueOf(e.getMessage()).replaceAll("\\s+", " "));
            }
            Set<String> allowed = Set.of("format", "flops_per_second", "bytes_per_second");
            for (Map.Entry<String, ConfigValue> e : c.root().entrySet()) {
                if (!allowed.contains(e.getKey())) {
                    throw new IllegalArgumentException(file + ": " + e.getKey() + ": unknown key (allowed: "
                            + String.join(", ", new TreeSet<>(allowed)) + ")");
                }
            }
            double format = number(c, "format", file);
            if (format != FORMAT) {
                throw new IllegalArgumentException(file + ": format: unsupported machine file format " + c.root().get("format").unwrapped()
                        + " (this build reads " + FORMAT + ")");
            }
            double flops = number(c, "flops_per_second", file);
            double bytes = number(c, "bytes_per_second", file);
            try {
                return new Machine(flops, bytes);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ": " + e.getMessage());
            }
        }

        /** {@link #load} if the file exists, else {@link #DEFAULT}. */
        public static Machine loadOrDefault(Path file) {
            return Files.exists(file) ? load(file) : DEFAULT;
        }

        /** Writes the JSON form {@link #load} reads (creating parent folders; replaced atomically). */
        public void save(Path file) throws IOException {
            String json = "{\n  \"format\": " + FORMAT + ",\n  \"flops_per_second\": " + flopsPerSecond
                    + ",\n  \"bytes_per_second\": " + bytesPerSecond + "\n}\n";
            io.tailguard.model.io.AtomicFiles.writeString(file, json);
        }

        private static double number(Config c, String key, Path file) {
            ConfigValue v = c.root().get(key);
            if (v == null) {
                throw new IllegalArgumentException(file + ": " + key + ": missing");
            }
            if (v.valueType() != ConfigValueType.NUMBER) {
                throw new IllegalArgumentException(file + ": " + key + ": must be a number, got " + v.unwrapped());
            }
            return ((Number) v.unwrapped()).doubleValue();
        }
    }

    private final ModelConfig config;
    private final Machine machine;
    private final int batchSize;
    // per-token constants, effective FLOPs
    private final double linearCost;
    private final double intensity;
    private final double weightBytes;
    private final int kvBytes;

    /** Batch 1. */
    public CostModel(ModelConfig config, Machine machine) {
        this(config, machine, 1);
    }

    /**
     * @param batchSize sequences decoded together (they share one read of the weights per step)
     */
    public CostModel(ModelConfig config, Machine machine, int batchSize) {
        this(config, machine, batchSize, (double) BYTES_PER_VALUE * config.parameterCount());
    }

    /**
     * @param weightBytes bytes of every weight the linear layers and the LM head read per decode step
     *                    (float32: 4 · {@link ModelConfig#parameterCount()}; less for packed weights)
     */
    public CostModel(ModelConfig config, Machine machine, int batchSize, double weightBytes) {
        this(config, machine, batchSize, weightBytes, BYTES_PER_VALUE);
    }

    private CostModel(ModelConfig config, Machine machine, int batchSize, double weightBytes, int kvBytes) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batch size must be positive, got " + batchSize);
        }
        if (!(weightBytes > 0) || !Double.isFinite(weightBytes)) {
            throw new IllegalArgumentException("weight bytes must be a positive number, got " + weightBytes);
        }
        this.config = config;
        this.machine = machine;
        this.batchSize = batchSize;
        this.intensity = machine.flopsPerByte();
        this.weightBytes = weightBytes;
        this.kvBytes = kvBytes;
        double p = config.parameterCount();
        this.linearCost = 2 * p + intensity * weightBytes / batchSize;
    }

    /** The same model, machine, batch and weights, with KV cache entries of {@code bytes} each (4 float32, 2 float16). */
    public CostModel withKvBytes(int bytes) {
        if (bytes != 2 && bytes != 4) {
            throw new IllegalArgumentException("KV cache entries are 2 or 4 bytes, got " + bytes);
        }
        return new CostModel(config, machine, batchSize, weightBytes, bytes);
    }

    /**
     * The same model and machine at the same batch, with the linear layers' bytes those of a weight
     * format ({@link WeightFormat#weightBytes}): the cost of decoding with compressed weights.
     */
    public CostModel withWeights(WeightFormat format) {
        return new CostModel(config, machine, batchSize, weightBytes(config, format), kvBytes);
    }

    /** Bytes of every weight a decode step reads, the decoder linears in the format (see {@link WeightFormat}). */
    public static double weightBytes(ModelConfig config, WeightFormat format) {
        return format.weightBytes(config);
    }

    public ModelConfig config() {
        return config;
    }

    public Machine machine() {
        return machine;
    }

    public int batchSize() {
        return batchSize;
    }

    /** Number of layers that decode sparsely under a schedule when its budget is below the context. */
    public int sparseLayerCount(Schedule schedule) {
        int dense = 0;
        for (int layer : schedule.denseLayers()) {
            dense += layer < config.numLayers() ? 1 : 0;
        }
        return config.numLayers() - dense;
    }

    /** Effective FLOPs to seconds on this machine (compute and memory traffic not overlapped). */
    public double seconds(double effectiveFlops) {
        return effectiveFlops / machine.flopsPerSecond();
    }

    /** Linear layers' cost per decode token (effective FLOPs). */
    public double linearTokenCost() {
        return linearCost;
    }

    /** Dense attention of one layer (all KV heads) at context L, effective FLOPs. */
    public double denseAttentionLayerCost(int contextLength) {
        double l = contextLength;
        double d = config.headDim();
        double r = config.groupSize();
        double flops = 4 * r * l * d;
        double bytes = 2 * l * d * kvBytes;
        return config.numKvHeads() * (flops + intensity * bytes);
    }

    /** Sparse attention of one layer (all KV heads) at context L with budget B &lt; L, effective FLOPs. */
    public double sparseAttentionLayerCost(int contextLength, int budget) {
        if (budget >= contextLength) {
            return denseAttentionLayerCost(contextLength);
        }
        double b = budget;
        double d = config.headDim();
        double r = config.groupSize();
        double pages = contextLength / PAGE; // full pages carry landmarks
        double flops = 4 * r * b * d + 2 * pages * d;
        double bytes = 2 * b * d * kvBytes + pages * d * BYTES_PER_VALUE;
        return config.numKvHeads() * (flops + intensity * bytes);
    }

    /** Effective FLOPs of one decode step of one sequence at context L under a schedule. */
    public double decodeTokenCost(int contextLength, Schedule schedule) {
        checkContext(contextLength);
        int budget = schedule.budgetAt(contextLength);
        int sparse = budget >= contextLength ? 0 : sparseLayerCount(schedule);
        int dense = config.numLayers() - sparse;
        double cost = linearCost + dense * denseAttentionLayerCost(contextLength);
        if (sparse > 0) {
            cost += sparse * sparseAttentionLayerCost(contextLength, budget);
        }
        return cost;
    }

    /** Effective FLOPs of one dense decode step of one sequence at context L. */
    public double denseDecodeTokenCost(int contextLength) {
        return decodeTokenCost(contextLength, Schedule.dense());
    }

    /** Effective FLOPs of the dense prefill of one prompt of n tokens (see the class comment). */
    public double prefillCost(int promptLength) {
        if (promptLength < 0) {
            throw new IllegalArgumentException("prompt length must be ≥ 0, got " + promptLength);
        }
        double n = promptLength;
        double p = config.parameterCount();
        double d = config.headDim();
        double r = config.groupSize();
        double perKvHead = 4 * r * d * n * (n + 1) / 2 + intensity * 2 * n * d * kvBytes;
        double attention = (double) config.numLayers() * config.numKvHeads() * perKvHead;
        double linear = 2 * p * n + intensity * BYTES_PER_VALUE * p / batchSize;
        return promptLength == 0 ? 0 : linear + attention;
    }

    /**
     * Effective FLOPs of generating newTokens after a prompt: the prefill plus newTokens − 1 decode
     * steps at contexts promptLength + 1 … promptLength + newTokens − 1.
     */
    public double generationCost(Schedule schedule, int promptLength, int newTokens) {
        if (newTokens < 0) {
            throw new IllegalArgumentException("new tokens must be ≥ 0, got " + newTokens);
        }
        double cost = prefillCost(promptLength);
        for (int i = 1; i < newTokens; i++) {
            cost += decodeTokenCost(Math.addExact(promptLength, i), schedule);
        }
        return cost;
    }

    /** cost(dense) / cost(schedule) of generating newTokens after a prompt, prefill on both sides. */
    public double predictedSpeedup(Schedule schedule, int promptLength, int newTokens) {
        return predictedSpeedup(schedule, promptLength, newTokens, 1);
    }

    /**
     * As {@link #predictedSpeedup(Schedule, int, int)} for one of {@code sharers} samples of a
     * prompt whose prefill runs once for all of them (a GRPO group): each pays 1/sharers of it.
     */
    public double predictedSpeedup(Schedule schedule, int promptLength, int newTokens, int sharers) {
        if (sharers < 1) {
            throw new IllegalArgumentException("sharers must be >= 1, got " + sharers);
        }
        double prefill = prefillCost(promptLength);
        double sparse = generationCost(schedule, promptLength, newTokens) - prefill * (1 - 1.0 / sharers);
        double dense = generationCost(Schedule.dense(), promptLength, newTokens) - prefill * (1 - 1.0 / sharers);
        return sparse == 0 ? 1.0 : dense / sparse;
    }

    /** cost(dense) / cost(schedule) of a single decode step at context L. */
    public double predictedSpeedupAt(int contextLength, Schedule schedule) {
        return denseDecodeTokenCost(contextLength) / decodeTokenCost(contextLength, schedule);
    }

    private static void checkContext(int contextLength) {
        if (contextLength <= 0) {
            throw new IllegalArgumentException("context length must be positive, got " + contextLength);
        }
    }
}
