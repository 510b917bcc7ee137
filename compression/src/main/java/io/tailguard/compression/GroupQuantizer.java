package io.tailguard.compression;

import io.tailguard.model.io.DType;

/**
 * A uniform scalar quantizer with one step size per group of {@code groupSize} consecutive input
 * columns of each row. Levels are mid-rise, step·(c − (2^b − 1)/2) for codes c in [0, 2^b), so
 * the grid is symmetric about zero: after incoherence processing the weights are close to a
 * zero-mean Gaussian, and a symmetric grid wastes no level on one side.
 *
 * <p>Steps are chosen once, from the weights before rounding, as the Gaussian-optimal uniform step
 * (Max, 1960) times the group's RMS, and rounded to float16 because that is how they are stored:
 * the in-memory quantized model and the one loaded from disk are then bit for bit the same.
 * Targets that the error feedback pushes beyond the grid are clamped to its end levels.
 */
final class GroupQuantizer {
    /** Step / σ of the MSE-optimal uniform quantizer of a unit Gaussian, for 2^1 .. 2^8 levels. */
    private static final double[] GAUSSIAN_STEP = {1.596, 0.9957, 0.5860, 0.3352, 0.1881, 0.1041, 0.0568, 0.0308};

    private final int bits;
    private final int groupSize;
    private final int cols;
    private final int groups;
    private final float[] steps; // [rows, groups], float16-representable
    private final double offset;
    private final int maxCode;

    GroupQuantizer(int bits, int groupSize, int cols, float[] steps) {
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("bits must be in 2..8, got " + bits);
        }
        if (groupSize < 1) {
            throw new IllegalArgumentException("group size must be positive, got " + groupSize);
        }
        this.bits = bits;
        this.groupSize = groupSize;
        this.cols = cols;
        this.groups = groupsOf(cols, groupSize);
        this.steps = steps;
        this.maxCode = (1 << bits) - 1;
        this.offset = maxCode / 2.0;
        if (steps.length % groups != 0) {
            throw new IllegalArgumentException(steps.length + " steps do not fill rows of " + groups + " groups");
        }
    }

    static int groupsOf(int cols, int groupSize) {
        return (cols + groupSize - 1) / groupSize;
    }

    /** Steps fitted to w [rows, cols] (the incoherent weights, before any rounding). */
    static GroupQuantizer fit(double[][] w, int bits, int groupSize) {
        int rows = w.length;
        int cols = w[0].length;
        int groups = groupsOf(cols, groupSize);
        float[] steps = new float[rows * groups];
        double c = GAUSSIAN_STEP[bits - 1];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groups; g++) {
                int c0 = g * groupSize;
                int c1 = Math.min(cols, c0 + groupSize);
                double ss = 0;
                for (int j = c0; j < c1; j++) {
                    ss += w[r][j] * w[r][j];
                }
                double rms = Math.sqrt(ss / (c1 - c0));
                steps[r * groups + g] = toHalf(Math.max(c * rms, 1e-4));
            }
        }
        return new GroupQuantizer(bits, groupSize, cols, steps);
    }

    static float toHalf(double v) {
        return DType.f16BitsToFloat(DType.floatToF16Bits((float) v));
    }

    double step(int row, int col) {
        return steps[row * groups + col / groupSize];
    }

    /** The nearest code to v, clamped to the grid. */
    int code(double v, int row, int col) {
        long c = Math.round(v / step(row, col) + offset);
        return (int) Math.max(0, Math.min(maxCode, c));
    }

    double value(int code, int row, int col) {
        return step(row, col) * (code - offset);
    }

    int bits() {
        return bits;
    }

    int groupSize() {
        return groupSize;
    }

    int cols() {
        return cols;
    }

    float[] steps() {
        return steps.clone();
    }
}
