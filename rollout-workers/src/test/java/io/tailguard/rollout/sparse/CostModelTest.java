package io.tailguard.rollout.sparse;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CostModelTest {
    // hidden 8, intermediate 16, 4 layers, 4 heads, 2 KV heads (r = 2), head dim 4, vocab 10, tied
    private static final ModelConfig TINY = new ModelConfig(10, 8, 16, 4, 4, 2, 4, 1e-6, 1e6, 4096, true, -1);
    // I = 100 / 10 = 10 FLOP per byte
    private static final CostModel.Machine MACHINE = new CostModel.Machine(100, 10);
    // Qwen3-1.7B's shape (config.json of the published model)
    private static final ModelConfig QWEN3_1_7B = new ModelConfig(151_936, 2048, 6144, 28, 16, 8, 128, 1e-6, 1e6, 40_960, true, -1);

    // P by hand: attention 8·4·4 + 2·8·2·4 + 4·4·8 + 2·4 = 392, MLP 3·8·16 = 384, norms 2·8 = 16 → 792
    // per layer; 4·792 + embedding 10·8 (tied, once) + final norm 8 = 3256.
    private static final double P = 4 * 792 + 80 + 8;
    // linear per token: 2P FLOPs + I · 4P bytes = 6512 + 130240
    private static final double LINEAR = 2 * P + 10 * 4 * P;

    /** Dense attention of one layer: 2 KV heads × (4·r·L·D FLOPs + I · 2·L·D·4 bytes), r = 2, D = 4. */
    private static double denseLayer(int l) {
        return 2 * (4.0 * 2 * l * 4 + 10 * (2.0 * l * 4 * 4));
    }

    @Test
    void packedWeightsCostTheirBytes() {
        // 4-bit packed linears read, say, 1000 bytes per step instead of 4P = 13024; batch 4:
        // 2P FLOPs + I · 1000 / 4 = 6512 + 2500
        CostModel m = new CostModel(TINY, MACHINE, 4, 1000);
        assertEquals(9012, m.linearTokenCost(), 1e-9);
        assertEquals(new CostModel(TINY, MACHINE, 4).linearTokenCost(), new CostModel(TINY, MACHINE, 4, 4 * P).linearTokenCost(), 1e-9);
        // the attention terms do not change
        assertEquals(9012 + 4 * denseLayer(64), m.denseDecodeTokenCost(64), 1e-6);
        assertThrows(IllegalArgumentException.class, () -> new CostModel(TINY, MACHINE, 4, 0));
    }

    @Test
    void tinyConfigCostsMatchHandArithmetic() {
        assertEquals(3256, TINY.parameterCount());
        assertEquals(136_752, LINEAR, 0);
        CostModel m = new CostModel(TINY, MACHINE);
        assertEquals(136_752, m.linearTokenCost(), 1e-9);
        // dense at L = 64, per KV head: 4·2·64·4 = 2048 FLOPs, 2·64·4 values · 4 B = 2048 B → 2048 + 20480
        // = 22528; × 2 KV heads = 45056 per layer; × 4 layers = 180224; + linear
        assertEquals(45_056, m.denseAttentionLayerCost(64), 1e-9);
        assertEquals(136_752 + 180_224, m.denseDecodeTokenCost(64), 1e-9);
        // budget 48 at L = 64, per KV head: FLOPs 4·2·48·4 + 2·(64/16)·4 = 1536 + 32 = 1568;
        // bytes (2·48·4 + 4·4)·4 = 1600 → 1568 + 16000 = 17568; × 2 KV heads = 35136 per layer.
        // Layers 0 and 1 dense: 136752 + 2·45056 + 2·35136 = 297136
        assertEquals(35_136, m.sparseAttentionLayerCost(64, 48), 1e-9);
        assertEquals(297_136, m.decodeTokenCost(64, Schedule.fixed(48)), 1e-9);
        assertEquals(316_976.0 / 297_136.0, m.predictedSpeedupAt(64, Schedule.fixed(48)), 1e-12);
    }

    @Test
    void budgetAtLeastTheContextIsDense() {
        CostModel m = new CostModel(TINY, MACHINE);
        assertEquals(m.denseDecodeTokenCost(48), m.decodeTokenCost(48, Schedule.fixed(48)), 0);
        assertEquals(m.denseDecodeTokenCost(40), m.decodeTokenCost(40, Schedule.fixed(48)), 0);
        assertTrue(m.decodeTokenCost(128, Schedule.fixed(48)) < m.denseDecodeTokenCost(128));
        // just past the budget, landmark scoring costs more than the tokens it saves (L = 49, 3 pages:
        // sparse 2·(1560 + 10·1584) = 34800 per layer vs dense 2·(1568 + 10·1568) = 34496)
        assertEquals(34_800, m.sparseAttentionLayerCost(49, 48), 1e-9);
        assertEquals(34_496, m.denseAttentionLayerCost(49), 1e-9);
    }

    @Test
    void prefillAndGenerationCostsMatchHandArithmetic() {
        CostModel m = new CostModel(TINY, MACHINE);
        // prefill of 3 tokens: linear 2P·3 + I·4P = 19536 + 130240 = 149776; attention per KV head
        // 4·r·D·n(n+1)/2 + I·2·n·D·4 = 4·2·4·6 + 10·96 = 1152; × 4 layers × 2 KV heads = 9216
        assertEquals(149_776 + 9_216, m.prefillCost(3), 1e-9);
        // 3 new tokens: prefill + decode steps at L = 4 and 5; dense decode = 136752 + 8·(32 + 320)·L
        double expected = 158_992 + (136_752 + 2_816 * 4) + (136_752 + 2_816 * 5);
        assertEquals(457_840, expected, 0);
        assertEquals(expected, m.generationCost(Schedule.dense(), 3, 3), 1e-9);
        assertEquals(denseLayer(5), m.denseAttentionLayerCost(5), 1e-9);
    }

    @Test
    void batchingSharesTheWeightRead() {
        CostModel m = new CostModel(TINY, MACHINE, 4);
        // 2P + I·4P/4 = 6512 + 32560
        assertEquals(39_072, m.linearTokenCost(), 1e-9);
    }

    @Test
    void denseScheduleHasSpeedupOne() {
        CostModel m = new CostModel(QWEN3_1_7B, CostModel.Machine.DEFAULT);
        assertEquals(1.0, m.predictedSpeedup(Schedule.dense(), 1024, 4096), 1e-12);
        assertEquals(1.0, m.predictedSpeedupAt(30_000, Schedule.dense()), 1e-12);
        assertEquals(1.0, m.predictedSpeedup(Schedule.fixed(1 << 20), 512, 2048), 1e-12);
    }

    @Test
    void samplesSharingAPromptPayAShareOfItsPrefill() {
        CostModel m = new CostModel(QWEN3_1_7B, CostModel.Machine.DEFAULT, 16);
        Schedule s = Schedule.fixed(256);
        int prompt = 700;
        int tokens = 130;
        double dense = 0;
        double sparse = 0;
        for (int i = 1; i < tokens; i++) {
            dense += m.decodeTokenCost(prompt + i, Schedule.dense());
            sparse += m.decodeTokenCost(prompt + i, s);
        }
        double prefill = m.prefillCost(prompt);
        assertEquals((dense + prefill / 8) / (sparse + prefill / 8), m.predictedSpeedup(s, prompt, tokens, 8), 1e-9);
        assertEquals(m.predictedSpeedup(s, prompt, tokens), m.predictedSpeedup(s, prompt, tokens, 1), 1e-12);
        assertTrue(m.predictedSpeedup(s, prompt, tokens, 8) > m.predictedSpeedup(s, prompt, tokens, 1),
                "a shared prefill leaves decode, where the schedule saves, a larger share");
        assertEquals(1.0, m.predictedSpeedup(Schedule.dense(), prompt, tokens, 8), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> m.predictedSpeedup(s, prompt, tokens, 0));
    }

    @Test
    void speedupGrowsWithContextAtAFixedBudget() {
        CostModel m = new CostModel(QWEN3_1_7B, CostModel.Machine.DEFAULT, 8);
        Schedule s = Schedule.fixed(1024);
        double previous = 1.0;
        for (int l = 2048; l <= 32_768; l *= 2) {
            double at = m.predictedSpeedupAt(l, s);
            assertTrue(at > previous, "speedup at " + l + " = " + at + " not above " + previous);
            previous = at;
        }
        assertTrue(m.predictedSpeedup(s, 256, 16_384) > m.predictedSpeedup(s, 256, 4096));
    }

    @Test
    void denseLayersReduceTheSpeedup() {
        Schedule s = Schedule.fixed(512);
        int l = 16_384;
        CostModel m = new CostModel(TINY, MACHINE, 1);
        double none = m.predictedSpeedupAt(l, s.withDenseLayers(Set.of()));
        double two = m.predictedSpeedupAt(l, s.withDenseLayers(Set.of(0, 1)));
        double three = m.predictedSpeedupAt(l, s.withDenseLayers(Set.of(0, 1, 3)));
        double all = m.predictedSpeedupAt(l, s.withDenseLayers(Set.of(0, 1, 2, 3, 99)));
        assertTrue(none > two && two > three && three > all, none + " " + two + " " + three + " " + all);
        assertEquals(1.0, all, 1e-12);
        assertEquals(two, new CostModel(TINY, MACHINE).predictedSpeedupAt(l, s), 0, "default dense layers {0, 1}");
        assertEquals(TINY.numLayers() - 3, m.sparseLayerCount(s.withDenseLayers(Set.of(0, 1, 3, 99))), "layers beyond the model are ignored");
    }

    @Test
    void publishedScheduleIsPredictedFasterThanDense() {
        CostModel m = new CostModel(QWEN3_1_7B, CostModel.Machine.DEFAULT, 8);
        Schedule published = Schedule.ofBins(2048, new int[] {512, 1024, 1536, 1536, 2048, 2560, 3072, 3584, 3584, 4096});
        double speedup = m.predictedSpeedup(published, 512, 32_768);
        assertTrue(speedup > 1.2 && speedup < 20, "speedup " + speedup);
    }

    @Test
    void secondsDivideByTheFlopRate() {
        CostModel m = new CostModel(TINY, MACHINE);
        assertEquals(3.0, m.seconds(300), 1e-12);
    }

    @Test
    void machineFileRoundTripsAndDefaultsWhenMissing(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("sub/machine.json");
        assertEquals(CostModel.Machine.DEFAULT, CostModel.Machine.loadOrDefault(file));
        CostModel.Machine measured = new CostModel.Machine(1.234e12, 5.5e10);
        measured.save(file);
        assertEquals(measured, CostModel.Machine.load(file));
        assertEquals(measured, CostModel.Machine.loadOrDefault(file));
        assertEquals(1.234e12 / 5.5e10, measured.flopsPerByte(), 1e-9);
    }

    @Test
    void badMachineFilesAreRefusedNamingTheKey(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("m.json");
        Files.writeString(f, "{\"format\": 1, \"flops_per_second\": 1e9}");
        assertTrue(message(f).contains("bytes_per_second"));
        Files.writeString(f, "{\"format\": 1, \"flops_per_second\": 1e9, \"bytes_per_second\": -1}");
        assertTrue(message(f).contains("bytes_per_second"));
        Files.writeString(f, "{\"format\": 1, \"flops_per_second\": 1e9, \"bytes_per_second\": 1e9, \"flops\": 2}");
        assertTrue(message(f).contains("flops: unknown key"));
        Files.writeString(f, "{\"format\": 2, \"flops_per_second\": 1e9, \"bytes_per_second\": 1e9}");
        assertTrue(message(f).contains("format"));
        Files.writeString(f, "not json");
        assertTrue(message(f).startsWith(f.toString()));
        assertThrows(IllegalArgumentException.class, () -> new CostModel.Machine(0, 1));
    }

    private static String message(Path f) {
        String msg = assertThrows(IllegalArgumentException.class, () -> CostModel.Machine.load(f)).getMessage();
        assertTrue(!msg.contains("\n") && msg.startsWith(f.toString()), msg);
        return msg;
    }
}
