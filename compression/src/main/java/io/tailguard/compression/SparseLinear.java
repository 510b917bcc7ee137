package io.tailguard.compression;

/**
 * One V:N:M-pruned linear layer as stored: its mask and the kept values, two per row per column
 * block in the order of {@link VnmMask#picks()} ([rows, column blocks, 2]; a kept padding entry of a
 * narrow last block holds 0).
 *
 * @param name Hugging Face weight name, e.g. {@code model.layers.0.mlp.down_proj.weight}
 */
public record SparseLinear(String name, VnmMask mask, float[] values) {

    public SparseLinear {
        if (values.length != mask.rows() * mask.columnBlocks() * mask.pattern().n()) {
            throw new IllegalArgumentException(name + ": " + values.length + " values do not match the mask of "
                    + mask.rows() + " x " + mask.cols() + " at " + mask.pattern());
        }
    }

    /** Keeps the entries of w [rows · cols] that the mask keeps. */
    public static SparseLinear of(String name, float[] w, VnmMask mask) {
        int n = mask.pattern().n();
        int cb = mask.columnBlocks();
        float[] values = new float[mask.rows() * cb * n];
        for (int r = 0; r < mask.rows(); r++) {
            for (int b = 0; b < cb; b++) {
                for (int e = 0; e < n; e++) {
                    int c = mask.keptColumn(r, b, e);
                    values[(r * cb + b) * n + e] = c < mask.cols() ? w[r * mask.cols() + c] : 0f;
                }
            }
        }
        return new SparseLinear(name, mask, values);
    }

    /** The layer in native memory, in its stored layout (kept values, 2-bit positions, column offsets). */
    public io.tailguard.model.PackedLinear toPacked() {
        VnmPattern p = mask.pattern();
        return io.tailguard.model.PackedLinear.vnm(mask.rows(), mask.cols(), p.v(), p.m(), values,
                PackedCodes.pack(mask.picks(), 2), mask.columns());
    }

    /** The dense weight [rows · cols], row-major, zeros where pruned. */
    public float[] dense() {
        int n = mask.pattern().n();
        int cb = mask.columnBlocks();
        float[] out = new float[mask.rows() * mask.cols()];
        for (int r = 0; r < mask.rows(); r++) {
            for (int b = 0; b < cb; b++) {
                for (int e = 0; e < n; e++) {
                    int c = mask.keptColumn(r, b, e);
                    if (c < mask.cols()) {
                        out[r * mask.cols() + c] = values[(r * cb + b) * n + e];
                    }
                }
            }
        }
        return out;
    }
}
