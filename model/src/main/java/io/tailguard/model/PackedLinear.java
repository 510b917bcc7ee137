package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One linear layer's weight [rows, cols] kept in a compressed layout in native memory, which the
 * native decoder layer (src/main/c/tg_packed.h) multiplies with as it is: group-quantized codes
 * with float16 steps in an incoherent (randomized Hadamard) basis, or V:N:M kept values with their
 * 2:4 positions and column offsets. The layouts are the compressed checkpoints' own; the model
 * module does not read those files, the compression module fills these from them.
 *
 * <p>Needs the native decoder library ({@link #supported()}); where it is missing, compressed
 * checkpoints load dequantized to float32 instead. Closing frees the native memory.
 */
public final class PackedLinear implements AutoCloseable {
    /** How the weight is stored. */
    public enum Format { QUANTIZED, VNM }

    /**
     * The activations a group-quantized product multiplies with: FLOAT32 (the default), or INT8, each
     * sequence's rotated activations rounded to int8 with one scale per call (W4A8 / W8A8: integer dot
     * products per group, AVX-512 VNNI where the CPU has it). INT8 changes the results (the activations
     * lose precision), so it is always an explicit choice.
     */
    public enum Activations {
        FLOAT32(""),
        INT8(" a8");

        private final String suffix;

        Activations(String suffix) {
            this.suffix = suffix;
        }
    }

    private final Format format;
    private final int rows;
    private final int cols;
    private final String label;
    private final Activations activations;
    private long handle;

    private PackedLinear(Format format, int rows, int cols, String label, Activations activations, long handle) {
        this.format = format;
        this.rows = rows;
        this.cols = cols;
        this.label = label;
        this.activations = activations;
        this.handle = handle;
    }

    /** Whether packed linears can be built here (the native decoder library is loaded). */
    public static boolean supported() {
        return NativeDecode.LIBRARY.loaded();
    }

    /** Why not, or null. */
    public static String unsupportedReason() {
        return NativeDecode.LIBRARY.unavailableReason();
    }

    /**
     * A group-quantized weight W = diag(s_out) Had_out W̃ Had_in diag(s_in), W̃[r, c] = step[r, c / groupSize]
     * · (code[r, c] − (2^bits − 1)/2), Had the orthonormal Hadamard, block-diagonal with the largest
     * power of two dividing the dimension.
     *
     * @param codes     rows · cols codes of {@code bits} bits, row-major, as one little-endian bit stream
     *                  (code i at bits [i·bits, (i+1)·bits), bit k in byte k/8 at position k%8)
     * @param scalesF16 steps [rows, ceil(cols / groupSize)] as little-endian float16
     * @param signsOut  s_out, one bit per row in the same stream order, 1 = −1
     * @param signsIn   s_in, one bit per column, 1 = −1
     */
    public static PackedLinear quantized(int rows, int cols, int bits, int groupSize, byte[] codes, byte[] scalesF16,
                                         byte[] signsOut, byte[] signsIn) {
        return quantized(rows, cols, bits, groupSize, codes, scalesF16, signsOut, signsIn, Activations.FLOAT32);
    }

    /**
     * {@link #quantized(int, int, int, int, byte[], byte[], byte[], byte[])} whose products multiply with
     * {@code activations}: with {@link Activations#INT8}, per call and sequence j, x̃_j = Had_in(s_in ⊙ x_j),
     * a_j = max_k |x̃_jk| / 127, xq_jk = round(x̃_jk / a_j), and z_jr = a_j Σ_g step_rg (Σ_{k∈g} code_rk xq_jk
     * − (2^bits − 1)/2 · Σ_{k∈g} xq_jk), the sums exact in int32; the output side as for float32.
     */
    public static PackedLinear quantized(int rows, int cols, int bits, int groupSize, byte[] codes, byte[] scalesF16,
                                         byte[] signsOut, byte[] signsIn, Activations activations) {
        requireSupported();
        java.util.Objects.requireNonNull(activations, "activations");
        if (rows < 1 || cols < 1 || bits < 2 || bits > 8 || groupSize < 1) {
            throw new IllegalArgumentException("packed linear: rows " + rows + ", cols " + cols + ", bits " + bits
                    + " (2..8), group size " + groupSize);
        }
        long groups = (cols + (long) groupSize - 1) / groupSize;
        expect("codes", codes.length, ((long) rows * cols * bits + 7) / 8);
        expect("scales", scalesF16.length, 2L * rows * groups);
        expect("signs_out", signsOut.length, (rows + 7L) / 8);
        expect("signs_in", signsIn.length, (cols + 7L) / 8);
        long h = NativeDecode.packedQuantized(rows, cols, bits, groupSize, codes, scalesF16, signsOut, signsIn,
                activations == Activations.INT8);
        return new PackedLinear(Format.QUANTIZED, rows, cols, bits + "-bit g" + groupSize + activations.suffix, activations, h);
    }

    /**
     * A V:N:M-pruned weight (N = 2): in every block of v rows × m columns the v rows share four
     * selected columns, and each row keeps two of them.
     *
     * @param values  the kept values [rows, column blocks, 2], column blocks = ceil(cols / m)
     * @param meta    the kept positions among the block's four columns, [rows, column blocks, 2] of 2
     *                bits each as one little-endian bit stream, ascending per row and block
     * @param columns the four column offsets (0 .. m−1, ascending) of every block, [rows / v, column blocks, 4],
     *                one byte each; offsets past the last real column of a narrow last block are padding
     */
    public static PackedLinear vnm(int rows, int cols, int v, int m, float[] values, byte[] meta, byte[] columns) {
        requireSupported();
        if (rows < 1 || cols < 4 || v < 1 || rows % v != 0 || m < 4 || m > 32) {
            throw new IllegalArgumentException("packed V:N:M linear: rows " + rows + ", cols " + cols + ", V " + v
                    + " (must divide rows), M " + m + " (4..32)");
        }
        long cb = (cols + (long) m - 1) / m;
        expect("values", values.length, (long) rows * cb * 2);
        expect("meta", meta.length, ((long) rows * cb * 4 + 7) / 8);
        expect("columns", columns.length, (long) rows / v * cb * 4);
        for (byte c : columns) {
            if (c < 0 || c >= m) {
                throw new IllegalArgumentException("packed V:N:M linear: column offset " + c + " not in 0.." + (m - 1));
            }
        }
        long h = NativeDecode.packedVnm(rows, cols, v, m, values, meta, columns);
        return new PackedLinear(Format.VNM, rows, cols, v + ":2:" + m, Activations.FLOAT32, h);
    }

    /**
     * Lets int8-activation products use the AVX-512 VNNI kernels (true, the default) or forces the
     * portable ones (false), for every packed linear of the process; returns whether the VNNI kernels
     * are in use now (allowed, and the CPU has AVX-512 F/BW/VL/DQ/VNNI). Both compute the same integer
     * sums; only the float summation order differs. For tests and diagnosis.
     */
    public static boolean useWideVectors(boolean allow) {
        requireSupported();
        return NativeDecode.setWideVectors(allow);
    }

    private static void requireSupported() {
        if (!supported()) {
            throw new IllegalStateException("packed weights need the native decoder library: " + unsupportedReason());
        }
    }

    private static void expect(String what, long got, long want) {
        if (got != want) {
            throw new IllegalArgumentException("packed linear: " + what + " has " + got + " bytes or values, expected " + want);
        }
    }

    public Format format() {
        return format;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** "4-bit g32", "4-bit g32 a8" (int8 activations) or "64:2:5". */
    public String label() {
        return label;
    }

    /** The activations the products multiply with (FLOAT32 for V:N:M). */
    public Activations activations() {
        return activations;
    }

    /** Bytes the weight holds in memory. */
    public long bytes() {
        return NativeDecode.packedBytes(handle());
    }

    synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException("packed linear closed");
        }
        return handle;
    }

    /** y = x Wᵀ for x [batch, cols] row-major: [batch, rows], computed from the packed weight. */
    public float[] multiply(float[] x, int batch) {
        if (batch < 1 || x.length != (long) batch * cols) {
            throw new IllegalArgumentException("multiply: " + x.length + " values are not " + batch + " x " + cols);
        }
        ByteBuffer in = ByteBuffer.allocateDirect(4 * x.length).order(ByteOrder.nativeOrder());
        in.asFloatBuffer().put(x);
        ByteBuffer out = ByteBuffer.allocateDirect(4 * batch * rows).order(ByteOrder.nativeOrder());
        NativeDecode.packedMultiply(handle(), in, batch, out, NativeLibraries.threads());
        float[] y = new float[batch * rows];
        out.asFloatBuffer().get(y);
        return y;
    }

    /** The weight in the original basis, [rows · cols] row-major. */
    public float[] dequantize() {
        ByteBuffer out = ByteBuffer.allocateDirect(4 * rows * cols).order(ByteOrder.nativeOrder());
        NativeDecode.packedDequantize(handle(), out, NativeLibraries.threads());
        float[] w = new float[rows * cols];
        out.asFloatBuffer().get(w);
        return w;
    }

    /** The parts stacked by rows as one float32 tensor [Σ rows, cols] of {@code m}: a product's weight. */
    static NDArray dequantize(PackedLinear[] parts, NDManager m) {
        long total = 0;
        for (PackedLinear p : parts) {
            total += p.rows;
        }
        int c = parts[0].cols;
        NDArray w = m.zeros(new Shape(total, c), DataType.FLOAT32);
        ByteBuffer view = NativeLibraries.view(w);
        int at = 0;
        for (PackedLinear p : parts) {
            int len = 4 * p.rows * c;
            NativeDecode.packedDequantize(p.handle(), view.slice(at, len), NativeLibraries.threads());
            at += len;
        }
        return w;
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            NativeDecode.packedFree(handle);
            handle = 0;
        }
    }
}
