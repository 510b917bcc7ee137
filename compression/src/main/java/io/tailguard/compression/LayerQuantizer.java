package io.tailguard.compression;

import java.util.SplittableRandom;

/**
 * Quantizes one weight matrix: incoherence processing, per-group steps, then RTN, LDLQ or YAQA's
 * two-sided rounding in the rotated basis, with factors normalised and damped by {@link Factors}.
 */
final class LayerQuantizer {
    /** The quantized layer and the proxy error tr(ΔW H_I ΔWᵀ H_O) against the prepared factors. */
    record Outcome(QuantizedLinear layer, double proxyError) {}

    private LayerQuantizer() {}

    /**
     * @param w     [rows · cols] row-major
     * @param hIn   raw input factor [cols, cols]; null for RTN
     * @param hOut  raw output factor [rows, rows]; null for RTN and LDLQ (H_O = I)
     */
    static Outcome quantize(String name, float[] w, int rows, int cols, double[][] hIn, double[][] hOut,
                            int bits, int groupSize, SplittableRandom rng) {
        byte[] signsOut = Incoherence.randomSigns(rows, rng);
        byte[] signsIn = Incoherence.randomSigns(cols, rng);
        double[][] dense = new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                dense[r][c] = w[r * cols + c];
            }
        }
        double[][] rotated = Incoherence.rotate(dense, signsOut, signsIn);
        GroupQuantizer q = GroupQuantizer.fit(rotated, bits, groupSize);
        Factors.Prepared in = hIn == null ? null
                : Factors.prepare(Incoherence.rotateFactor(hIn, signsIn), TwoSidedRounding.TILE);
        Factors.Prepared out = hOut == null ? null
                : Factors.prepare(Incoherence.rotateFactor(hOut, signsOut), TwoSidedRounding.TILE);
        TwoSidedRounding.Result result = TwoSidedRounding.round(rotated,
                in == null ? null : in.ldl().lower(), out == null ? null : out.ldl().lower(), q);
        byte[] codes = new byte[rows * cols];
        double[][] delta = new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                codes[r * cols + c] = (byte) result.codes()[r][c];
                delta[r][c] = rotated[r][c] - result.quantized()[r][c];
            }
        }
        double proxy = Matrices.proxyError(delta, in == null ? Matrices.identity(cols) : in.h(),
                out == null ? Matrices.identity(rows) : out.h());
        return new Outcome(new QuantizedLinear(name, rows, cols, bits, groupSize, codes, q.steps(), signsOut, signsIn),
                proxy);
    }
}
