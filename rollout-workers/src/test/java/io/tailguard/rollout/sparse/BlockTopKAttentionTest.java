package io.tailguard.rollout.sparse;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.DecodeStep;
import io.tailguard.model.KvCache;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sparse kernel against brute force: the kept pages are chosen here by hand (sink page, two most
 * recent pages, top-k by q̄ · mean key over the remaining full pages), and attention is computed
 * exactly over them in double precision.
 */
class BlockTopKAttentionTest {
    static final int KVH = 2, R = 3, D = 8;
    static final ModelConfig CONFIG = new ModelConfig(31, 24, 32, 3, KVH * R, KVH, D, 1e-6, 10_000.0, 4096, true, -1);

    /** Kept page indices for one sequence and head, by brute force. */
    static TreeSet<Integer> keptPages(float[] keys, int cap, int b, int h, int len, double[] qMean, int budget) {
        return keptPages(keys, cap, KVH, D, b, h, len, qMean, budget);
    }

    static TreeSet<Integer> keptPages(float[] keys, int cap, int KVH, int D, int b, int h, int len, double[] qMean, int budget) {
        int pages = (len + 15) / 16;
        TreeSet<Integer> kept = new TreeSet<>();
        if (len <= budget || pages <= budget / 16) {
            for (int p = 0; p < pages; p++) {
                kept.add(p);
            }
            return kept;
        }
        kept.add(0);
        kept.add(pages - 1);
        kept.add(pages - 2);
        List<double[]> cand = new ArrayList<>(); // {score, page}
        for (int p = 1; p < pages - 2; p++) {
            double score = 0;
            for (int j = 0; j < D; j++) {
                double mean = 0;
                for (int t = p * 16; t < p * 16 + 16; t++) {
                    mean += keys[((b * KVH + h) * cap + t) * D + j];
                }
                score += qMean[j] * mean / 16;
            }
            cand.add(new double[] {score, p});
        }
        cand.sort((x, y) -> Double.compare(y[0], x[0]));
        for (int i = 0; i < budget / 16 - 3 && i < cand.size(); i++) {
            kept.add((int) cand.get(i)[1]);
        }
        return kept;
    }

    /** [B, kvh, r, D] output by exact attention over the brute-force kept set. */
    static double[] bruteForce(KvCache cache, int layer, float[] q, int[] lengths, int budget) {
        return bruteForce(cache, layer, q, lengths, budget, R);
    }

