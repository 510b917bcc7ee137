package io.tailguard.compression;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.KvCache;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.PackedLinear;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole-model decode on packed weights against the same compressed model dequantized to float32
 * (the libtorch path the compressed option loaded before): logits of every greedy step within
 * float32 rounding, and the same greedy tokens. Quantized (RTN, 4 and 3 bits) and V:N:M models, on
 * the shared tiny config and on one whose hidden size (44), intermediate size (50) and q/k/v rows
 * (108) reach the kernels' tails.
 */
class PackedDecodeTest {
    /** hidden 44, intermediate 50, 2 layers, 5 heads over 1 KV head of 12 dims: odd tails everywhere. */
    static final ModelConfig ODD = new ModelConfig(29, 44, 50, 2, 5, 1, 12, 1e-6, 10_000.0, 512, false, -1);

    @TempDir
    Path tmp;

    @BeforeEach
    void needsTheLibrary() {
        Assumptions.assumeTrue(PackedLinear.supported(), () -> "native decoder library not loaded: " + PackedLinear.unsupportedReason());
    }

    @AfterEach
    void resetKernel() {
        System.clearProperty("tailguard.decode.kernel");
    }

    /** Greedy decode of {@code steps} tokens after unequal prompts; every step's logits and the tokens. */
    private static Object[] greedy(Qwen3Model model, int steps) {
        int vocab = model.config().vocabSize();
        SplittableRandom r = new SplittableRandom(5);
        int[] lengths = {3, 21, 9};
        int t = 21;
        long[] ids = new long[lengths.length * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(vocab);
        }
        float[][] logits = new float[steps + 1][];
        long[][] tokens = new long[steps][lengths.length];
        try (NDManager m = NDManager.newBaseManager(); KvCache cache = new KvCache(m, model.config(), lengths.length, 64)) {
            float[] last = model.prefill(m.create(ids, new Shape(lengths.length, t)), lengths, cache).toFloatArray();
            logits[0] = last;
            for (int s = 0; s < steps; s++) {
                for (int b = 0; b < lengths.length; b++) {
                    tokens[s][b] = argmax(last, b * vocab, vocab);
                }
                last = model.decode(tokens[s], cache, AttentionKernel.DENSE, m).toFloatArray();
                logits[s + 1] = last;
            }
        }
        return new Object[] {logits, tokens};
    }

