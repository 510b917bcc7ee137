package io.tailguard.compression;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TappedForwardTest {

    @Test
    void replicaForwardMatchesTheModelsLogits() {
        replicaMatches(TinyModels.model(1));
    }

    /** With YaRN (its frequencies and attention factor), the replica's RoPE is still the model's. */
    @Test
    void replicaForwardMatchesTheModelsLogitsWithYarn() {
        ModelConfig c = TinyModels.CONFIG;
        ModelConfig yarn = new ModelConfig(c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numLayers(), c.numHeads(),
                c.numKvHeads(), c.headDim(), c.rmsNormEps(), c.ropeTheta(), 4 * c.maxPositionEmbeddings(), c.tieWordEmbeddings(),
                c.eosTokenId(), new ModelConfig.Yarn(4.0, 64, 1.2, 32, 1, true));
        replicaMatches(Qwen3Model.create(yarn, RandomInit.weights(yarn, 1, 0.1, 0.1), Device.cpu()));
    }

    private static void replicaMatches(Qwen3Model built) {
        try (Qwen3Model model = built) {
            int[] seq = TinyModels.sequences(1, 40, 9).get(0);
            long[] ids = new long[seq.length];
            for (int i = 0; i < seq.length; i++) {
                ids[i] = seq[i];
            }
            try (NDManager m = model.manager().newSubManager()) {
                float[] expected = model.forward(m.create(ids, new Shape(1, seq.length))).toFloatArray();
                Map<String, float[]> inputs = new HashMap<>();
                float[] actual = new TappedForward(model).logits(m, seq, null, inputs).toFloatArray();
                assertEquals(expected.length, actual.length);
                double maxAbs = 0;
                for (int i = 0; i < expected.length; i++) {
                    maxAbs = Math.max(maxAbs, Math.abs(expected[i] - actual[i]));
                }
                assertTrue(maxAbs < 1e-4, "max |Δlogit| = " + maxAbs);
                assertEquals(TappedForward.linearNames(model.config()).size(), inputs.size());
            }
        }
    }

    /** Σ_t g_t x_tᵀ from the taps must be the loss's gradient w.r.t. the weight itself (Sketch B's G_s). */
    @Test
    void tapsMultiplyToTheWeightGradient() {
        try (Qwen3Model model = TinyModels.model(2)) {
            List<String> names = List.of("model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.down_proj.weight");
            for (String n : names) {
                model.weights().get(n).setRequiresGradient(true);
            }
            Map<String, double[][]> fromTaps = new HashMap<>();
            new TappedForward(model).run(TinyModels.sequences(1, 24, 3), true, 5, tap -> {
                if (!names.contains(tap.name())) {
                    return;
                }
                double[][] g = new double[tap.out()][tap.in()];
                for (int t = 0; t < tap.tokens(); t++) {
                    for (int i = 0; i < tap.out(); i++) {
                        for (int j = 0; j < tap.in(); j++) {
                            g[i][j] += (double) tap.g()[t * tap.out() + i] * tap.x()[t * tap.in() + j];
                        }
                    }
                }
                fromTaps.put(tap.name(), g);
            });
            for (String n : names) {
                NDArray w = model.weights().get(n);
                float[] grad = w.getGradient().toFloatArray();
                int cols = (int) w.getShape().get(1);
                double[][] g = fromTaps.get(n);
                double scale = 0;
                for (float v : grad) {
                    scale = Math.max(scale, Math.abs(v));
                }
                assertTrue(scale > 0, n + " got no gradient");
                for (int i = 0; i < grad.length; i++) {
                    assertEquals(grad[i], g[i / cols][i % cols], 1e-4 * scale, n + " entry " + i);
                }
            }
        }
    }
}
