package io.tailguard.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native vocabulary projection and embedding backward of the training tape against libtorch's
 * autograd (lm_head product, log-softmax, gather, embedding): the same target log-probs and the same
 * gradients of the rows and of the weights. Shapes reach every edge of the kernels: vocabularies
 * that end inside a block of 60 and inside a tile of 6, row counts that are no multiple of 16 or 8,
 * hidden sizes that are no multiple of 16 and deeper than one pass of 256.
 */
class VocabularyProjectionTest {
    @AfterEach
    void resetProperty() {
        System.clearProperty(NativeTraining.PROPERTY);
    }

    @Test
    void libraryLoadsWhereTheBuildMustHaveIt() {
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_NATIVE"))) {
            assertNull(NativeVocabulary.LIBRARY.unavailableReason(), "native vocabulary kernels not loaded");
        }
    }

    @Test
    void targetLogProbsAndGradientsMatchAutograd() {
        assumeLoaded();
        // rows x vocabulary x hidden: tails of every kind; one vocabulary shorter than a tile; one
        // of 34 blocks, so that the backward's slices hold full and partial groups of four blocks
        int[][] shapes = {{13, 157, 40}, {37, 70, 300}, {263, 131, 44}, {5, 5, 17}, {1, 64, 16}, {7, 2003, 33}};
        for (int[] s : shapes) {
            compareProjection(s[0], s[1], s[2], 11 + s[0]);
        }
    }

    /**
     * Loss Σ c_i log p(t_i | x_i) with varied c: the log-probs, the entropies and the gradients of x
     * and W by libtorch's ops and autograd and by the tape.
     */
    private static void compareProjection(int n, int v, int h, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = uniform(r, n * h, 2.0);
        float[] w = uniform(r, v * h, 0.5);
        float[] c = uniform(r, n, 1.0);
        int[] t = new int[n];
        long[] tl = new long[n];
        for (int i = 0; i < n; i++) {
            t[i] = i % 3 == 0 ? v - 1 : r.nextInt(v);   // the last entry too
            tl[i] = t[i];
        }
        float[][] want = null;
        for (String kernel : new String[] {"torch", "native"}) {
            System.setProperty(NativeTraining.PROPERTY, kernel);
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                NDArray xs = m.create(x, new Shape(n, h));
                NDArray ws = m.create(w, new Shape(v, h));
                xs.setRequiresGradient(true);
                ws.setRequiresGradient(true);
                float[] picked;
                float[] entropy = new float[n];
                try (NDManager s = m.newSubManager();
                     GradientCollector gc = GradientCollectors.exclusive();
                     TrainingTape tape = TrainingTape.open(s)) {
                    NDArray lp;
                    if (kernel.equals("torch")) {
                        assertTrue(!VocabularyProjection.serves(TrainingTape.recording(), xs, ws));
                        NDArray logits = xs.getNDArrayInternal().linear(xs, ws, null).singletonOrThrow();
                        NDArray all = logits.logSoftmax(-1);
                        NDArray plain = all.stopGradient();
                        entropy = plain.exp().mul(plain).sum(new int[] {1}).neg().toFloatArray();
                        lp = all.gather(s.create(tl, new Shape(n, 1)), 1).reshape(n);
                    } else {
                        assertTrue(VocabularyProjection.serves(TrainingTape.recording(), xs, ws));
                        lp = VocabularyProjection.targetLogProbs(tape, xs, ws, t, entropy);
                    }
                    picked = lp.toFloatArray();
                    tape.backward(gc, lp.mul(s.create(c)).sum());
                }
                float[][] got = {picked, entropy, xs.getGradient().toFloatArray(), ws.getGradient().toFloatArray()};
                if (want == null) {
                    want = got;
                    continue;
                }
                String[] what = {"log-probs", "entropy", "rows' gradient", "weight's gradient"};
                for (int k = 0; k < what.length; k++) {
                    assertClose(want[k], got[k], n + "x" + v + "x" + h + " " + what[k]);
                }
            }
        }
    }

    @Test
    void aTiedModelTrainsLikeAutograd() {
        // vocabulary 157: two blocks of 60 and one of 37 (6 tiles of 6 and a tile of 1)
        compareModel(new ModelConfig(157, 40, 56, 2, 4, 2, 20, 1e-6, 10_000.0, 512, true, -1));
    }

    @Test
    void anUntiedModelTrainsLikeAutograd() {
        compareModel(new ModelConfig(70, 40, 56, 2, 4, 2, 20, 1e-6, 10_000.0, 512, false, -1));
    }

    @Test
    void targetsOutsideTheVocabularyAreRefused() {
        assumeLoaded();
        ModelConfig config = new ModelConfig(70, 40, 56, 1, 4, 2, 20, 1e-6, 10_000.0, 512, true, -1);
        try (Qwen3Model model = Qwen3Model.create(config, RandomInit.weights(config, 3, 0.2, 0.1), Device.cpu());
             NDManager m = model.manager().newSubManager()) {
            NDArray rows = m.zeros(new Shape(2, 40));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.targetLogProbs(rows, new int[] {3, 70}));
            assertTrue(e.getMessage().contains("target 70 of row 1"), e.getMessage());
        }
    }

    /**
     * Two sequences through the whole model, loss on the log-probs of some positions' next tokens
     * (repeated ids, so the embedding's scatter adds rows into one entry): every parameter's
     * gradient with libtorch's ops and autograd, and with the tape's kernels.
     */
    private static void compareModel(ModelConfig config) {
        assumeLoaded();
        SplittableRandom r = new SplittableRandom(config.vocabSize());
        int b = 2;
        int len = 23;
        long[] ids = new long[b * len];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = i % 5 == 0 ? 7 : r.nextInt(config.vocabSize());
        }
        long[] at = {0, 4, 5, 17, 22, 23, 30, 44};   // rows of [b * len]
        int[] targets = new int[at.length];
        for (int i = 0; i < at.length; i++) {
            targets[i] = r.nextInt(config.vocabSize());
        }
        float[] c = uniform(r, at.length, 1.0);
        Map<String, float[]> reference = null;
        double referenceLoss = 0;
        for (String kernel : new String[] {"torch", "native"}) {
            System.setProperty(NativeTraining.PROPERTY, kernel);
            try (Qwen3Model model = Qwen3Model.create(config, RandomInit.weights(config, 3, 0.2, 0.1), Device.cpu())) {
                for (NDArray p : model.parameters().values()) {
                    p.setRequiresGradient(true);
                }
                double loss;
                try (NDManager m = model.manager().newSubManager();
                     GradientCollector gc = GradientCollectors.exclusive();
                     TrainingTape tape = TrainingTape.open(m)) {
                    assertEquals(kernel.equals("native"), tape.active());
                    NDArray hidden = model.hiddenStates(m.create(ids, new Shape(b, len)));
                    NDArray rows = hidden.reshape(b * len, -1).get(new ai.djl.ndarray.index.NDIndex("{}", m.create(at)));
                    NDArray l = model.targetLogProbs(rows, targets).mul(m.create(c)).sum();
                    tape.backward(gc, l);
                    loss = l.getFloat();
                }
                Map<String, float[]> grads = new LinkedHashMap<>();
                for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
                    grads.put(e.getKey(), e.getValue().getGradient().toFloatArray());
                }
                if (reference == null) {
                    reference = grads;
                    referenceLoss = loss;
                    continue;
                }
                assertEquals(referenceLoss, loss, 1e-5 * Math.abs(referenceLoss));
                assertEquals(reference.keySet(), grads.keySet());
                for (Map.Entry<String, float[]> e : reference.entrySet()) {
                    assertClose(e.getValue(), grads.get(e.getKey()), e.getKey());
                }
            }
        }
    }

    private static void assumeLoaded() {
        Assumptions.assumeTrue(NativeVocabulary.LIBRARY.loaded(), () -> "native vocabulary kernels not loaded: "
                + NativeVocabulary.LIBRARY.unavailableReason());
    }

    private static float[] uniform(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return a;
    }

    /** Elementwise within 1e-4 of the reference's largest magnitude, which must not be ~0. */
    private static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        double largest = 0;
        for (float g : want) {
            largest = Math.max(largest, Math.abs(g));
        }
        assertTrue(largest > 1e-4, what + ": the reference is all ~0");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-4 * largest, what + " [" + i + "]");
        }
    }
}
