package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native prefill attention: the kernel alone against attention computed here in double
 * precision, straight from its definition (softmax over the visible keys, then the weighted sum of
 * values); and whole-model prefill, extension and forward against the libtorch attention it
 * replaces (which IncrementalDecodeTest and TransformersParityTest tie to transformers).
 */
class NativePrefillTest {
    /** Hidden 44, head_dim 12 (a tail of every vector loop), 5 query heads on one KV head (GQA 5). */
    static final ModelConfig CONFIG = new ModelConfig(29, 44, 50, 2, 5, 1, 12, 1e-6, 10_000.0, 4096, false, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 11, 0.3, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @AfterEach
    void resetProperty() {
        System.clearProperty(NativePrefill.PROPERTY);
    }

    @Test
    void kernelRunsWhereTheBuildMustHaveIt() {
        // CI sets TAILGUARD_REQUIRE_NATIVE=1: a build that silently lost the kernel must fail there
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_NATIVE"))) {
            assertTrue(NativePrefill.preferred(), "native prefill attention not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        }
    }

    private static ByteBuffer direct(float[] a) {
        ByteBuffer b = ByteBuffer.allocateDirect(4 * a.length).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(a);
        return b;
    }

    private static float[] random(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    /**
     * Attention by its definition, in double: query (b, t, h) at position start + t sees keys
     * [0, start + t] of KV head h / r. Keys and values addressed as the kernel's strides say.
     */
    private static double[] reference(float[] q, float[] k, float[] v, long sb, long sh, long sj,
                                      int batch, int t, int start, int heads, int kvh, int d) {
        int r = heads / kvh;
        double[] out = new double[batch * t * heads * d];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < t; i++) {
                for (int h = 0; h < heads; h++) {
                    int qo = ((b * t + i) * heads + h) * d;
                    long base = b * sb + (long) (h / r) * sh;
                    int keys = start + i + 1;
                    double[] w = new double[keys];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < keys; j++) {
                        double s = 0;
                        for (int e = 0; e < d; e++) {
                            s += (double) q[qo + e] * k[(int) (base + j * sj + e)];
                        }
                        w[j] = s;
                        max = Math.max(max, s);
                    }
                    double z = 0;
                    for (int j = 0; j < keys; j++) {
                        w[j] = Math.exp(w[j] - max);
                        z += w[j];
                    }
                    for (int e = 0; e < d; e++) {
                        double o = 0;
                        for (int j = 0; j < keys; j++) {
                            o += w[j] * v[(int) (base + j * sj + e)];
                        }
                        out[qo + e] = o / z;
                    }
                }
            }
        }
        return out;
    }

    /**
     * {batch, queries, start, heads, kvHeads, headDim, cache layout (1) or a pass's own [B, T, kvh, D] (0)}.
     * Query tiles hold 4096 / headDim rows (heads × positions), key tiles 64 keys; the value and
     * score blocks are 6, 4 and 1 wide. The cases reach: partial query tiles, a single query, spans
     * of keys that are not a multiple of 64, 6 or 4, a start inside and past the first key tile,
     * GQA 1 to 5 and 8, head sizes 7, 12, 13, 64 and 128, and several sequences.
     */
    static final int[][] CASES = {
        {3, 30, 0, 5, 1, 12, 1},
        {2, 37, 5, 6, 2, 13, 0},
        {1, 70, 0, 4, 2, 64, 1},
        {2, 129, 64, 8, 2, 64, 0},
        {2, 33, 100, 16, 8, 128, 1},
        {1, 1, 0, 3, 3, 7, 1},
        {2, 1, 77, 8, 1, 16, 1},
        {2, 65, 3, 2, 1, 9, 0},
        {1, 200, 0, 1, 1, 16, 1},
    };

