package io.tailguard.rollout.sparse;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Weight bytes per format, computed by hand for a small configuration: hidden 64, intermediate 128,
 * 4 layers, 4 heads and 2 KV heads of 16, vocabulary 10, tied embeddings. Its linears per layer are
 * q [64, 64], k and v [32, 64], o [64, 64], gate and up [128, 64], down [64, 128]: 36,864 weights;
 * parameterCount 148,800, of which 4 · 36,864 = 147,456 in linears and 1,344 elsewhere (5,376 bytes).
 */
class WeightFormatTest {
    static final ModelConfig CFG = new ModelConfig(10, 64, 128, 4, 4, 2, 16, 1e-6, 1e6, 4096, true, -1);

    @Test
    void plainIsFourBytesAParameterAndTheCostModelReadsEachFormatsBytes() {
        assertEquals(4.0 * 148_800, WeightFormat.plain().weightBytes(CFG), 0);
        // 1 FLOP per byte, batch 1: a decode token's linears cost 2P FLOPs + the weight bytes
        CostModel c = new CostModel(CFG, new CostModel.Machine(1e9, 1e9), 1);
        assertEquals(2 * 148_800 + 4 * 148_800, c.withWeights(WeightFormat.plain()).linearTokenCost(), 1e-6);
        assertEquals(2 * 148_800 + 88_832, c.withWeights(WeightFormat.of("rtn", 4)).linearTokenCost(), 1e-6);
    }

    @Test
    void quantizedIsCodesStepsAndSigns() {
        // 4-bit, group 32, per module: rows·cols/2 codes + 2·rows·cols/32 steps + rows/8 + cols/8 signs
        // q 2048 + 256 + 16 = 2320; k, v 1024 + 128 + 12 = 1164; o 2320; gate, up, down 4096 + 512 + 24 = 4632
        double q4 = 2320 + 1164 + 1164 + 2320 + 3 * 4632;
        assertEquals(20_864, q4, 0);
        assertEquals(5_376 + 4 * q4, WeightFormat.of("rtn", 4).weightBytes(CFG), 0);
        // 8-bit: q 4096 + 256 + 16 = 4368; k, v 2048 + 128 + 12 = 2188; o 4368; gate, up, down 8192 + 512 + 24 = 8728
        assertEquals(5_376 + 4.0 * (4368 + 2188 + 2188 + 4368 + 3 * 8728), WeightFormat.of("yaqa_b", 8).weightBytes(CFG), 0);
        assertEquals("yaqa_b8", WeightFormat.of("yaqa_b", 8).label());
        // 3 bits: 64 columns are 24 bytes a row, 128 columns 48
        double q3 = (64 * 24 + 256 + 16) + 2 * (32 * 24 + 128 + 12) + (64 * 24 + 256 + 16) + 2 * (128 * 24 + 512 + 24) + (64 * 48 + 512 + 24);
        assertEquals(5_376 + 4 * q3, WeightFormat.of("ldlq", 3).weightBytes(CFG), 0);
    }

    @Test
    void vnmIsKeptValuesPositionsAndOffsets() {
        // 16:2:16: cb = cols/16 blocks a row; 4·rows·cb·2 values, rows·cb/2 position bytes, rows/16·cb·4 offsets
        // q 2048 + 128 + 64 = 2240; k, v 1024 + 64 + 32 = 1120; o 2240; gate, up 4096 + 256 + 128 = 4480; down 4096 + 256 + 128 = 4480
        WeightFormat f = WeightFormat.of("vnm_16_2_16", 32);
        assertEquals(WeightFormat.Kind.VNM, f.kind());
        assertEquals(5_376 + 4.0 * (2240 + 1120 + 1120 + 2240 + 3 * 4480), f.weightBytes(CFG), 0);
        // the packed-linear test's case, 64 x 500 at 64:2:5: 64·100·2·4 + 64·50 + 100·4
        assertEquals(64 * 100 * 2 * 4 + 64 * 50 + 100 * 4, WeightFormat.of("vnm_64_2_5", 32).moduleBytes(64, 500), 0);
    }

    @Test
    void otherWidthsAreDenseAndBadFormatsAreRefused() {
        assertEquals(WeightFormat.Kind.DENSE, WeightFormat.of("copy", 32).kind());
        assertEquals(WeightFormat.plain().weightBytes(CFG), WeightFormat.of("copy", 32).weightBytes(CFG), 0);
        assertThrows(IllegalArgumentException.class, () -> WeightFormat.quantized("q1", 1, 32));
        assertThrows(IllegalArgumentException.class, () -> WeightFormat.vnm("v", 0, 2, 8));
    }
}