    private static int argmax(float[] v, int from, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[from + i] > v[from + best]) {
                best = i;
            }
        }
        return best;
    }

    private static void assertSameDecode(Qwen3Model reference, Qwen3Model packed, String what) {
        int steps = 20;   // crosses a page boundary of every sequence
        Object[] want = greedy(reference, steps);
        Object[] got = greedy(packed, steps);
        float[][] wl = (float[][]) want[0];
        float[][] gl = (float[][]) got[0];
        for (int s = 0; s <= steps; s++) {
            double scale = 0;
            double diff = 0;
            for (int i = 0; i < wl[s].length; i++) {
                scale = Math.max(scale, Math.abs(wl[s][i]));
                diff = Math.max(diff, Math.abs(wl[s][i] - gl[s][i]));
            }
            // float32 rounding only: the same weights, multiplied in another order and basis
            assertTrue(diff <= 1e-4 * Math.max(scale, 1e-3), what + ": logits of step " + s + " differ by " + diff + " at scale " + scale);
        }
        assertArrayEquals((long[][]) want[1], (long[][]) got[1], what + ": greedy tokens");
    }

    @Test
    void quantizedModelsDecodeOnPackedWeightsAsDequantized() {
        for (ModelConfig c : new ModelConfig[] {TinyModels.CONFIG, ODD}) {
            for (int bits : new int[] {4, 3, 8}) {
                QuantizedModel q;
                try (Qwen3Model source = Qwen3Model.create(c, RandomInit.weights(c, 7, 0.1, 0.1), Device.cpu())) {
                    q = YaqaQuantizer.quantize(source, null, bits, Method.RTN, 11);
                }
                try (Qwen3Model dequantized = q.toModel(Device.cpu()); Qwen3Model packed = q.toPackedModel(Device.cpu())) {
                    assertTrue(packed.isPacked());
                    assertSameDecode(dequantized, packed, "hidden " + c.hiddenSize() + ", " + bits + " bits");
                }
            }
        }
    }

    /**
     * With int8 activations (an explicit choice: it changes the results) the decode step's logits move
     * by the activations' rounding only: a little, but not nothing; the prefill (libtorch, dequantized
     * weights) is the float32 one.
     */
    @Test
    void int8ActivationModelsDecodeNearTheDequantizedModel() {
        for (int bits : new int[] {4, 8}) {
            QuantizedModel q;
            try (Qwen3Model source = Qwen3Model.create(ODD, RandomInit.weights(ODD, 7, 0.1, 0.1), Device.cpu())) {
                q = YaqaQuantizer.quantize(source, null, bits, Method.RTN, 11);
            }
            try (Qwen3Model dequantized = q.toModel(Device.cpu());
                 Qwen3Model packed = q.toPackedModel(Device.cpu(), PackedLinear.Activations.INT8)) {
                float[][] want = (float[][]) greedy(dequantized, 1)[0];
                float[][] got = (float[][]) greedy(packed, 1)[0];
                for (int s = 0; s <= 1; s++) {
                    double scale = 0;
                    double diff = 0;
                    for (int i = 0; i < want[s].length; i++) {
                        scale = Math.max(scale, Math.abs(want[s][i]));
                        diff = Math.max(diff, Math.abs(want[s][i] - got[s][i]));
                    }
                    String what = bits + " bits a8, step " + s + ": logits differ by " + diff + " at scale " + scale;
                    if (s == 0) {
                        assertTrue(diff <= 1e-4 * Math.max(scale, 1e-3), what);
                    } else {
                        assertTrue(diff > 0 && diff <= 0.05 * scale, what);
                    }
                }
            }
        }
    }

    @Test
    void vnmModelsDecodeOnPackedWeightsAsDense() {
        Object[][] cases = {{TinyModels.CONFIG, new VnmPattern(16, 2, 5)}, {TinyModels.CONFIG, VnmPattern.TWO_FOUR},
                {ODD, new VnmPattern(2, 2, 5)}};
        for (Object[] cs : cases) {
            ModelConfig c = (ModelConfig) cs[0];
            VnmPattern p = (VnmPattern) cs[1];
            VnmModel s;
            try (Qwen3Model source = Qwen3Model.create(c, RandomInit.weights(c, 9, 0.1, 0.1), Device.cpu())) {
                s = VnmPruner.prune(source, null, p, VnmPruner.Score.MAGNITUDE, VnmPruner.PermutationOptions.off(), 1);
            }
            try (Qwen3Model dense = s.toModel(Device.cpu()); Qwen3Model packed = s.toPackedModel(Device.cpu())) {
                assertSameDecode(dense, packed, "hidden " + c.hiddenSize() + ", " + p);
            }
        }
    }

    @Test
    void checkpointsLoadPackedAndTheLibtorchStepDequantizesPerProduct() {
        QuantizedModel q;
        VnmModel s;
        try (Qwen3Model source = TinyModels.model(4)) {
            q = YaqaQuantizer.quantize(source, null, 4, Method.RTN, 2);
            s = VnmPruner.prune(source, null, new VnmPattern(16, 2, 5), VnmPruner.Score.MAGNITUDE,
                    VnmPruner.PermutationOptions.off(), 1);
        }
        QuantizedCheckpoint.write(tmp.resolve("q"), q, 3, "p");
        VnmCheckpoint.write(tmp.resolve("v"), s, null, 3, "p");
        try (Qwen3Model dq = q.toModel(Device.cpu()); Qwen3Model pq = CompressedCheckpoints.load(tmp.resolve("q"), Device.cpu());
             Qwen3Model dv = s.toModel(Device.cpu()); Qwen3Model pv = CompressedCheckpoints.load(tmp.resolve("v"), Device.cpu())) {
            assertTrue(pq.isPacked() && pv.isPacked());
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> io.tailguard.model.lora.LoraAdapter.create(pq, io.tailguard.model.lora.LoraConfig.defaults(), 1));
            assertTrue(e.getMessage().contains("packed"), e.getMessage());
            // 4-bit codes, float16 steps per 32 columns and 1-bit signs, against float32
            assertTrue(pq.linearBytes() * 6 < dq.linearBytes(), pq.linearBytes() + " vs " + dq.linearBytes());
            // 16:2:5 keeps 2 float32 values of 5 columns, with 4 bits of positions: under half
            assertTrue(pv.linearBytes() * 2 < dv.linearBytes(), pv.linearBytes() + " vs " + dv.linearBytes());
            assertSameDecode(dq, pq, "quant.json checkpoint");
            assertSameDecode(dv, pv, "vnm.json checkpoint");
            System.setProperty("tailguard.decode.kernel", "torch");
            assertSameDecode(dq, pq, "quant.json checkpoint, libtorch step");
            Map<String, float[]> back = pq.hostWeights();
            Map<String, float[]> want = q.dequantizedWeights();
            for (String name : want.keySet()) {
                float[] a = want.get(name);
                float[] b = back.get(name);
                assertEquals(a.length, b.length, name);
                for (int i = 0; i < a.length; i++) {
                    assertTrue(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(a[i])), name + " at " + i + ": " + b[i] + " vs " + a[i]);
                }
            }
        }
        assertEquals(Arrays.asList(true, true), Arrays.asList(CompressedCheckpoints.isCompressed(tmp.resolve("q")),
                CompressedCheckpoints.isCompressed(tmp.resolve("v"))));
    }
}
