package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.Qwen3Model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * V:N:M pruning of every decoder linear layer of a Qwen3 model (docs/algorithms.md, "V:N:M sparsity"): importance
 * scores, V:N:M-aware channel permutation folded into the neighbouring layers, and mask selection.
 *
 * <p>Two fold groups per decoder layer, the only channel permutations that leave the dense model's
 * function exactly unchanged without touching the residual stream:
 * <ul>
 *   <li>MLP: the intermediate channels. Permuting down_proj's input columns is undone by permuting
 *       gate_proj's and up_proj's output rows the same way (SiLU(gate)·up is elementwise).</li>
 *   <li>Attention: the value dims of each KV head. Permuting the value dims of KV head g (v_proj's
 *       rows g·D … g·D + D − 1) permutes the attention output of every query head reading it, so
 *       o_proj's input columns h·D + d of each such head h are permuted with the same σ_g. Softmax
 *       weights do not depend on v, so nothing else changes. Queries and keys are left alone: their
 *       dims carry per-dim q/k norm gains shared by all heads and RoPE pairs (d, d + D/2).</li>
 * </ul>
 * q/k/v and gate/up read the hidden state, whose channels are shared by the whole residual stream
 * (embedding, every norm, every layer), so their input columns are not permuted.
 */
public final class VnmPruner {
    /** How an entry's importance is measured. */
    public enum Score {
        /** |W_ij| */
        MAGNITUDE,
        /** |W_ij| · ‖x_j‖₂ over the calibration tokens (Wanda): needs calibration sequences. */
        ACTIVATION
    }

    /** Alternating-optimisation limits of the permutation search. */
    public record PermutationOptions(boolean enabled, int maxRounds, int patience, int maxFreed) {
        public static PermutationOptions defaults() {
            return new PermutationOptions(true, 200, 12, 128);
        }

        public static PermutationOptions off() {
            return new PermutationOptions(false, 0, 0, 0);
        }
    }

    /** The retained-score fraction (kept score / total score) of one fold group's weights, before and after permuting. */
    public record GroupReport(String group, double retainedBefore, double retainedAfter, int rounds) {
        public double gainPercent() {
            return 100 * (retainedAfter / retainedBefore - 1);
        }
    }

    /**
     * The dense model with its channels permuted (same function as the original), the input norms
     * in the permuted order (null for magnitude scores), and what permuting gained.
     */
    public record Prepared(ModelConfig config, Map<String, float[]> weights, Map<String, float[]> inputNorms,
                           Map<String, int[][]> permutations, List<GroupReport> groups) {
        /** Mean over fold groups of the retained fraction before permuting. */
        public double retainedBefore() {
            return groups.stream().mapToDouble(GroupReport::retainedBefore).average().orElse(Double.NaN);
        }

        public double retainedAfter() {
            return groups.stream().mapToDouble(GroupReport::retainedAfter).average().orElse(Double.NaN);
        }

        /** Mean retained fraction after over before, minus one, in percent. */
        public double gainPercent() {
            return 100 * (retainedAfter() / retainedBefore() - 1);
        }
    }

    private VnmPruner() {}

    /** Key of a fold group's permutation: "model.layers.L.mlp" or "model.layers.L.self_attn". */
    public static String permutationKey(int layer, boolean mlp) {
        return "model.layers." + layer + (mlp ? ".mlp" : ".self_attn");
    }

    /** The one-shot pipeline: prepare (scores, permutation), select masks, prune. */
    public static VnmModel prune(Qwen3Model model, List<int[]> calibration, VnmPattern pattern, Score score,
                                 PermutationOptions permutation, long seed) {
        Prepared p = prepare(model, calibration, pattern, score, permutation, seed);
        return VnmModel.of(p.config(), pattern, p.weights(), masks(p.config(), p.weights(), p.inputNorms(), pattern),
                p.permutations());
    }

    /**
     * Scores every linear layer, and (when enabled) finds and folds in each fold group's
     * permutation. Checks the pattern against the layer shapes and the calibration data first.
     */
    public static Prepared prepare(Qwen3Model model, List<int[]> calibration, VnmPattern pattern, Score score,
                                   PermutationOptions permutation, long seed) {
        ModelConfig c = model.config();
        pattern.misfit(c).ifPresent(why -> {
            throw new IllegalArgumentException(why);
        });
        Map<String, float[]> norms = null;
        if (score == Score.ACTIVATION) {
            Calibration.require(model, calibration, "activation scores need calibration sequences, got none");
            norms = inputNorms(model, calibration);
        }
        Map<String, float[]> weights = model.hostWeights();
        Map<String, int[][]> perms = new LinkedHashMap<>();
        List<GroupReport> reports = new ArrayList<>();
        if (permutation.enabled()) {
            SplittableRandom root = new SplittableRandom(seed);
            for (int l = 0; l < c.numLayers(); l++) {
                for (boolean mlp : new boolean[] {true, false}) {
                    FoldGroup g = foldGroup(c, l, mlp, pattern, weights, norms);
                    ChannelPermutation.Outcome o = g.search().optimise(root.nextLong(), permutation.maxRounds(),
                            permutation.patience(), permutation.maxFreed());
                    g.fold(o.perm(), weights, norms);
                    perms.put(permutationKey(l, mlp), o.perm());
                    reports.add(new GroupReport(permutationKey(l, mlp), o.before() / g.totalScore(),
                            o.after() / g.totalScore(), o.rounds()));
                }
            }
        }
        return new Prepared(c, weights, norms, perms, reports);
    }

