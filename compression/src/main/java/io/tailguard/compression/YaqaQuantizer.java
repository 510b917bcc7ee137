package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Post-training quantization of every linear layer of a Qwen3 model: RTN, LDLQ, or YAQA with
 * Sketch A or B factors (docs/algorithms.md, "YAQA, LDLQ and RTN"), all with the same incoherence processing and the same
 * per-group scalar quantizer, so the methods differ only in how they round.
 *
 * <p>Factors come from the original model in one sweep (each layer's Hessian is taken at the
 * unquantized network, as in the paper), then layers are rounded independently.
 */
public final class YaqaQuantizer {
    /** Group size along the input dimension: two 16-wide tiles, 0.5 bit/weight of float16 scales. */
    public static final int DEFAULT_GROUP_SIZE = 32;
    /** Sketch A power-iteration rounds after the H_I = Σ x xᵀ start (two passes each). */
    public static final int DEFAULT_SKETCH_A_ROUNDS = 1;

    private static final long LABEL_STREAM = 0x5DEECE66DL;

    /** The quantized model and each layer's proxy error tr(ΔW H_I ΔWᵀ H_O) under its prepared factors. */
    public record Result(QuantizedModel model, Map<String, Double> proxyErrors) {}

    private YaqaQuantizer() {}

    public static QuantizedModel quantize(Qwen3Model model, List<int[]> calibration, int bits, Method method, long seed) {
        return quantize(model, calibration, bits, method, seed, DEFAULT_GROUP_SIZE).model();
    }

    public static Result quantize(Qwen3Model model, List<int[]> calibration, int bits, Method method, long seed,
                                  int groupSize) {
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("bits must be in 2..8, got " + bits);
        }
        if (method != Method.RTN) {
            Calibration.require(model, calibration, method + " needs calibration sequences, got none");
        } else if (calibration != null) {
            Calibration.check(model, calibration);
        }
        return quantize(model, sketch(model, calibration, method, seed), bits, method, seed, groupSize);
    }

    /** The Hessian factors a method needs (null for RTN), from the original model. */
    static HessianSketch sketch(Qwen3Model model, List<int[]> calibration, Method method, long seed) {
        // Labels draw from a stream of their own, unrelated to the incoherence signs' stream.
        long labelSeed = new SplittableRandom(seed ^ LABEL_STREAM).nextLong();
        return switch (method) {
            case RTN -> null;
            case LDLQ -> HessianSketch.inputsOnly(model, calibration);
            case YAQA_A -> HessianSketch.sketchA(model, calibration, labelSeed, DEFAULT_SKETCH_A_ROUNDS);
            case YAQA_B -> HessianSketch.sketchB(model, calibration, labelSeed);
        };
    }

    /** Rounds every linear layer with precomputed factors (one sketch can serve several widths). */
    static Result quantize(Qwen3Model model, HessianSketch sketch, int bits, Method method, long seed, int groupSize) {
        ModelConfig c = model.config();
        SplittableRandom root = new SplittableRandom(seed);
        Map<String, float[]> host = model.hostWeights();
        Map<String, long[]> shapes = ParameterShapes.of(c);
        Map<String, QuantizedLinear> linears = new LinkedHashMap<>();
        Map<String, Double> proxy = new LinkedHashMap<>();
        for (String name : TappedForward.linearNames(c)) {
            int rows = (int) shapes.get(name)[0];
            int cols = (int) shapes.get(name)[1];
            double[][] hIn = sketch == null ? null : sketch.in().get(name);
            double[][] hOut = sketch == null ? null : sketch.out().get(name);
            LayerQuantizer.Outcome o = LayerQuantizer.quantize(name, host.get(name), rows, cols, hIn, hOut, bits,
                    groupSize, root.split());
            linears.put(name, o.layer());
            proxy.put(name, o.proxyError());
        }
        Map<String, float[]> dense = new LinkedHashMap<>();
        host.forEach((name, v) -> {
            if (!linears.containsKey(name)) {
                dense.put(name, v);
            }
        });
        return new Result(new QuantizedModel(c, method, bits, groupSize, seed, linears, dense), proxy);
    }
}