    static double[] bruteForce(KvCache cache, int layer, float[] q, int[] lengths, int budget, int R) {
        int cap = cache.capacity();
        int KVH = cache.numKvHeads(), D = cache.headDim();
        float[] keys = KvCache.widened(cache.keys(layer)).toFloatArray();
        float[] values = KvCache.widened(cache.values(layer)).toFloatArray();
        int b = lengths.length;
        double[] out = new double[b * KVH * R * D];
        for (int i = 0; i < b; i++) {
            for (int h = 0; h < KVH; h++) {
                double[] qMean = new double[D];
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < D; j++) {
                        qMean[j] += q[((i * KVH + h) * R + r) * D + j] / (double) R;
                    }
                }
                TreeSet<Integer> kept = keptPages(keys, cap, KVH, D, i, h, lengths[i], qMean, budget);
                List<Integer> tokens = new ArrayList<>();
                for (int p : kept) {
                    for (int t = p * 16; t < p * 16 + 16 && t < lengths[i]; t++) {
                        tokens.add(t);
                    }
                }
                for (int r = 0; r < R; r++) {
                    int qo = ((i * KVH + h) * R + r) * D;
                    double[] s = new double[tokens.size()];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int n = 0; n < tokens.size(); n++) {
                        int ko = ((i * KVH + h) * cap + tokens.get(n)) * D;
                        for (int j = 0; j < D; j++) {
                            s[n] += (double) q[qo + j] * keys[ko + j];
                        }
                        max = Math.max(max, s[n]);
                    }
                    double z = 0;
                    for (int n = 0; n < s.length; n++) {
                        s[n] = Math.exp(s[n] - max);
                        z += s[n];
                    }
                    for (int n = 0; n < s.length; n++) {
                        int vo = ((i * KVH + h) * cap + tokens.get(n)) * D;
                        for (int j = 0; j < D; j++) {
                            out[qo + j] += s[n] / z * values[vo + j];
                        }
                    }
                }
            }
        }
        return out;
    }

    static DecodeStep stepOf(NDManager m, int[] lengths) {
        int span = 0;
        for (int l : lengths) {
            span = Math.max(span, l);
        }
        float[] mask = new float[lengths.length * span];
        for (int i = 0; i < lengths.length; i++) {
            for (int j = lengths[i]; j < span; j++) {
                mask[i * span + j] = -1e30f;
            }
        }
        return new DecodeStep(lengths, span, m.create(mask, new Shape(lengths.length, 1, 1, span)), m);
    }

    void check(int[] lengths, int budget) {
        check(CONFIG, 400, lengths, budget);
    }

    /** Both implementations (the native one where it is loaded) against brute force, every layer. */
    static void check(ModelConfig config, int capacity, int[] lengths, int budget) {
        check(config, capacity, lengths, budget, DataType.FLOAT32);
    }

    /** As above with a cache of the given element type (the brute force reads the values as stored, widened). */
    static void check(ModelConfig config, int capacity, int[] lengths, int budget, DataType cacheType) {
        int kvh = config.numKvHeads(), r = config.numHeads() / kvh, d = config.headDim();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
             KvCache cache = new KvCache(m, config, lengths.length, capacity, cacheType)) {
            cache.fillSynthetic(17, lengths);
            Random rnd = new Random(budget * 31L + lengths[0]);
            float[] q = new float[lengths.length * kvh * r * d];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextGaussian();
            }
            NDArray qArr = m.create(q, new Shape(lengths.length, kvh, r, d));
            for (boolean nativeKernel : kernels()) {
                for (boolean wide : nativeKernel ? loops() : new boolean[] {true}) {
                    boolean before = NativeBlockTopK.wide;
                    NativeBlockTopK.wide = wide;
                    try {
                        BlockTopKAttention sparse = new BlockTopKAttention(len -> budget, Set.of(0, 1), nativeKernel);
                        assertEquals(nativeKernel, sparse.usesNativeKernel());
                        DecodeStep step = stepOf(m, lengths);
                        for (int layer = 0; layer < config.numLayers(); layer++) {
                            float[] got = sparse.decode(layer, qArr, cache, step).toFloatArray();
                            double[] want = layer < 2
                                    ? toDouble(AttentionKernel.DENSE.decode(layer, qArr, cache, step).toFloatArray())
                                    : bruteForce(cache, layer, q, lengths, budget, r);
                            for (int i = 0; i < got.length; i++) {
                                assertEquals(want[i], got[i], 1e-4, (nativeKernel ? (wide ? "native AVX-512" : "native AVX2") : "torch")
                                        + " layer " + layer + " element " + i);
                            }
                        }
                    } finally {
                        NativeBlockTopK.wide = before;
                    }
                }
            }
        }
    }

    /** The native kernel's loops to test: AVX2 always, AVX-512 where this CPU has it. */
    static boolean[] loops() {
        return NativeBlockTopK.wideVectors() ? new boolean[] {false, true} : new boolean[] {false};
    }

    /** The implementations to test: libtorch always, native where it is loaded (CI requires it). */
    static boolean[] kernels() {
        return NativeBlockTopK.LIBRARY.loaded() ? new boolean[] {false, true} : new boolean[] {false};
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void smallBudgetAttendsExactlyOverSinkRecentAndTopKPages() {
        check(new int[] {200, 131, 391}, 48);   // k = 0: the forced pages only
        check(new int[] {200, 131, 391}, 64);   // k = 1
        check(new int[] {200, 131, 391}, 112);  // k = 4
    }

    @Test
    void sequencesShorterThanTheBudgetStayDenseInAMixedBatch() {
        check(new int[] {40, 300, 96}, 96);
    }

    @Test
    void denseLayersAndShortContextsUseDenseAttention() {
        check(new int[] {48, 33, 10}, 64);
    }

    @Test
    void theKernelOfAScheduleKeepsTheSchedulesDenseLayersDense() {
        int[] lengths = {200, 131, 391};
        int last = CONFIG.numLayers() - 1;
        Schedule s = Schedule.fixed(48).withDenseLayers(Set.of(last));
        int kvh = CONFIG.numKvHeads(), r = CONFIG.numHeads() / kvh, d = CONFIG.headDim();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
             KvCache cache = new KvCache(m, CONFIG, lengths.length, 400)) {
            cache.fillSynthetic(17, lengths);
            Random rnd = new Random(5);
            float[] q = new float[lengths.length * kvh * r * d];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextGaussian();
            }
            NDArray qArr = m.create(q, new Shape(lengths.length, kvh, r, d));
            DecodeStep step = stepOf(m, lengths);
            BlockTopKAttention kernel = BlockTopKAttention.of(s);
            for (int layer = 0; layer < CONFIG.numLayers(); layer++) {
                float[] got = kernel.decode(layer, qArr, cache, step).toFloatArray();
                double[] want = layer == last
                        ? toDouble(AttentionKernel.DENSE.decode(layer, qArr, cache, step).toFloatArray())
                        : bruteForce(cache, layer, q, lengths, 48, r);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(want[i], got[i], 1e-4, "layer " + layer + " element " + i);
                }
            }
        }
    }

    @Test
    void headDimsAndGroupsOffTheVectorWidth() {
        // D = 12 and 5 queries per KV head: the kernels' scalar tails
        check(new ModelConfig(31, 24, 32, 3, 10, 2, 12, 1e-6, 10_000.0, 4096, true, -1), 400, new int[] {200, 131, 391}, 64);
    }

    @Test
    void everyQueryTileOfTheWideLoop() {
        // the AVX-512 loop serves head sizes 64 (tiles of 4 queries) and 128 (tiles of 2); groups that
        // fill, split and undershoot a tile (tiles of 2 take the loop that loads each key once), and
        // partial last pages
        for (int[] shape : new int[][] {{64, 1}, {64, 3}, {64, 5}, {64, 6}, {64, 8}, {128, 1}, {128, 2}, {128, 3}}) {
            int d = shape[0], r = shape[1];
            ModelConfig c = new ModelConfig(31, 2 * d, 32, 3, 2 * r, 2, d, 1e-6, 10_000.0, 4096, true, -1);
            check(c, 400, new int[] {200, 131, 391, 16}, 64);
        }
    }

    @Test
    void aFloat16CacheIsAttendedAsStored() {
        // every loop (libtorch, native AVX2, native AVX-512) over float16 pages, D = 64 and D = 12
        check(new ModelConfig(31, 128, 32, 3, 8, 2, 64, 1e-6, 10_000.0, 4096, true, -1), 400, new int[] {200, 131, 391, 16}, 64,
                DataType.FLOAT16);
        check(new ModelConfig(31, 24, 32, 3, 10, 2, 12, 1e-6, 10_000.0, 4096, true, -1), 400, new int[] {200, 131, 391}, 64,
                DataType.FLOAT16);
    }

    @Test
    void manyPagesManyHeadsAtTheBenchmarkShapes() {
        // the small preset's head shapes (r = 4, D = 64), 4 KV heads, hundreds of candidate pages, 24 (sequence, head) pairs
        ModelConfig c = new ModelConfig(31, 64, 32, 3, 16, 4, 64, 1e-6, 10_000.0, 8192, true, -1);
        check(c, 4096, new int[] {4000, 2500, 1037, 300, 3999, 17}, 512);
    }

    @Test
    void theNativeKernelIsBuiltAndLoadedWhereRequired() {
        // CI sets TAILGUARD_REQUIRE_NATIVE=1: a build that silently lost the kernel must fail there
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_NATIVE"))) {
            assertTrue(NativeBlockTopK.LIBRARY.loaded(), "native sparse kernel not loaded: " + NativeBlockTopK.LIBRARY.unavailableReason());
            assertTrue(BlockTopKAttention.fixedBudget(64).usesNativeKernel(), "the default sparse kernel is the native one");
        }
        String before = System.getProperty(NativeBlockTopK.PROPERTY);
        try {
            System.setProperty(NativeBlockTopK.PROPERTY, "torch");
            assertFalse(BlockTopKAttention.fixedBudget(64).usesNativeKernel());
            System.setProperty(NativeBlockTopK.PROPERTY, "fast");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BlockTopKAttention.fixedBudget(64));
            assertTrue(e.getMessage().contains(NativeBlockTopK.PROPERTY), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(NativeBlockTopK.PROPERTY);
            } else {
                System.setProperty(NativeBlockTopK.PROPERTY, before);
            }
        }
    }

    @Test
    void repeatedNativeCallsAgreeBitForBit() {
        // the helper threads claim (sequence, head) items in any order; every call must give the same bits
        if (!NativeBlockTopK.LIBRARY.loaded()) {
            return;
        }
        ModelConfig c = new ModelConfig(31, 64, 32, 3, 16, 4, 64, 1e-6, 10_000.0, 8192, true, -1);
        int[] lengths = {2000, 1500, 1999, 700, 1024, 1100, 1800, 333};
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
             KvCache cache = new KvCache(m, c, lengths.length, 2048)) {
            cache.fillSynthetic(5, lengths);
            Random rnd = new Random(9);
            float[] q = new float[lengths.length * 4 * 4 * 64];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextGaussian();
            }
            NDArray qArr = m.create(q, new Shape(lengths.length, 4, 4, 64));
            BlockTopKAttention sparse = new BlockTopKAttention(len -> 256, Set.of(0, 1), true);
            float[] first = null;
            for (int call = 0; call < 300; call++) {
                try (NDManager s = m.newSubManager()) {
                    DecodeStep step = stepOf(s, lengths);
                    float[] got = sparse.decode(2, qArr, cache, step).toFloatArray();
                    if (first == null) {
                        first = got;
                    } else {
                        assertArrayEquals(first, got, "call " + call);
                    }
                }
            }
        }
    }

    @Test
    void budgetCoveringTheContextGivesTheDenseTokensAndLogprobs() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 3, 0.3, 0.1), Device.cpu())) {
            List<int[]> prompts = List.of(new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
                    new int[] {5, 4, 3});
            GenerationRequest req = new GenerationRequest(prompts, 60, SamplingParams.greedy(), Set.of(), 0);
            // libtorch's dense attention is the reference; the native kernel serves the other three
            GenerationResult dense = new Generator(model, AttentionKernel.DENSE).generate(req);
            for (AttentionKernel k : List.of(BlockTopKAttention.fixedBudget(4096), BlockTopKAttention.dense(),
                    new Generator(model).kernel(), new BlockTopKAttention(len -> 4096, Set.of(0, 1), false))) {
                GenerationResult sparse = new Generator(model, k).generate(req);
                for (int i = 0; i < prompts.size(); i++) {
                    assertArrayEquals(dense.sequences().get(i).outputIds(), sparse.sequences().get(i).outputIds());
                    assertArrayEquals(dense.sequences().get(i).logprobs(), sparse.sequences().get(i).logprobs(), 1e-5f);
                }
            }
            assertEquals(NativeBlockTopK.LIBRARY.preferred(), BlockTopKAttention.dense() instanceof BlockTopKAttention,
                    "dense() is the native kernel exactly where it is loaded");
        }
    }
}
