package io.tailguard.actors.runtime;

import ai.djl.Device;
import io.tailguard.compression.Method;
import io.tailguard.compression.QuantizedModel;
import io.tailguard.compression.VnmModel;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.compression.YaqaQuantizer;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.rollout.sparse.WeightFormat;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Two places count a compressed option's weight bytes: the approximation budget prices a format
 * before any version of it is loaded ({@link WeightFormat#weightBytes}), and a rollout worker prices
 * the packed actor it holds from its bytes in memory ({@code Qwen3Model.linearBytes}, in the in-run
 * speedup's prediction). They must agree, or the option chosen and the option measured are priced
 * apart: checked on packed models the compression code builds, for each kind of format.
 */
class WeightBytesAgreementTest {
    /** Hidden 64, intermediate 128, 4 layers: every linear a whole number of quantization groups and V:N:M blocks. */
    static final ModelConfig CFG = new ModelConfig(10, 64, 128, 4, 4, 2, 16, 1e-6, 1e6, 4096, true, -1);

    private static double inMemory(Qwen3Model dense, Qwen3Model packed) {
        return 4.0 * dense.config().parameterCount() - dense.linearBytes() + packed.linearBytes();
    }

    @Test
    void theFormulaAndThePackedActorsInMemoryCountAgree() {
        try (Qwen3Model source = Qwen3Model.create(CFG, RandomInit.weights(CFG, 3, 0.1, 0.1), Device.cpu())) {
            for (int bits : new int[] {2, 3, 4, 8}) {
                QuantizedModel q = YaqaQuantizer.quantize(source, null, bits, Method.RTN, 1);
                try (Qwen3Model packed = q.toPackedModel(Device.cpu())) {
                    assertEquals(WeightFormat.of("rtn", bits).weightBytes(CFG), inMemory(source, packed), 0, bits + " bits");
                }
            }
            for (VnmPattern p : new VnmPattern[] {new VnmPattern(16, 2, 16), new VnmPattern(16, 2, 5), VnmPattern.TWO_FOUR}) {
                VnmModel s = VnmPruner.prune(source, null, p, VnmPruner.Score.MAGNITUDE, VnmPruner.PermutationOptions.off(), 1);
                String label = "vnm_" + p.v() + "_" + p.n() + "_" + p.m();
                try (Qwen3Model packed = s.toPackedModel(Device.cpu())) {
                    assertEquals(WeightFormat.of(label, 32).weightBytes(CFG), inMemory(source, packed), 0, label);
                }
            }
        }
    }
}
