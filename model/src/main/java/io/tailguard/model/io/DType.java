package io.tailguard.model.io;

/**
 * Element types a checkpoint may store. Names follow safetensors ({@code F32}, {@code BF16},
 * {@code F16}); {@link #parse} also accepts the torch_dtype spellings of config.json.
 *
 * <p>The half-precision conversions are written out by hand because Java 17 has no
 * {@code Float.floatToFloat16}; both round to nearest, ties to even, as PyTorch does.
 */
public enum DType {
    F32(4, "F32", "float32"),
    BF16(2, "BF16", "bfloat16"),
    F16(2, "F16", "float16");

    private final int bytes;
    private final String safetensorsName;
    private final String torchName;

    DType(int bytes, String safetensorsName, String torchName) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
        this.torchName = torchName;
    }

    public int bytes() {
        return bytes;
    }

    public String safetensorsName() {
        return safetensorsName;
    }

    /** The config.json {@code torch_dtype} spelling: float32, bfloat16, float16. */
    public String torchName() {
        return torchName;
    }

    /**
     * @param where the file and tensor or key the name came from, for the error message
     * @throws CheckpointException for any other dtype (I8, F64, ...)
     */
    public static DType parse(String name, String where) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name) || d.torchName.equals(name)) {
                return d;
            }
        }
        throw new CheckpointException(where + ": unsupported dtype " + name + " (supported: F32, BF16, F16)");
    }

    // ---- bfloat16: the upper half of a float32 ----

    public static short floatToBf16Bits(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            // NaN: truncating could clear every payload bit and make it infinity; force the quiet bit.
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds to nearest with ties to even; an overflow
        // carries into the exponent and correctly yields infinity.
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float bf16BitsToFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    // ---- IEEE 754 binary16 ----

    public static short floatToF16Bits(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = (bits >>> 23) & 0xFF;
        int mant = bits & 0x7FFFFF;
        if (exp == 0xFF) {
            if (mant == 0) {
                return (short) (sign | 0x7C00);                         // infinity
            }
            return (short) (sign | 0x7C00 | 0x0200 | (mant >>> 13));  // quiet NaN, high payload kept
        }
        int e = exp - 127 + 15;  // rebias
        if (e >= 0x1F) {
            return (short) (sign | 0x7C00);  // too large even before rounding
        }
        if (e <= 0) {
            // Subnormal half: value = m * 2^-24. Below 2^-25 everything rounds to zero (2^-25 itself
            // is a tie and goes to the even zero, handled by the general rounding below).
            if (e < -10) {
                return (short) sign;
            }
            int m = mant | 0x800000;  // float32 implicit bit (float32 subnormals end up in e < -10)
            int shift = 14 - e;
            int h = m >>> shift;
            int rem = m & ((1 << shift) - 1);
            int half = 1 << (shift - 1);
            if (rem > half || (rem == half && (h & 1) == 1)) {
                h++;  // may carry into the smallest normal, which is the right answer
            }
            return (short) (sign | h);
        }
        int h = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1FFF;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1)) {
            h++;  // a carry out of the mantissa bumps the exponent; past 65504 that is infinity
        }
        return (short) (sign | h);
    }

    public static float f16BitsToFloat(short hs) {
        int h = hs & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0) {
            float v = mant * 0x1p-24f;  // exact: zero or subnormal
            return sign != 0 ? -v : v;
        }
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }
}
