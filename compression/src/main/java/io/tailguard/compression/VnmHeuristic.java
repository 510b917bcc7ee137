package io.tailguard.compression;

import io.tailguard.model.ModelConfig;

import java.util.Optional;

/**
 * Choosing V and M for a speedup target (docs/algorithms.md, "V:N:M sparsity"): among the (V, M) that fit every layer
 * and meet the target, take the one with the largest mask diversity.
 *
 * <p>Diversity: a V × M block has C(M, 4)·6^V masks, so a weight of R·C entries has
 * (C(M, 4)·6^V)^(R·C / (V·M)) of them; per entry, log diversity = (ln C(M, 4) + V·ln 6) / (V·M).
 * The ln 6 / M term dominates, so this prefers the smallest M, then the smallest V, as the paper
 * does in practice.
 *
 * <p>Speedup: no V:N:M kernel runs here, so a (V, M)'s speedup over dense is predicted by the
 * memory-traffic model of a memory-bound decode GEMV: dense reads 2 bytes per weight (fp16); the
 * V:N:M format reads, per V × M block, V·2 fp16 values, V·2 two-bit 2:4 indices and 4 column
 * offsets of ⌈log₂ M⌉ bits (none for M = 4, where every column is kept). This gives 2:4 1.78× and
 * 64:2:8 3.54× against VENOM's measured 1.68× and 3.2× on an RTX 3090, i.e. it is an upper bound of
 * the right size; {@link #choose} takes any other speedup function (a measured table) instead.
 *
 * <p>Candidates: V in {16, 32, 64, 128} (multiples of the Sparse Tensor Core's 16-row tile) that
 * divide every layer's rows, and M in 4..{@link VnmPattern#MAX_M}.
 */
public final class VnmHeuristic {
    static final int[] V_CANDIDATES = {16, 32, 64, 128};

    /** Predicted speedup of a pattern over dense. */
    @FunctionalInterface
    public interface Speedup {
        double of(int v, int m);
    }

    private VnmHeuristic() {}

    /** The memory-traffic model described above. */
    public static double predictedSpeedup(int v, int m) {
        double dense = 2.0 * v * m;
        double indexBits = m == VnmPattern.COLUMNS_KEPT ? 0 : 32 - Integer.numberOfLeadingZeros(m - 1);
        double sparse = 2.0 * 2 * v + v * 2 * 2 / 8.0 + VnmPattern.COLUMNS_KEPT * indexBits / 8.0;
        return dense / sparse;
    }

    /** Log mask diversity per weight entry of V:2:M. */
    public static double logDiversityPerEntry(int v, int m) {
        double combos = (double) m * (m - 1) * (m - 2) * (m - 3) / 24;
        return (Math.log(combos) + v * Math.log(6)) / ((double) v * m);
    }

    public static Optional<VnmPattern> choose(ModelConfig c, double target) {
        return choose(c, target, VnmHeuristic::predictedSpeedup);
    }

    /** The most diverse fitting pattern whose speedup is at least {@code target}; empty when none is. */
    public static Optional<VnmPattern> choose(ModelConfig c, double target, Speedup speedup) {
        VnmPattern best = null;
        double bestDiversity = Double.NEGATIVE_INFINITY;
        for (int m = VnmPattern.COLUMNS_KEPT; m <= VnmPattern.MAX_M; m++) {
            for (int v : V_CANDIDATES) {
                VnmPattern p = new VnmPattern(v, 2, m);
                if (p.misfit(c).isPresent() || speedup.of(v, m) < target) {
                    continue;
                }
                double d = logDiversityPerEntry(v, m);
                if (d > bestDiversity) {  // strict: on a tie the smaller M, then V, seen first, stays
                    bestDiversity = d;
                    best = p;
                }
            }
        }
        return Optional.ofNullable(best);
    }
}
