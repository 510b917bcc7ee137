package io.tailguard.compression;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model whose decoder linear layers are V:N:M-pruned (their channels possibly permuted, with the
 * permutation folded into the neighbouring layers); the embedding, the norms and an untied lm_head
 * stay dense float32.
 *
 * @param linears pruned layers by Hugging Face weight name
 * @param dense   every other tensor by Hugging Face name, float32 row-major
 * @param permutations the channel permutation of each fold group, for the record ({@link VnmPruner#permutationKey})
 */
public record VnmModel(ModelConfig config, VnmPattern pattern, Map<String, SparseLinear> linears,
                       Map<String, float[]> dense, Map<String, int[][]> permutations) {

    public VnmModel {
        linears = Collections.unmodifiableMap(new LinkedHashMap<>(linears));
        dense = Collections.unmodifiableMap(new LinkedHashMap<>(dense));
        permutations = Collections.unmodifiableMap(new LinkedHashMap<>(permutations));
        for (String name : ParameterShapes.of(config).keySet()) {
            if (!linears.containsKey(name) && !dense.containsKey(name)) {
                throw new IllegalArgumentException("sparse model lacks tensor " + name);
            }
        }
    }

    /** Prunes every decoder linear of {@code weights} with its mask; the rest stays dense. */
    public static VnmModel of(ModelConfig config, VnmPattern pattern, Map<String, float[]> weights,
                              Map<String, VnmMask> masks, Map<String, int[][]> permutations) {
        Map<String, SparseLinear> linears = new LinkedHashMap<>();
        Map<String, float[]> dense = new LinkedHashMap<>();
        for (String name : ParameterShapes.of(config).keySet()) {
            VnmMask mask = masks.get(name);
            if (mask != null) {
                linears.put(name, SparseLinear.of(name, weights.get(name), mask));
            } else {
                dense.put(name, weights.get(name));
            }
        }
        return new VnmModel(config, pattern, linears, dense, permutations);
    }

    /** All weights by Hugging Face name, the pruned ones dense with zeros, in {@link ParameterShapes} order. */
    public Map<String, float[]> denseWeights() {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (String name : ParameterShapes.of(config).keySet()) {
            SparseLinear s = linears.get(name);
            out.put(name, s != null ? s.dense() : dense.get(name));
        }
        return out;
    }

    /** A runnable model (dense on load, on the host). */
    public Qwen3Model toModel(Device device) {
        return Qwen3Model.create(config, denseWeights(), device);
    }

    /**
     * A runnable model whose pruned layers stay in their compressed layout ({@link Qwen3Model#packed}),
     * as {@link VnmCheckpoint#readPacked} gives for this model written and read back.
     */
    public Qwen3Model toPackedModel(Device device) {
        Map<String, io.tailguard.model.PackedLinear> packed = new LinkedHashMap<>();
        try {
            for (SparseLinear s : linears.values()) {
                packed.put(s.name(), s.toPacked());
            }
        } catch (RuntimeException e) {
            packed.values().forEach(io.tailguard.model.PackedLinear::close);
            throw e;
        }
        return Qwen3Model.packed(config, dense, packed, device);
    }

    /** What the pruned layers took as float32. */
    public long float32LinearBytes() {
        long total = 0;
        for (SparseLinear s : linears.values()) {
            total += 4L * s.mask().rows() * s.mask().cols();
        }
        return total;
    }
}
