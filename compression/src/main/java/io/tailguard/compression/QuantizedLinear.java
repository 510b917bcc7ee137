package io.tailguard.compression;

/**
 * One quantized linear layer, as stored: codes in the rotated basis, one float16-exact step per
 * group of {@code groupSize} input columns of a row, and the sign vectors of the incoherence
 * transform (the Hadamard blocks follow from the dimensions, {@link Incoherence#hadamardBlock}).
 *
 * @param name      Hugging Face weight name, e.g. {@code model.layers.0.self_attn.q_proj.weight}
 * @param codes     [rows · cols] codes in [0, 2^bits), row-major
 * @param steps     [rows · ceil(cols / groupSize)] step sizes
 * @param signsOut  ±1 per output channel (rows)
 * @param signsIn   ±1 per input channel (cols)
 */
public record QuantizedLinear(String name, int rows, int cols, int bits, int groupSize,
                              byte[] codes, float[] steps, byte[] signsOut, byte[] signsIn) {

    public QuantizedLinear {
        if (codes.length != rows * cols || signsOut.length != rows || signsIn.length != cols
                || steps.length != rows * GroupQuantizer.groupsOf(cols, groupSize)) {
            throw new IllegalArgumentException(name + ": arrays do not match " + rows + " x " + cols);
        }
    }

    /** The weights this layer computes with, [rows · cols] row-major, in the original basis. */
    public float[] dequantize() {
        GroupQuantizer q = new GroupQuantizer(bits, groupSize, cols, steps);
        double[][] rotated = new double[rows][cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                rotated[r][c] = q.value(codes[r * cols + c] & 0xff, r, c);
            }
        }
        double[][] w = Incoherence.unrotate(rotated, signsOut, signsIn);
        float[] out = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = (float) w[r][c];
            }
        }
        return out;
    }
}