    @Test
    void kernelMatchesAttentionByItsDefinition() {
        Assumptions.assumeTrue(NativeDecode.LIBRARY.loaded(), () -> "native library not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        Random rnd = new Random(3);
        for (int[] c : CASES) {
            int batch = c[0], t = c[1], start = c[2], heads = c[3], kvh = c[4], d = c[5];
            boolean cacheLayout = c[6] == 1;
            int span = start + t;
            int cap = span + 7;                               // a cache holds more positions than are seen
            long sj = cacheLayout ? d : (long) kvh * d;
            long sh = cacheLayout ? (long) cap * d : d;
            long sb = cacheLayout ? (long) kvh * cap * d : (long) span * kvh * d;
            int kn = (int) (batch * sb);
            float[] q = random(rnd, batch * t * heads * d, 1.0 / Math.sqrt(d) * 2);
            float[] k = random(rnd, kn, 1.0);
            float[] v = random(rnd, kn, 1.0);
            double[] want = reference(q, k, v, sb, sh, sj, batch, t, start, heads, kvh, d);
            for (int threads = 1; threads <= 3; threads++) {
                ByteBuffer out = ByteBuffer.allocateDirect(4 * want.length).order(ByteOrder.nativeOrder());
                NativePrefill.attention(direct(q), direct(k), direct(v), out, sb, sh, sj, batch, t, start, heads, kvh, d, threads);
                float[] got = new float[want.length];
                out.asFloatBuffer().get(got);
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 1e-5 * Math.max(1, Math.abs(want[i])), "case " + java.util.Arrays.toString(c) + ", " + threads
                            + " threads, element " + i);
                }
            }
        }
    }

    /** Prompts of different lengths, right-padded to t, prefilled into a new cache; returns the last logits. */
    private static float[] prefill(NDManager m, KvCache cache, long[] ids, int[] lengths, int t, String kernel) {
        System.setProperty(NativePrefill.PROPERTY, kernel);
        return model.prefill(m.create(ids, new Shape(lengths.length, t)), lengths, cache).toFloatArray();
    }

    private static long[] ids(Random r, int n) {
        long[] a = new long[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextInt(CONFIG.vocabSize());
        }
        return a;
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what);
        double scale = 0, diff = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(diff <= tol * Math.max(scale, 1e-6), what + ": max difference " + diff + " against scale " + scale);
    }

    @Test
    void prefillAndExtensionMatchLibtorch() {
        Assumptions.assumeTrue(NativePrefill.preferred(), () -> "native library not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        Random r = new Random(5);
        // 530 positions: two chunks of the chunked prefill, the second attending to the first from the cache.
        int t = 530;
        int[] lengths = {530, 1, 317};
        long[] prompt = ids(r, lengths.length * t);
        long[] more = ids(r, 2 * 23);
        try (NDManager m = NDManager.newBaseManager();
             KvCache torch = new KvCache(m, CONFIG, 3, 560);
             KvCache nat = new KvCache(m, CONFIG, 3, 560)) {
            float[] expected = prefill(m, torch, prompt, lengths, t, "torch");
            float[] actual = prefill(m, nat, prompt, lengths, t, "native");
            assertClose(expected, actual, 1e-5, "last logits of the prefill");
            for (int l = 0; l < CONFIG.numLayers(); l++) {
                assertClose(torch.keys(l).toFloatArray(), nat.keys(l).toFloatArray(), 1e-5, "keys of layer " + l);
                assertClose(torch.values(l).toFloatArray(), nat.values(l).toFloatArray(), 1e-5, "values of layer " + l);
            }
        }
        // A teacher-forced extension of an equal-length cache: queries start at position 40.
        try (NDManager m = NDManager.newBaseManager();
             KvCache torch = new KvCache(m, CONFIG, 2, 80);
             KvCache nat = new KvCache(m, CONFIG, 2, 80)) {
            long[] p = java.util.Arrays.copyOf(prompt, 2 * 40);
            prefill(m, torch, p, new int[] {40, 40}, 40, "torch");
            float[] expected = model.extend(m.create(more, new Shape(2, 23)), torch).toFloatArray();
            prefill(m, nat, p, new int[] {40, 40}, 40, "native");
            float[] actual = model.extend(m.create(more, new Shape(2, 23)), nat).toFloatArray();
            assertClose(expected, actual, 1e-5, "logits of the extension");
        }
    }

    /**
     * The prefill's last layer runs only from the first position where a prompt ends (and, in a chunk
     * where none ends, only writes keys and values): prompts of 530 and 520 tokens end in the second
     * chunk only. The last logits and one decode step after them must equal a full forward pass.
     */
    @Test
    void prefillWhoseFirstChunkEndsNoPromptEqualsFullForward() {
        Random r = new Random(13);
        int t = 530;
        int[] lengths = {530, 520};
        long[] seq = ids(r, lengths.length * (t + 1));
        int v = CONFIG.vocabSize();
        try (NDManager m = NDManager.newBaseManager();
             KvCache cache = new KvCache(m, CONFIG, 2, 560)) {
            float[] full = model.forward(m.create(seq, new Shape(2, t + 1))).toFloatArray();    // [2, t + 1, V]
            long[] padded = new long[2 * t];
            for (int i = 0; i < 2; i++) {
                System.arraycopy(seq, i * (t + 1), padded, i * t, lengths[i]);
            }
            float[] last = prefill(m, cache, padded, lengths, t, "native");
            long[] next = new long[2];
            for (int i = 0; i < 2; i++) {
                int at = (i * (t + 1) + lengths[i] - 1) * v;
                assertClose(java.util.Arrays.copyOfRange(full, at, at + v), java.util.Arrays.copyOfRange(last, i * v, (i + 1) * v),
                        1e-5, "prefill logits of sequence " + i);
                next[i] = seq[i * (t + 1) + lengths[i]];
            }
            float[] step = model.decode(next, cache, AttentionKernel.DENSE, m).toFloatArray();
            for (int i = 0; i < 2; i++) {
                int at = (i * (t + 1) + lengths[i]) * v;
                assertClose(java.util.Arrays.copyOfRange(full, at, at + v), java.util.Arrays.copyOfRange(step, i * v, (i + 1) * v),
                        1e-5, "decode logits of sequence " + i + " after the prefill");
            }
        }
    }

    @Test
    void forwardWithoutAutogradMatchesLibtorchAndAutogradKeepsLibtorch() {
        Assumptions.assumeTrue(NativePrefill.preferred(), () -> "native library not loaded: " + NativeDecode.LIBRARY.unavailableReason());
        Random r = new Random(9);
        long[] ids = ids(r, 2 * 75);
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = m.create(ids, new Shape(2, 75));
            System.setProperty(NativePrefill.PROPERTY, "torch");
            float[] expected = model.forward(x).toFloatArray();
            System.setProperty(NativePrefill.PROPERTY, "native");
            assertClose(expected, model.forward(x).toFloatArray(), 1e-5, "logits of a forward pass");
            // Under a GradientCollector the attention must stay differentiable (libtorch): a gradient reaches q/k/v.
            NDArray w = model.parameters().get("model.layers.0.self_attn.qkv_proj.weight");
            w.setRequiresGradient(true);
            try (ai.djl.training.GradientCollector gc = m.getEngine().newGradientCollector()) {
                assertFalse(NativePrefill.serves(w), "the kernel must not serve while autograd records");
                gc.backward(model.forward(x).sum());
                NDArray g = w.getGradient();
                assertNotNull(g);
                assertTrue(g.abs().sum().getFloat() > 0, "no gradient reached q/k/v through the attention");
            } finally {
                w.setRequiresGradient(false);
            }
        }
    }

    @Test
    void propertyChoosesTheKernelAndRejectsOtherValues() {
        System.setProperty(NativePrefill.PROPERTY, "torch");
        assertFalse(NativePrefill.preferred());
        System.setProperty(NativePrefill.PROPERTY, "native");
        assertEquals(NativeDecode.LIBRARY.loaded(), NativePrefill.preferred());
        System.setProperty(NativePrefill.PROPERTY, "fast");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, NativePrefill::preferred);
        assertTrue(e.getMessage().contains("-Dtailguard.prefill.kernel"), e.getMessage());
    }
}
