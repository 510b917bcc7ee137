package io.tailguard.rollout.sparse;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.DecodeStep;
import io.tailguard.model.Devices;
import io.tailguard.model.KvCache;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The path a GPU takes, run on the CPU: with {@code -Dtailguard.sparse.kernel=torch} and
 * {@code -Dtailguard.decode.kernel=torch} a decode step runs the libtorch decoder layer and the
 * libtorch Block-Top-k kernel, the same tensor ops a GPU runs (the native C kernels serve only float32
 * host memory, {@link NativeBlockTopK#serves}). Here that path is compared with the native one, and
 * shown to read only the kept pages. The tests marked GPU run the same on {@code gpu:0} and skip with
 * a one-line reason where libtorch sees no GPU.
 */
class DevicePathTest {
    /** GQA 3, head size 16, four layers: two dense (0, 1), two sparse. */
    static final ModelConfig CONFIG = new ModelConfig(97, 48, 80, 4, 6, 2, 16, 1e-6, 10_000.0, 4096, false, -1);
    /** 80 tokens: the sink, the two recent pages and 2 pages chosen by score. */
    static final int BUDGET = 80;
    static final int NEW_TOKENS = 24;

    /**
     * Native against libtorch, one float32 model on the CPU: the same arithmetic in another order
     * (AVX2/FMA loops against oneDNN/MKL products), about 1e-6 relative per product (NativeDecodeTest
     * holds the layers to 1e-5 of the logits' scale). Over 24 steps of four layers log-probs of order
     * 1-10 could differ by ~1e-5 (2e-6 was seen); 1e-4 leaves room, and is a tenth of the GPU's bound below.
     */
    static final double CPU_TOLERANCE = 1e-4;
    /**
     * A GPU against the CPU's libtorch path: the bound for F32 parity on a GPU. cuBLAS
     * reduces in another order and tiles; TF32 is off for float32 products in libtorch by default.
     */
    static final double GPU_TOLERANCE = 1e-3;

    @AfterEach
    void clearProperties() {
        System.clearProperty(NativeBlockTopK.PROPERTY);
        System.clearProperty("tailguard.decode.kernel");
    }

    /** Prompts long enough to be sparse under the budget, of unequal lengths, one repeated (a GRPO group's prefill once). */
    static List<int[]> prompts() {
        Random r = new Random(5);
        List<int[]> out = new ArrayList<>();
        for (int len : new int[] {150, 211, 97}) {
            int[] p = new int[len];
            for (int i = 0; i < len; i++) {
                p[i] = r.nextInt(CONFIG.vocabSize());
            }
            out.add(p);
        }
        out.add(out.get(0));
        return out;
    }

    static Map<String, float[]> weights() {
        return RandomInit.weights(CONFIG, 23, 0.25, 0.2);
    }

    /** Rolls out greedily and sampled (T = 1) with Block-Top-k under {@link #BUDGET}, on the kernels the properties choose. */
    static List<GenerationResult> rollout(Device device, String kernels) {
        System.setProperty(NativeBlockTopK.PROPERTY, kernels);
        System.setProperty("tailguard.decode.kernel", kernels);
        try (Qwen3Model model = Qwen3Model.create(CONFIG, weights(), device)) {
            assertEquals(device, model.manager().getDevice());
            Generator gen = new Generator(model, BlockTopKAttention.fixedBudget(BUDGET));
            List<GenerationResult> out = new ArrayList<>();
            for (SamplingParams p : List.of(SamplingParams.greedy(), new SamplingParams(1.0, 1.0, 0, 7L))) {
                out.add(gen.generate(new GenerationRequest(prompts(), NEW_TOKENS, p, Set.of(), 0)));
            }
            return out;
        }
    }

    static void assertSameRollouts(List<GenerationResult> want, List<GenerationResult> got, double tolerance, String what) {
        for (int r = 0; r < want.size(); r++) {
            for (int i = 0; i < want.get(r).sequences().size(); i++) {
                var w = want.get(r).sequences().get(i);
                var g = got.get(r).sequences().get(i);
                String where = what + (r == 0 ? ", greedy" : ", sampled") + ", sequence " + i;
                assertArrayEquals(w.outputIds(), g.outputIds(), where + ": tokens");
                double diff = 0;
                for (int t = 0; t < w.logprobs().length; t++) {
                    diff = Math.max(diff, Math.abs(w.logprobs()[t] - g.logprobs()[t]));
                }
                assertTrue(diff <= tolerance, where + ": max |Δ log-prob| " + diff + " > " + tolerance);
            }
        }
    }

    @Test
    void theLibtorchPathRollsOutAsTheNativePathDoes() {
        Assumptions.assumeTrue(NativeBlockTopK.LIBRARY.loaded(),
                "the native sparse kernel is not loaded here (" + NativeBlockTopK.LIBRARY.unavailableReason() + "): nothing to compare with");
        List<GenerationResult> nat = rollout(Device.cpu(), "native");
        List<GenerationResult> torch = rollout(Device.cpu(), "torch");
        assertEquals(NEW_TOKENS, torch.get(0).sequences().get(0).outputIds().length, "no early stop: every step compared");
        assertSameRollouts(nat, torch, CPU_TOLERANCE, "libtorch path against the native one");
    }

    @Test
    void theNativeKernelsServeOnlyFloat32HostTensors() {
        assertTrue(NativeBlockTopK.serves(Device.cpu(), DataType.FLOAT32, 16));
        assertFalse(NativeBlockTopK.serves(Device.gpu(0), DataType.FLOAT32, 16), "a GPU tensor never reaches the C kernel");
        assertFalse(NativeBlockTopK.serves(Device.gpu(1), DataType.FLOAT32, 16));
        assertFalse(NativeBlockTopK.serves(Device.cpu(), DataType.FLOAT16, 16));
        assertFalse(NativeBlockTopK.serves(Device.cpu(), DataType.FLOAT32, 65_536));
    }

    /**
     * Keys and values of every page the kernel must not keep are NaN: a kernel that attended over
     * the whole cache and masked the rest would return NaN (0 · NaN is NaN), one that gathers the
     * kept pages returns the brute-force attention over them. Every sequence is longer than the
     * budget, so each keeps the same number of pages and the gather holds no padding page. The
     * landmarks are those of the clean keys (computed before the poison), so the choice is unchanged.
     */
    @Test
    void sparseLayersReadOnlyTheKeptPages() {
        ModelConfig config = BlockTopKAttentionTest.CONFIG;
        int kvh = config.numKvHeads();
        int r = config.numHeads() / kvh;
        int d = config.headDim();
        int budget = 64;
        int[] lengths = {300, 251, 190};
        int layer = 2;
        for (boolean nativeKernel : BlockTopKAttentionTest.kernels()) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                 KvCache cache = new KvCache(m, config, lengths.length, 320)) {
                cache.fillSynthetic(3, lengths);
                Random rnd = new Random(9);
                float[] q = new float[lengths.length * kvh * r * d];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                double[] want = BlockTopKAttentionTest.bruteForce(cache, layer, q, lengths, budget, r);
                float[] keys = cache.keys(layer).toFloatArray();
                int cap = cache.capacity();
                int poisoned = 0;
                for (int b = 0; b < lengths.length; b++) {
                    int pages = (lengths[b] + 15) / 16;
                    for (int h = 0; h < kvh; h++) {
                        double[] qMean = new double[d];
                        for (int j = 0; j < r; j++) {
                            for (int k = 0; k < d; k++) {
                                qMean[k] += q[((b * kvh + h) * r + j) * d + k] / (double) r;
                            }
                        }
                        TreeSet<Integer> kept = BlockTopKAttentionTest.keptPages(keys, cap, kvh, d, b, h, lengths[b], qMean, budget);
                        assertEquals(budget / 16, kept.size(), "sequence " + b + " keeps budget/16 pages");
                        for (int p = 0; p < pages; p++) {
                            if (!kept.contains(p)) {
                                NDIndex page = new NDIndex("{}, {}, {}:{}", b, h, p * 16, p * 16 + 16);
                                cache.keys(layer).set(page, Float.NaN);
                                cache.values(layer).set(page, Float.NaN);
                                poisoned++;
                            }
                        }
                        NDIndex beyond = new NDIndex("{}, {}, {}:", b, h, pages * 16);
                        cache.keys(layer).set(beyond, Float.NaN);
                        cache.values(layer).set(beyond, Float.NaN);
                    }
                }
                assertTrue(poisoned > 20, "most pages are poisoned: " + poisoned);
                NDArray qArr = m.create(q, new Shape(lengths.length, kvh, r, d));
                DecodeStep step = BlockTopKAttentionTest.stepOf(m, lengths);
                float[] full = AttentionKernel.DENSE.decode(layer, qArr, cache, step).toFloatArray();
                assertTrue(Float.isNaN(full[0]), "attention over the whole cache sees the poison (the test can tell)");
                BlockTopKAttention sparse = new BlockTopKAttention(len -> budget, Set.of(), nativeKernel);
                float[] got = sparse.decode(layer, qArr, cache, step).toFloatArray();
                String what = nativeKernel ? "native" : "torch";
                for (int i = 0; i < got.length; i++) {
                    assertEquals(want[i], got[i], 1e-4, what + " element " + i);
                }
            }
        }
    }

    /** GPU: the same rollouts on gpu:0 (model, KV caches, every step's tensors) as the CPU's libtorch path. */
    @Test
    void gpuRolloutMatchesTheCpuPath() {
        Assumptions.assumeTrue(Devices.gpuCount() > 0, "no GPU: libtorch sees none (the CPU build, or no CUDA driver)");
        List<GenerationResult> cpu = rollout(Device.cpu(), "torch");
        // "native" on the GPU: the kernels' own rule must send GPU tensors to libtorch
        List<GenerationResult> gpu = rollout(Device.gpu(0), "native");
        assertSameRollouts(cpu, gpu, GPU_TOLERANCE, "gpu:0 against the CPU's libtorch path");
    }

    /** GPU: one sparse step's attention on gpu:0 against brute force over the kept pages. */
    @Test
    void gpuSparseStepMatchesBruteForce() {
        Assumptions.assumeTrue(Devices.gpuCount() > 0, "no GPU: libtorch sees none (the CPU build, or no CUDA driver)");
        ModelConfig config = BlockTopKAttentionTest.CONFIG;
        int kvh = config.numKvHeads();
        int r = config.numHeads() / kvh;
        int d = config.headDim();
        int[] lengths = {300, 251, 37};
        int budget = 64;
        try (NDManager m = NDManager.newBaseManager(Device.gpu(0));
             KvCache cache = new KvCache(m, config, lengths.length, 320)) {
            cache.fillSynthetic(17, lengths);
            assertTrue(cache.keys(2).getDevice().isGpu(), "the cache lives on the GPU");
            Random rnd = new Random(4);
            float[] q = new float[lengths.length * kvh * r * d];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextGaussian();
            }
            BlockTopKAttention sparse = new BlockTopKAttention(len -> budget, Set.of(), true);
            DecodeStep step = BlockTopKAttentionTest.stepOf(m, lengths);
            NDArray out = sparse.decode(2, m.create(q, new Shape(lengths.length, kvh, r, d)), cache, step);
            assertTrue(out.getDevice().isGpu(), "the output stays on the GPU");
            double[] want = BlockTopKAttentionTest.bruteForce(cache, 2, q, lengths, budget, r);
            float[] got = out.toFloatArray();
            for (int i = 0; i < got.length; i++) {
                assertEquals(want[i], got[i], 1e-4, "element " + i);
            }
        }
    }
}
