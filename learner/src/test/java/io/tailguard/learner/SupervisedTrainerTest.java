package io.tailguard.learner;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SupervisedTrainerTest {
    static final ModelConfig CONFIG = new ModelConfig(13, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 256, true, -1);

    /** Mean completion cross-entropy by plain forwards (no autograd), in double. */
    static double loss(Qwen3Model model, List<int[]> prompts, List<int[]> comps) {
        double total = 0;
        long n = 0;
        try (NDManager m = NDManager.newBaseManager()) {
            for (int i = 0; i < prompts.size(); i++) {
                int[] p = prompts.get(i);
                int[] c = comps.get(i);
                long[] ids = new long[p.length + c.length - 1];
                for (int j = 0; j < ids.length; j++) {
                    ids[j] = j < p.length ? p[j] : c[j - p.length];
                }
                float[] logits = model.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
                int v = CONFIG.vocabSize();
                for (int t = 0; t < c.length; t++) {
                    int row = p.length - 1 + t;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int k = 0; k < v; k++) {
                        max = Math.max(max, logits[row * v + k]);
                    }
                    double z = 0;
                    for (int k = 0; k < v; k++) {
                        z += Math.exp(logits[row * v + k] - max);
                    }
                    total -= logits[row * v + c[t]] - max - Math.log(z);
                    n++;
                }
            }
        }
        return total / n;
    }

    static List<int[]>[] data(int count, long seed) {
        Random r = new Random(seed);
        List<int[]> prompts = new ArrayList<>();
        List<int[]> comps = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] p = new int[3 + r.nextInt(6)];
            for (int j = 0; j < p.length; j++) {
                p[j] = 3 + r.nextInt(10);
            }
            // completion: the prompt reversed (learnable, needs attention), then eos (2)
            int[] c = new int[p.length + 1];
            for (int j = 0; j < p.length; j++) {
                c[j] = p[p.length - 1 - j];
            }
            c[p.length] = 2;
            prompts.add(p);
            comps.add(c);
        }
        @SuppressWarnings("unchecked")
        List<int[]>[] out = new List[] {prompts, comps};
        return out;
    }

    @Test
    void gradientOfTheLossMatchesFiniteDifferences() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 2, 0.3, 0.1), Device.cpu())) {
            List<int[]>[] d = data(3, 1);
            SupervisedTrainer trainer = new SupervisedTrainer(model, new LrSchedule(1e-9, 0, 1, 1), AdamW.Options.defaults(), 2);
            // A step with a negligible learning rate leaves the gradients in the parameters.
            trainer.step(d[0], d[1]);
            String[] names = {"model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.qkv_proj.weight",
                    "model.layers.1.self_attn.o_proj.weight", "model.embed_tokens.weight"};
            float[][] grads = new float[names.length][];
            for (int k = 0; k < names.length; k++) {
                grads[k] = model.parameters().get(names[k]).getGradient().toFloatArray();
            }
            trainer.close(); // gradients off: finite differences use plain forwards
            for (int k = 0; k < names.length; k++) {
                checkFiniteDifferences(model, d, names[k], grads[k]);
            }
        }
    }

    static void checkFiniteDifferences(Qwen3Model model, List<int[]>[] d, String name, float[] grad) {
        {
            NDArray w = model.parameters().get(name);
            int cols = (int) w.getShape().get(1);
            int n = grad.length;
            int[] probe = {0, 7, n / 7 + 3, n / 3, n / 2 + 1, n - 5};
            double largest = 0;
            for (int idx : probe) {
                largest = Math.max(largest, Math.abs(grad[idx]));
            }
            assertTrue(largest > 1e-4, name + ": probed gradients are not all ~0");
            double h = 1e-2;
            for (int idx : probe) {
                int row = idx / cols;
                int col = idx % cols;
                float orig = w.get(row, col).getFloat();
                w.set(new NDIndex(row + "," + col), orig + (float) h);
                double up = loss(model, d[0], d[1]);
                w.set(new NDIndex(row + "," + col), orig - (float) h);
                double down = loss(model, d[0], d[1]);
                w.set(new NDIndex(row + "," + col), orig);
                double fd = (up - down) / (2 * h);
                assertEquals(fd, grad[idx], 2e-3 + 0.05 * Math.abs(fd), "d loss / d " + name + "[" + idx + "]");
            }
        }
    }

    /**
     * Garbage collections during a step (a background thread forcing them, and reusing the native
     * memory they free) must not change the gradient: every constant the graph keeps for backward
     * has to be owned by libtorch, not borrowed from a Java buffer (see Scalars).
     */
    @Test
    void gradientsAreExactUnderGarbageCollectionPressure() throws InterruptedException {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 2, 0.3, 0.1), Device.cpu());
             SupervisedTrainer trainer = new SupervisedTrainer(model, new LrSchedule(1e-30, 0, 1, 1), AdamW.Options.defaults(), 4)) {
            List<int[]>[] d = data(4, 1);
            double expected = trainer.step(d[0], d[1]).gradNorm();
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            Thread storm = new Thread(() -> {
                while (!stop.get()) {
                    System.gc();
                    for (int j = 0; j < 200; j++) {
                        java.nio.ByteBuffer.allocateDirect(4).order(java.nio.ByteOrder.nativeOrder()).putFloat(0, 7e20f);
                    }
                }
            });
            storm.setDaemon(true);
            storm.start();
            try {
                for (int s = 0; s < 30; s++) {
                    assertEquals(expected, trainer.step(d[0], d[1]).gradNorm(), 1e-6 * expected, "step " + s);
                }
            } finally {
                stop.set(true);
                storm.join();
            }
        }
    }

    @Test
    void trainingDrivesTheLossDownOnALearnableTask() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 3, 0.02, 0.0), Device.cpu())) {
            List<int[]>[] d = data(32, 5);
            double before = loss(model, d[0], d[1]);
            try (SupervisedTrainer trainer = new SupervisedTrainer(model, new LrSchedule(3e-3, 10, 150, 0.1), AdamW.Options.defaults(), 16)) {
                for (int s = 0; s < 150; s++) {
                    trainer.step(d[0], d[1]);
                }
            }
            double after = loss(model, d[0], d[1]);
            assertTrue(after < 0.5 * before, "loss " + before + " -> " + after);
        }
    }

    @Test
    void trainingOnlyALorasParametersLeavesTheBaseWeightsAloneAndLowersTheLoss() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 3, 0.3, 0.1), Device.cpu());
             io.tailguard.model.lora.LoraAdapter lora = io.tailguard.model.lora.LoraAdapter.create(model,
                     io.tailguard.model.lora.LoraConfig.defaults(), 5)) {
            model.attach(lora);
            java.util.Map<String, float[]> base = model.hostWeights();
            List<int[]>[] d = data(32, 5);
            double before = loss(model, d[0], d[1]);
            try (SupervisedTrainer trainer = new SupervisedTrainer(model, lora.parameters(),
                    new LrSchedule(1e-2, 5, 60, 0.1), AdamW.Options.defaults(), 16)) {
                for (int s = 0; s < 60; s++) {
                    trainer.step(d[0], d[1]);
                }
            }
            double after = loss(model, d[0], d[1]);
            assertTrue(after < 0.8 * before, "loss " + before + " -> " + after);
            java.util.Map<String, float[]> now = model.hostWeights();
            for (String name : base.keySet()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(base.get(name), now.get(name), 0f, name);
            }
        }
    }

    @Test
    void learningRateWarmsUpThenDecaysByCosine() {
        LrSchedule s = new LrSchedule(1.0, 10, 110, 0.1);
        assertEquals(0.1, s.at(1), 1e-12);
        assertEquals(1.0, s.at(10), 1e-12);
        assertEquals(0.1 + 0.9 * 0.5, s.at(60), 1e-12); // half way through the decay: cos(pi/2) = 0
        assertEquals(0.1, s.at(110), 1e-12);
        assertEquals(0.1, s.at(500), 1e-12);
    }
}
