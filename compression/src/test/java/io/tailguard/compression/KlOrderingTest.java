package io.tailguard.compression;

import ai.djl.Device;
import io.tailguard.model.Qwen3Model;
import org.junit.jupiter.api.Test;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end on the tiny random model: quantize with each method at 4, 3 and 2 bits and measure
 * KL(original ‖ quantized) per token on held-out sequences. The paper's ratios come from trained
 * 8B-12B models; a random 2-layer model only supports the ordering, so only that is asserted and
 * the table is printed.
 *
 * <p>256 calibration sequences: Sketch B averages one outer product per sequence, and with 32 of
 * them its noise put it level with LDLQ at 4 and 3 bits (measured: 0.0230 vs 0.0227 at 4 bits);
 * from 128 sequences on it was below LDLQ at every width on both random models tried.
 */
class KlOrderingTest {

    @Test
    void ldlqAndYaqaSketchBBeatRoundToNearestAtEveryWidth() {
        List<int[]> calibration = TinyModels.sequences(256, 64, 101);
        List<int[]> heldOut = TinyModels.sequences(16, 64, 202);
        try (Qwen3Model model = TinyModels.model(5)) {
            assertEquals(0.0, ModelKl.perToken(model, model, heldOut), 1e-6);
            Map<Method, HessianSketch> sketches = new EnumMap<>(Method.class);
            for (Method method : List.of(Method.LDLQ, Method.YAQA_B)) {
                sketches.put(method, YaqaQuantizer.sketch(model, calibration, method, 7));
            }
            StringBuilder table = new StringBuilder("KL per token   RTN        LDLQ       YAQA_B     YAQA_B/LDLQ\n");
            for (int bits : new int[] {4, 3, 2}) {
                Map<Method, Double> kl = new EnumMap<>(Method.class);
                for (Method method : List.of(Method.RTN, Method.LDLQ, Method.YAQA_B)) {
                    QuantizedModel q = YaqaQuantizer.quantize(model, sketches.get(method), bits, method, 7,
                            YaqaQuantizer.DEFAULT_GROUP_SIZE).model();
                    try (Qwen3Model compressed = q.toModel(Device.cpu())) {
                        kl.put(method, ModelKl.perToken(model, compressed, heldOut));
                    }
                }
                table.append(String.format("%d bits         %.3e  %.3e  %.3e  %.2f%n", bits, kl.get(Method.RTN),
                        kl.get(Method.LDLQ), kl.get(Method.YAQA_B), kl.get(Method.YAQA_B) / kl.get(Method.LDLQ)));
                assertTrue(kl.get(Method.LDLQ) < kl.get(Method.RTN), bits + " bits: " + kl);
                // On this random tiny model YAQA's edge over LDLQ in KL is within the noise of
                // floating-point reduction order (0.88-0.95 with one libtorch thread, 1.09 at 4 bits
                // with two), so only the margin over RTN is asserted here; YAQA < LDLQ on the proxy
                // objective, where the margin is large, is asserted in the rounding tests.
                assertTrue(kl.get(Method.YAQA_B) < kl.get(Method.RTN), bits + " bits: " + kl);
            }
            System.out.print(table);
        }
    }

    /** Sketch A runs three passes, so it is checked once, at 3 bits, with fewer sequences. */
    @Test
    void yaqaSketchAIsBelowRoundToNearest() {
        List<int[]> calibration = TinyModels.sequences(64, 64, 101);
        List<int[]> heldOut = TinyModels.sequences(16, 64, 202);
        try (Qwen3Model model = TinyModels.model(5)) {
            double rtn;
            double a;
            try (Qwen3Model c = YaqaQuantizer.quantize(model, calibration, 3, Method.RTN, 7).toModel(Device.cpu())) {
                rtn = ModelKl.perToken(model, c, heldOut);
            }
            try (Qwen3Model c = YaqaQuantizer.quantize(model, calibration, 3, Method.YAQA_A, 7).toModel(Device.cpu())) {
                a = ModelKl.perToken(model, c, heldOut);
            }
            System.out.printf("3 bits: RTN %.3e YAQA_A %.3e%n", rtn, a);
            assertTrue(a < rtn, "YAQA_A " + a + " RTN " + rtn);
        }
    }
}
