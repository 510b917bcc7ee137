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
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native attention of the training tape against libtorch's autograd over {@link Attention}'s
 * chunked attention (the reference, computed another way): the same loss and the same gradient in
 * every parameter, for a full causal pass and for continuations over a shared prompt.
 */
class TrainingTapeTest {
    /** Head dim 20 (not a multiple of 16: the kernels' edge tiles), 4 query heads over 2 KV heads. */
    static final ModelConfig CONFIG = new ModelConfig(37, 40, 56, 2, 4, 2, 20, 1e-6, 10_000.0, 512, true, -1);
    /**
     * Every width with a vector tail (hidden 45, intermediate 61, head dim 18: 8-lane passes and a
     * rest), 6 query heads over 2 KV heads, untied embeddings.
     */
    static final ModelConfig TAILS = new ModelConfig(29, 45, 61, 2, 6, 2, 18, 1e-6, 10_000.0, 512, false, -1);

    @AfterEach
    void resetProperty() {
        System.clearProperty(NativeTraining.PROPERTY);
    }

    @Test
    void libraryLoadsWhereTheBuildMustHaveIt() {
        if ("1".equals(System.getenv("TAILGUARD_REQUIRE_NATIVE"))) {
            assertNull(NativeTraining.LIBRARY.unavailableReason(), "native training kernels not loaded");
        }
    }

