package io.tailguard.model.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A tensor in host memory, as stored in a checkpoint: little-endian elements of {@code dtype},
 * row-major, exactly {@code numel * dtype.bytes()} bytes (often a read-only slice of a mapped file).
 */
public record HostTensor(DType dtype, long[] shape, ByteBuffer data) {

    public HostTensor {
        if (dtype == null || shape == null || data == null) {
            throw new IllegalArgumentException("dtype, shape and data are required");
        }
        shape = shape.clone();
        long n = numel(shape);
        long need = Math.multiplyExact(n, (long) dtype.bytes());
        if (data.remaining() != need) {
            throw new IllegalArgumentException("tensor " + dtype + " " + Arrays.toString(shape) + " needs "
                    + need + " bytes, buffer has " + data.remaining());
        }
        // Own view: later position/limit changes on the caller's buffer cannot alter this tensor.
        data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A copy, because records expose arrays by reference. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** A fresh little-endian view each call, so readers cannot disturb each other's position. */
    @Override
    public ByteBuffer data() {
        return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    public long numel() {
        return numel(shape);
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /**
     * The index of the first element that is NaN or infinite, or -1 when all are finite. Reads the
     * stored bits (an all-ones exponent) without converting, so a whole checkpoint is checked in
     * about the time it takes to page it in.
     */
    public long firstNonFinite() {
        long n = numel();
        ByteBuffer b = data;  // absolute reads only
        switch (dtype) {
            case F32 -> {
                for (long i = 0; i < n; i++) {
                    if ((b.getInt((int) (i * 4)) & 0x7F800000) == 0x7F800000) {
                        return i;
                    }
                }
            }
            case BF16 -> {
                for (long i = 0; i < n; i++) {
                    if ((b.getShort((int) (i * 2)) & 0x7F80) == 0x7F80) {
                        return i;
                    }
                }
            }
            case F16 -> {
                for (long i = 0; i < n; i++) {
                    if ((b.getShort((int) (i * 2)) & 0x7C00) == 0x7C00) {
                        return i;
                    }
                }
            }
        }
        return -1;
    }

    public float[] toFloats() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor of " + n + " elements does not fit a float[]");
        }
        float[] out = new float[(int) n];
        ByteBuffer b = data;  // absolute reads only: no shared position is touched
        switch (dtype) {
            case F32 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = b.getFloat(i * 4);
                }
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = DType.bf16BitsToFloat(b.getShort(i * 2));
                }
            }
            case F16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = DType.f16BitsToFloat(b.getShort(i * 2));
                }
            }
        }
        return out;
    }

    public static HostTensor ofFloats(long[] shape, float[] values, DType storeAs) {
        long n = numel(shape);
        if (values.length != n) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has " + n
                    + " elements, got " + values.length + " values");
        }
        ByteBuffer b = ByteBuffer.allocate(values.length * storeAs.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        switch (storeAs) {
            case F32 -> {
                for (float v : values) {
                    b.putFloat(v);
                }
            }
            case BF16 -> {
                for (float v : values) {
                    b.putShort(DType.floatToBf16Bits(v));
                }
            }
            case F16 -> {
                for (float v : values) {
                    b.putShort(DType.floatToF16Bits(v));
                }
            }
        }
        b.flip();
        return new HostTensor(storeAs, shape, b);
    }

    /** This tensor in {@code target}, or this very tensor when it already is. */
    public HostTensor convertTo(DType target) {
        return target == dtype ? this : ofFloats(shape, toFloats(), target);
    }

    // Records compare arrays by reference; tensors are equal when dtype, shape and bytes are.
    @Override
    public boolean equals(Object o) {
        return o instanceof HostTensor t && t.dtype == dtype && Arrays.equals(t.shape, shape) && t.data.equals(data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * dtype.hashCode() + Arrays.hashCode(shape)) + data.hashCode();
    }

    @Override
    public String toString() {
        return "HostTensor[" + dtype + " " + Arrays.toString(shape) + "]";
    }
}