    /** The best mask of every decoder linear layer for these weights (and input norms, for activation scores). */
    public static Map<String, VnmMask> masks(ModelConfig c, Map<String, float[]> weights, Map<String, float[]> norms,
                                             VnmPattern pattern) {
        Map<String, long[]> shapes = ParameterShapes.of(c);
        Map<String, VnmMask> out = new LinkedHashMap<>();
        for (String name : TappedForward.linearNames(c)) {
            int rows = (int) shapes.get(name)[0];
            int cols = (int) shapes.get(name)[1];
            float[] s = score(weights.get(name), norms == null ? null : norms.get(name), rows, cols);
            out.put(name, VnmSelector.select(s, rows, cols, pattern));
        }
        return out;
    }

    /** |W| or |W_ij|·‖x_j‖, row-major. */
    static float[] score(float[] w, float[] norm, int rows, int cols) {
        float[] s = new float[w.length];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                float a = Math.abs(w[r * cols + j]);
                s[r * cols + j] = norm == null ? a : a * norm[j];
            }
        }
        return s;
    }

    /** ‖x_j‖₂ over every calibration token, for the input x of every linear layer (the original model). */
    static Map<String, float[]> inputNorms(Qwen3Model model, List<int[]> calibration) {
        Map<String, double[]> sums = new LinkedHashMap<>();
        new TappedForward(model).run(calibration, false, 0, tap -> {
            double[] s = sums.computeIfAbsent(tap.name(), k -> new double[tap.in()]);
            float[] x = tap.x();
            for (int t = 0; t < tap.tokens(); t++) {
                for (int j = 0; j < tap.in(); j++) {
                    double v = x[t * tap.in() + j];
                    s[j] += v * v;
                }
            }
        });
        Map<String, float[]> out = new LinkedHashMap<>();
        sums.forEach((name, s) -> {
            float[] n = new float[s.length];
            for (int j = 0; j < s.length; j++) {
                n[j] = (float) Math.sqrt(s[j]);
            }
            out.put(name, n);
        });
        return out;
    }

    /** One fold group: its search problem and how to fold its permutation into weights and norms. */
    record FoldGroup(ChannelPermutation search, String[] columnNames, String[] rowNames, double totalScore,
                     int[] colShape, int[] rowShape) {

        void fold(int[][] perm, Map<String, float[]> weights, Map<String, float[]> norms) {
            for (String n : columnNames) {
                weights.put(n, search.permuteColumns(weights.get(n), colShape[0], colShape[1], perm));
                if (norms != null) {
                    norms.put(n, search.permuteColumns(norms.get(n), 1, colShape[1], perm));
                }
            }
            for (String n : rowNames) {
                weights.put(n, search.permuteRows(weights.get(n), rowShape[0], rowShape[1], perm));
            }
        }
    }

    static FoldGroup foldGroup(ModelConfig c, int layer, boolean mlp, VnmPattern pattern, Map<String, float[]> weights,
                               Map<String, float[]> norms) {
        String p = "model.layers." + layer + ".";
        int h = c.hiddenSize();
        String col;
        String[] rowNames;
        int size;
        int[][] base;
        int[] rowBase;
        int cols;
        int rowRows;
        if (mlp) {
            col = p + "mlp.down_proj.weight";
            rowNames = new String[] {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"};
            size = c.intermediateSize();
            base = new int[][] {{0}};
            rowBase = new int[] {0};
            cols = c.intermediateSize();
            rowRows = c.intermediateSize();
        } else {
            col = p + "self_attn.o_proj.weight";
            rowNames = new String[] {p + "self_attn.v_proj.weight"};
            size = c.headDim();
            int kv = c.numKvHeads();
            int r = c.groupSize();
            base = new int[kv][r];
            rowBase = new int[kv];
            for (int g = 0; g < kv; g++) {
                rowBase[g] = g * size;
                for (int k = 0; k < r; k++) {
                    base[g][k] = (g * r + k) * size; // query head g·r + k reads KV head g
                }
            }
            cols = c.numHeads() * c.headDim();
            rowRows = kv * c.headDim();
        }
        float[] colScore = score(weights.get(col), norms == null ? null : norms.get(col), h, cols);
        double total = sum(colScore);
        List<ChannelPermutation.Rows> rows = new ArrayList<>();
        for (String n : rowNames) {
            float[] s = score(weights.get(n), norms == null ? null : norms.get(n), rowRows, h);
            total += sum(s);
            rows.add(new ChannelPermutation.Rows(s, rowRows, h));
        }
        ChannelPermutation search = new ChannelPermutation(pattern, size, base, rowBase,
                List.of(new ChannelPermutation.Columns(colScore, h, cols)), rows);
        return new FoldGroup(search, new String[] {col}, rowNames, total, new int[] {h, cols}, new int[] {rowRows, h});
    }

    private static double sum(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return s;
    }
}
