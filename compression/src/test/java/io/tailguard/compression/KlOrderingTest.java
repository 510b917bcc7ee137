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
 * 8B-12B models; a random 2-layer model only supports the ordering, and the table is printed.
 */
class KlOrderingTest {

    @Test
    void ldlqBeatsRtnAndYaqaSketchBIsNoWorseThanLdlqAtEveryWidth() {
        List<int[]> calibration = TinyModels.sequences(32, 64, 101);
        List<int[]> heldOut = TinyModels.sequences(16, 64, 202);
        try (Qwen3Model model = TinyModels.model(5)) {
            assertEquals(0.0, YaqaQuantizer.klPerToken(model, model, heldOut), 1e-6);
            StringBuilder table = new StringBuilder("bits  RTN        LDLQ       YAQA_A     YAQA_B\n");
            for (int bits : new int[] {4, 3, 2}) {
                Map<Method, Double> kl = new EnumMap<>(Method.class);
                for (Method method : Method.values()) {
                    QuantizedModel q = YaqaQuantizer.quantize(model, calibration, bits, method, 7);
                    try (Qwen3Model compressed = q.toModel(Device.cpu())) {
                        kl.put(method, YaqaQuantizer.klPerToken(model, compressed, heldOut));
                    }
                }
                table.append(String.format("%d     %.3e  %.3e  %.3e  %.3e%n", bits, kl.get(Method.RTN), kl.get(Method.LDLQ),
                        kl.get(Method.YAQA_A), kl.get(Method.YAQA_B)));
                System.out.print(table);
                assertTrue(kl.get(Method.LDLQ) < kl.get(Method.RTN), bits + " bits: " + kl);
                assertTrue(kl.get(Method.YAQA_B) <= kl.get(Method.LDLQ), bits + " bits: " + kl);
            }
        }
    }
}