    @Test
    void aFullPassHasTheGradientsOfLibtorchAttention() {
        // 3 rows of 70 positions: two blocks of queries (64 + 6), a key count that is no multiple of 16
        SplittableRandom r = new SplittableRandom(5);
        long[] ids = new long[3 * 70];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(CONFIG.vocabSize());
        }
        float[] weights = weights(3 * 70 * CONFIG.vocabSize(), 6);
        compare(CONFIG, model -> model.forward(model.manager().create(ids, new Shape(3, 70))), weights, 1, 2);
    }

    @Test
    void everyVectorTailAndTwoAccumulatedPassesHaveLibtorchsGradients() {
        // 2 rows of 37 positions (74 rows of the pointwise passes: items of 16 and a rest of 10),
        // the loss's gradients accumulated over two passes as over a step's micro-batches
        SplittableRandom r = new SplittableRandom(7);
        long[] ids = new long[2 * 37];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(TAILS.vocabSize());
        }
        float[] weights = weights(2 * 37 * TAILS.vocabSize(), 8);
        compare(TAILS, model -> model.forward(model.manager().create(ids, new Shape(2, 37))), weights, 2, 2);
    }

    @Test
    void continuationsOverASharedPromptHaveTheGradientsOfLibtorchAttention() {
        // a prompt of 75 positions (two blocks of its own) and 4 continuations of 9
        float[] weights = weights(CONFIG.vocabSize() + 4 * 9 * CONFIG.vocabSize(), 10);
        compare(CONFIG, sharedPrompt(CONFIG, 9), weights, 1, 4);
    }

    /**
     * The logits of forwardShared over a random prompt of 75 positions and 4 continuations of 9
     * (ids drawn from seed): the prompt's last position's, then every continuation position's, flat.
     */
    private static Function<Qwen3Model, NDArray> sharedPrompt(ModelConfig config, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] prompt = new long[75];
        long[] rows = new long[4 * 9];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = r.nextInt(config.vocabSize());
        }
        for (int i = 0; i < rows.length; i++) {
            rows[i] = r.nextInt(config.vocabSize());
        }
        return model -> {
            NDManager m = model.manager();
            NDArray[] out = model.forwardShared(m.create(prompt, new Shape(1, 75)), m.create(rows, new Shape(4, 9)));
            return ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(out[0].reshape(-1), out[1].reshape(-1)));
        };
    }

    @Test
    void theAvx512AndAvx2TilesGiveTheSameBits() {
        Assumptions.assumeTrue(NativeTraining.LIBRARY.loaded(), "native training kernels not loaded");
        // a prompt of 75 positions and 4 continuations of 9: products of every width up to 32 and past it
        Function<Qwen3Model, NDArray> logits = sharedPrompt(TAILS, 11);
        float[] weights = weights(TAILS.vocabSize() + 4 * 9 * TAILS.vocabSize(), 12);
        System.setProperty(NativeTraining.PROPERTY, "native");
        boolean wide = NativeTraining.wideTiles(true);
        Assumptions.assumeTrue(wide, "this CPU has no AVX-512: only the AVX2 tiles run");
        Map<String, float[]> withWide = gradients(TAILS, logits, weights);
        try {
            assertEquals(false, NativeTraining.wideTiles(false));
            Map<String, float[]> withNarrow = gradients(TAILS, logits, weights);
            for (Map.Entry<String, float[]> e : withNarrow.entrySet()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(e.getValue(), withWide.get(e.getKey()), 0f, e.getKey());
            }
        } finally {
            NativeTraining.wideTiles(true);
        }
    }

    /** Every parameter's gradient of the weighted log-softmax loss, one pass on the native tape. */
    private static Map<String, float[]> gradients(ModelConfig config, Function<Qwen3Model, NDArray> logits, float[] w) {
        try (Qwen3Model model = Qwen3Model.create(config, RandomInit.weights(config, 3, 0.2, 0.1), Device.cpu())) {
            for (NDArray p : model.parameters().values()) {
                p.setRequiresGradient(true);
            }
            try (NDManager m = model.manager().newSubManager();
                 GradientCollector gc = GradientCollectors.exclusive();
                 TrainingTape tape = TrainingTape.open(m)) {
                assertTrue(tape.active());
                NDArray lg = logits.apply(model);
                lg.attach(m);
                NDArray lp = lg.reshape(-1, config.vocabSize()).logSoftmax(-1).reshape(-1);
                tape.backward(gc, lp.mul(m.create(w)).sum());
            }
            Map<String, float[]> grads = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
                grads.put(e.getKey(), e.getValue().getGradient().toFloatArray());
            }
            return grads;
        }
    }

    private static float[] weights(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return w;
    }

    /**
     * Loss Σ w ⊙ log-softmax(logits) (a weighting that reaches every position and vocabulary entry),
     * its gradients (summed over {@code passes} forward and backward passes) with the libtorch
     * attention and with the tape's; asserts they agree, and that the tape ran {@code wholeLayers}
     * layer passes whole.
     */
    private static void compare(ModelConfig config, Function<Qwen3Model, NDArray> logits, float[] w, int passes,
                                int wholeLayers) {
        Assumptions.assumeTrue(NativeTraining.LIBRARY.loaded(), () -> "native training kernels not loaded: "
                + NativeTraining.LIBRARY.unavailableReason());
        Map<String, float[]> reference = null;
        double referenceLoss = 0;
        for (String kernel : new String[] {"torch", "native"}) {
            System.setProperty(NativeTraining.PROPERTY, kernel);
            try (Qwen3Model model = Qwen3Model.create(config, RandomInit.weights(config, 3, 0.2, 0.1), Device.cpu())) {
                for (NDArray p : model.parameters().values()) {
                    p.setRequiresGradient(true);
                }
                double loss = 0;
                for (int pass = 0; pass < passes; pass++) {
                    try (NDManager m = model.manager().newSubManager();
                         GradientCollector gc = GradientCollectors.exclusive();
                         TrainingTape tape = TrainingTape.open(m)) {
                        assertEquals(kernel.equals("native"), tape.active());
                        NDArray lg = logits.apply(model);
                        lg.attach(m);
                        assertEquals(kernel.equals("native") ? wholeLayers : 0, tape.wholeLayers());
                        NDArray lp = lg.reshape(-1, config.vocabSize()).logSoftmax(-1).reshape(-1);
                        NDArray l = lp.mul(m.create(w)).sum();
                        tape.backward(gc, l);
                        loss += l.getFloat();
                    }
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
                for (Map.Entry<String, float[]> e : reference.entrySet()) {
                    float[] want = e.getValue();
                    float[] got = grads.get(e.getKey());
                    double largest = 0;
                    for (float g : want) {
                        largest = Math.max(largest, Math.abs(g));
                    }
                    assertTrue(largest > 1e-4, e.getKey() + ": the reference gradient is not all ~0");
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(want[i], got[i], 1e-4 * largest, e.getKey() + " [" + i + "]");
                    }
                }
            }
        }
    }
}
