package io.tailguard.compression;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model whose linear layers (q/k/v/o, gate/up/down of every decoder layer) are quantized; the
 * embedding, the norms and an untied lm_head stay float32, as in the YAQA paper.
 *
 * @param linears quantized layers by Hugging Face weight name
 * @param dense   every other tensor by Hugging Face name, float32 row-major
 */
public record QuantizedModel(ModelConfig config, Method method, int bits, int groupSize, long seed,
                             Map<String, QuantizedLinear> linears, Map<String, float[]> dense) {

    public QuantizedModel {
        linears = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(linears));
        dense = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(dense));
        for (String name : ParameterShapes.of(config).keySet()) {
            if (!linears.containsKey(name) && !dense.containsKey(name)) {
                throw new IllegalArgumentException("quantized model lacks tensor " + name);
            }
        }
    }

    /** All weights by Hugging Face name, dequantized, in {@link ParameterShapes} order. */
    public Map<String, float[]> dequantizedWeights() {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (String name : ParameterShapes.of(config).keySet()) {
            QuantizedLinear q = linears.get(name);
            out.put(name, q != null ? q.dequantize() : dense.get(name));
        }
        return out;
    }

    /** A runnable model with the dequantized weights (dequantized on load, on the host). */
    public Qwen3Model toModel(Device device) {
        return Qwen3Model.create(config, dequantizedWeights(), device);
    }

    /**
     * A runnable model whose quantized layers stay packed ({@link Qwen3Model#packed}), as
     * {@link QuantizedCheckpoint#readPacked} gives for this model written and read back.
     */
    public Qwen3Model toPackedModel(Device device) {
        return toPackedModel(device, io.tailguard.model.PackedLinear.Activations.FLOAT32);
    }

    /**
     * {@link #toPackedModel(Device)} whose linears multiply with {@code activations}
     * ({@link io.tailguard.model.PackedLinear.Activations#INT8}: int8 activations, which changes the
     * results; the caller's choice).
     */
    public Qwen3Model toPackedModel(Device device, io.tailguard.model.PackedLinear.Activations activations) {
        Map<String, io.tailguard.model.PackedLinear> packed = new LinkedHashMap<>();
        try {
            for (QuantizedLinear q : linears.values()) {
                packed.put(q.name(), io.tailguard.model.PackedLinear.quantized(q.rows(), q.cols(), q.bits(), q.groupSize(),
                        PackedCodes.pack(q.codes(), q.bits()), QuantizedCheckpoint.halves(q.steps()),
                        PackedCodes.packSigns(q.signsOut()), PackedCodes.packSigns(q.signsIn()), activations));
            }
        } catch (RuntimeException e) {
            packed.values().forEach(io.tailguard.model.PackedLinear::close);
            throw e;
        }
        return Qwen3Model.packed(config, dense, packed, device);
    }

    /** Bytes the quantized layers need when packed: codes at {@code bits} each, float16 steps, 1-bit signs. */
    public long packedLinearBytes() {
        long total = 0;
        for (QuantizedLinear q : linears.values()) {
            total += PackedCodes.bytesFor((long) q.rows() * q.cols(), q.bits()) + 2L * q.steps().length
                    + PackedCodes.bytesFor(q.rows(), 1) + PackedCodes.bytesFor(q.cols(), 1);
        }
        return total;
    }

    /** What the quantized layers took as float32. */
    public long float32LinearBytes() {
        long total = 0;
        for (QuantizedLinear q : linears.values()) {
            total += 4L * q.rows() * q.cols();
        }
        return total;
    }
}
