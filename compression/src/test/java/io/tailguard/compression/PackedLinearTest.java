package io.tailguard.compression;

import io.tailguard.model.PackedLinear;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native packed-weight products against the float32 product of the weight the format defines,
 * dequantized here in Java (QuantizedLinear.dequantize, SparseLinear.dense) and multiplied in double.
 * Shapes reach every tail: columns not a multiple of 8 (the unpacking's vector width) or of the group,
 * rows whose codes do not start on a byte (odd width × bits), Hadamard blocks of 1 (odd dimensions),
 * groups that are not a multiple of 8 and widths the vector unpacker does not take (5..7 bits), which
 * take the general path; batches of 1, 3, 8 and 11 (one full tile of 8 sequences and a partial one).
 */
class PackedLinearTest {
    private static final int[] BATCHES = {1, 3, 8, 11};

    @BeforeEach
    void needsTheLibrary() {
        Assumptions.assumeTrue(PackedLinear.supported(), () -> "native decoder library not loaded: " + PackedLinear.unsupportedReason());
    }

    static QuantizedLinear randomQuantized(int rows, int cols, int bits, int group, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] codes = new byte[rows * cols];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) r.nextInt(1 << bits);
        }
        float[] steps = new float[rows * GroupQuantizer.groupsOf(cols, group)];
        for (int i = 0; i < steps.length; i++) {
            steps[i] = GroupQuantizer.toHalf(0.01 + 0.05 * r.nextDouble());
        }
        return new QuantizedLinear("w", rows, cols, bits, group, codes, steps,
                Incoherence.randomSigns(rows, r), Incoherence.randomSigns(cols, r));
    }

    static PackedLinear pack(QuantizedLinear q) {
        return PackedLinear.quantized(q.rows(), q.cols(), q.bits(), q.groupSize(), PackedCodes.pack(q.codes(), q.bits()),
                QuantizedCheckpoint.halves(q.steps()), PackedCodes.packSigns(q.signsOut()), PackedCodes.packSigns(q.signsIn()));
    }

    /** A random V:N:M layer: random ascending column offsets per block, random ascending 2:4 positions, random values. */
    static SparseLinear randomSparse(VnmPattern p, int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int cb = p.columnBlocks(cols);
        byte[] columns = new byte[rows / p.v() * cb * 4];
        for (int i = 0; i < columns.length; i += 4) {
            int[] pick = ascending(r, p.m(), 4);
            for (int k = 0; k < 4; k++) {
                columns[i + k] = (byte) pick[k];
            }
        }
        byte[] picks = new byte[rows * cb * 2];
        for (int i = 0; i < picks.length; i += 2) {
            int[] pick = ascending(r, 4, 2);
            picks[i] = (byte) pick[0];
            picks[i + 1] = (byte) pick[1];
        }
        float[] values = new float[rows * cb * 2];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) r.nextGaussian();
        }
        return new SparseLinear("w", new VnmMask(p, rows, cols, columns, picks), values);
    }

    private static int[] ascending(SplittableRandom r, int n, int k) {
        boolean[] on = new boolean[n];
        for (int chosen = 0; chosen < k; ) {
            int i = r.nextInt(n);
            if (!on[i]) {
                on[i] = true;
                chosen++;
            }
        }
        int[] out = new int[k];
        for (int i = 0, j = 0; i < n; i++) {
            if (on[i]) {
                out[j++] = i;
            }
        }
        return out;
    }

    private static float[] randomX(int batch, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[batch * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    /**
     * Each output against Σ_c w[r, c] x[b, c] in double, within 1e-5 of Σ_c |w[r, c] x[b, c]|: float32
     * rounding of the sums and of the Hadamard transforms stays far below that, while one wrong code,
     * step, sign or position moves an output by about one term, Σ / cols, which is far above it.
     */
    private static void assertProduct(float[] w, int rows, int cols, PackedLinear p, int batch, String what) {
        float[] x = randomX(batch, cols, 31L * rows + cols + batch);
        float[] y = p.multiply(x, batch);
        assertEquals(batch * rows, y.length, what);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) {
                double s = 0;
                double abs = 0;
                for (int c = 0; c < cols; c++) {
                    double t = (double) w[r * cols + c] * x[b * cols + c];
                    s += t;
                    abs += Math.abs(t);
                }
                double err = Math.abs(y[b * rows + r] - s);
                assertTrue(err <= 1e-5 * abs + 1e-7, what + ", batch " + batch + ", row " + r + ", sequence " + b
                        + ": " + y[b * rows + r] + " vs " + s + " (terms " + abs + ")");
            }
        }
    }

    private static void assertDequantized(float[] w, PackedLinear p, String what) {
        float[] d = p.dequantize();
        assertEquals(w.length, d.length, what);
        double scale = 0;
        for (float v : w) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < w.length; i++) {
            assertTrue(Math.abs(w[i] - d[i]) <= 1e-5 * scale, what + ": weight " + i + ": " + d[i] + " vs " + w[i]);
        }
    }

    @Test
    void quantizedProductsMatchTheDequantizedWeights() {
        int[][] shapes = {
                // rows, cols, bits, group
                {37, 100, 4, 32},   // cols = 4·25: Hadamard block 4, column tail 4, narrow last group; odd rows
                {24, 77, 4, 32},    // odd width: rows start inside bytes; Hadamard block 1 on the input
                {40, 200, 8, 32},   // 8 bits; block 8 on the input, 8 on the output
                {16, 96, 3, 16},    // 3 bits, rows on bytes (96·3 = 288 bits)
                {20, 45, 3, 8},     // 3 bits, rows inside bytes, tail 5
                {64, 128, 2, 32},   // 2 bits, power-of-two blocks on both sides
                {9, 52, 2, 4},      // group 4: the general path
                {12, 80, 5, 16},    // 5 bits: the general path
                {8, 64, 6, 32},
                {8, 40, 7, 8},
        };
        for (int[] s : shapes) {
            QuantizedLinear q = randomQuantized(s[0], s[1], s[2], s[3], s[0] * 1000L + s[1]);
            float[] w = q.dequantize();
            String what = s[0] + "x" + s[1] + " at " + s[2] + " bits, group " + s[3];
            try (PackedLinear p = pack(q)) {
                assertDequantized(w, p, what);
                for (int batch : BATCHES) {
                    assertProduct(w, s[0], s[1], p, batch, what);
                }
            }
        }
    }

    @Test
    void vnmProductsMatchTheDenseWeights() {
        Object[][] cases = {
                {new VnmPattern(64, 2, 5), 128, 103},  // 21 column blocks (rows' 2:4 positions start inside bytes), last block 3 wide
                {new VnmPattern(4, 2, 7), 12, 50},     // last block 1 wide: three padding offsets
                {VnmPattern.TWO_FOUR, 13, 30},         // 2:4, odd rows, last block 2 wide
                {new VnmPattern(2, 2, 8), 6, 64},
                {new VnmPattern(16, 2, 32), 32, 70},
        };
        for (Object[] c : cases) {
            VnmPattern p = (VnmPattern) c[0];
            int rows = (int) c[1];
            int cols = (int) c[2];
            SparseLinear s = randomSparse(p, rows, cols, rows * 7L + cols);
            float[] w = s.dense();
            String what = p + " " + rows + "x" + cols;
            try (PackedLinear packed = s.toPacked()) {
                assertDequantized(w, packed, what);
                for (int batch : BATCHES) {
                    assertProduct(w, rows, cols, packed, batch, what);
                }
            }
        }
    }

    @Test
    void packedBytesAreTheFormats() {
        QuantizedLinear q = randomQuantized(64, 512, 4, 32, 1);
        try (PackedLinear p = pack(q)) {
            // codes 64·512/2, float16 steps 64·16·2, signs 64/8 + 512/8
            assertEquals(64 * 256 + 64 * 16 * 2 + 8 + 64, p.bytes());
        }
        SparseLinear s = randomSparse(new VnmPattern(64, 2, 5), 64, 500, 2);
        try (PackedLinear p = s.toPacked()) {
            // values 64·100·2 float32, positions 4 bits per block, offsets one byte each per row block and block
            assertEquals(64 * 100 * 2 * 4 + 64 * 50 + 100 * 4, p.bytes());
        }
    }

    @Test
    void malformedArraysAreRefusedNamingThePart() {
        QuantizedLinear q = randomQuantized(8, 16, 4, 8, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PackedLinear.quantized(8, 16, 4, 8,
                new byte[10], QuantizedCheckpoint.halves(q.steps()), new byte[1], new byte[2]));
        assertTrue(e.getMessage().contains("codes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> PackedLinear.vnm(8, 16, 4, 5, new float[8 * 4 * 2],
                new byte[16], new byte[] {0, 1, 2, 9, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));
        assertTrue(e.getMessage().contains("column offset 9"), e.getMessage());
    }
}
