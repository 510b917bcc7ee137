package io.tailguard.compression;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VnmPrunerTest {
    private static final VnmPattern P = new VnmPattern(16, 2, 5);

    @Test
    void foldedPermutationLeavesTheDenseModelsLogitsUnchanged() {
        List<int[]> calib = TinyModels.sequences(4, 24, 1);
        try (Qwen3Model model = TinyModels.model(3)) {
            VnmPruner.Prepared p = VnmPruner.prepare(model, calib, P, VnmPruner.Score.ACTIVATION,
                    VnmPruner.PermutationOptions.defaults(), 9);
            // It did permute something in every fold group.
            for (int[][] perm : p.permutations().values()) {
                boolean moved = false;
                for (int[] c : perm) {
                    for (int s = 0; s < c.length; s++) {
                        moved |= c[s] != s;
                    }
                }
                assertTrue(moved);
            }
            try (Qwen3Model permuted = Qwen3Model.create(model.config(), p.weights(), Device.cpu())) {
                float[] a = logits(model);
                float[] b = logits(permuted);
                for (int i = 0; i < a.length; i++) {
                    assertEquals(a[i], b[i], 1e-5, "logit " + i);
                }
            }
        }
    }

    @Test
    void permutationRaisesTheRetainedScoreMeasuredIndependently() {
        List<int[]> calib = TinyModels.sequences(4, 24, 1);
        try (Qwen3Model model = TinyModels.model(3)) {
            ModelConfig c = model.config();
            VnmPruner.Prepared off = VnmPruner.prepare(model, calib, P, VnmPruner.Score.ACTIVATION,
                    VnmPruner.PermutationOptions.off(), 9);
            VnmPruner.Prepared on = VnmPruner.prepare(model, calib, P, VnmPruner.Score.ACTIVATION,
                    VnmPruner.PermutationOptions.defaults(), 9);
            // Recompute each fold group's retained fraction from the weights alone, with masks checked
            // against the pattern, and input norms measured afresh on each model: the permuted model's
            // activations are the original ones permuted, if the fold is right.
            Map<String, float[]> normsOff = VnmPruner.inputNorms(model, calib);
            Map<String, float[]> normsOn;
            try (Qwen3Model permuted = Qwen3Model.create(c, on.weights(), Device.cpu())) {
                normsOn = VnmPruner.inputNorms(permuted, calib);
            }
            for (int l = 0; l < c.numLayers(); l++) {
                for (boolean mlp : new boolean[] {true, false}) {
                    String[] names = mlp
                            ? new String[] {"mlp.down_proj", "mlp.gate_proj", "mlp.up_proj"}
                            : new String[] {"self_attn.o_proj", "self_attn.v_proj"};
                    double before = retainedFraction(c, off.weights(), normsOff, l, names);
                    double after = retainedFraction(c, on.weights(), normsOn, l, names);
                    VnmPruner.GroupReport r = on.groups().get(2 * l + (mlp ? 0 : 1));
                    assertEquals(VnmPruner.permutationKey(l, mlp), r.group());
                    assertEquals(before, r.retainedBefore(), 1e-5 * before);
                    assertEquals(after, r.retainedAfter(), 1e-5 * after);
                    assertTrue(after > before, r.group() + ": " + before + " -> " + after);
                }
            }
            System.out.printf("16:2:5 retained %.4f -> %.4f (%+.2f%%)%n", on.retainedBefore(), on.retainedAfter(), on.gainPercent());
        }
    }

    @Test
    void searchStopsWhereNoSwapBetweenBlocksHelps() {
        // 2 rows x 8 columns at 2:2:4 (two blocks of 4): with one freed column per block, each round
        // is the best swap of the two freed channels, so the search (given rounds enough to draw
        // every pair) ends where no swap improves; checked by trying all 16 swaps by brute force.
        SplittableRandom rng = new SplittableRandom(4);
        VnmPattern p = new VnmPattern(2, 2, 4);
        int improved = 0;
        for (int trial = 0; trial < 20; trial++) {
            float[] s = new float[16];
            for (int i = 0; i < s.length; i++) {
                s[i] = rng.nextInt(9);
            }
            ChannelPermutation search = new ChannelPermutation(p, 8, new int[][] {{0}}, new int[] {0},
                    List.of(new ChannelPermutation.Columns(s, 2, 8)), List.of());
            ChannelPermutation.Outcome o = search.optimise(trial, 1000, 300, 128);
            assertEquals(search.objective(ChannelPermutation.identity(1, 8)), o.before(), 0.0);
            assertEquals(search.objective(o.perm()), o.after(), 0.0);
            assertTrue(o.after() >= o.before());
            improved += o.after() > o.before() ? 1 : 0;
            for (int i = 0; i < 4; i++) {
                for (int j = 4; j < 8; j++) {
                    int[] swapped = o.perm()[0].clone();
                    swapped[i] = o.perm()[0][j];
                    swapped[j] = o.perm()[0][i];
                    assertTrue(search.objective(new int[][] {swapped}) <= o.after(), "trial " + trial + " swap " + i + "," + j);
                }
            }
        }
        assertTrue(improved > 5, "improved " + improved + " of 20");
    }

    @Test
    void prunedModelKeepsExactlyWhatItsMasksAllow() {
        List<int[]> calib = TinyModels.sequences(2, 16, 1);
        try (Qwen3Model model = TinyModels.model(3)) {
            VnmModel s = VnmPruner.prune(model, calib, P, VnmPruner.Score.MAGNITUDE, VnmPruner.PermutationOptions.off(), 1);
            Map<String, float[]> original = model.hostWeights();
            Map<String, long[]> shapes = ParameterShapes.of(model.config());
            assertEquals(7 * model.config().numLayers(), s.linears().size());
            for (SparseLinear l : s.linears().values()) {
                int rows = (int) shapes.get(l.name())[0];
                int cols = (int) shapes.get(l.name())[1];
                boolean[] keep = l.mask().toBooleans();
                assertEquals(Optional.empty(), VnmChecker.violation(keep, rows, cols, P), l.name());
                float[] d = l.dense();
                float[] w = original.get(l.name());
                for (int i = 0; i < d.length; i++) {
                    assertEquals(keep[i] ? w[i] : 0f, d[i], 0f);
                }
            }
            assertArrayEquals(original.get("model.embed_tokens.weight"), s.dense().get("model.embed_tokens.weight"));
        }
    }

    @Test
    void badInputIsRejectedWithTheReason() {
        try (Qwen3Model model = TinyModels.model(3)) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPruner.prepare(model, List.of(),
                    P, VnmPruner.Score.ACTIVATION, VnmPruner.PermutationOptions.off(), 1)).getMessage().contains("calibration"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPruner.prepare(model, null,
                    new VnmPattern(128, 2, 5), VnmPruner.Score.MAGNITUDE, VnmPruner.PermutationOptions.off(), 1))
                    .getMessage().contains("does not fit"));
            assertThrows(IllegalArgumentException.class, () -> VnmPruner.prepare(model, List.of(new int[] {61}),
                    P, VnmPruner.Score.ACTIVATION, VnmPruner.PermutationOptions.off(), 1));
        }
    }

    /** Σ kept score / Σ score over the named weights of layer l, masks chosen and checked here. */
    private static double retainedFraction(ModelConfig c, Map<String, float[]> weights, Map<String, float[]> norms,
                                           int l, String[] names) {
        Map<String, long[]> shapes = ParameterShapes.of(c);
        double kept = 0;
        double total = 0;
        for (String n : names) {
            String name = "model.layers." + l + "." + n + ".weight";
            int rows = (int) shapes.get(name)[0];
            int cols = (int) shapes.get(name)[1];
            float[] w = weights.get(name);
            float[] norm = norms.get(name);
            float[] score = new float[w.length];
            for (int i = 0; i < w.length; i++) {
                score[i] = Math.abs(w[i]) * norm[i % cols];
                total += score[i];
            }
            boolean[] keep = VnmSelector.select(score, rows, cols, P).toBooleans();
            assertEquals(Optional.empty(), VnmChecker.violation(keep, rows, cols, P));
            for (int i = 0; i < w.length; i++) {
                kept += keep[i] ? score[i] : 0;
            }
        }
        return kept / total;
    }

    private static float[] logits(Qwen3Model m) {
        try (NDManager s = m.manager().newSubManager()) {
            int[] seq = TinyModels.sequences(1, 20, 77).get(0);
            long[] ids = new long[seq.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = seq[i];
            }
            return m.forward(s.create(ids, new Shape(1, ids.length))).toFloatArray();
        }
    }
}
