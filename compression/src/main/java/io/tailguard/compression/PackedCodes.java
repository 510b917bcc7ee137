package io.tailguard.compression;

/**
 * Bit packing of b-bit codes, little-endian within the stream: code i occupies bits
 * [i·b, (i+1)·b) of the byte array, bit k of the stream being bit (k mod 8) of byte k / 8. Codes
 * may straddle bytes (3 bits), so no width wastes space.
 */
final class PackedCodes {
    private PackedCodes() {}

    static long bytesFor(long count, int bits) {
        return (count * bits + 7) / 8;
    }

    static byte[] pack(byte[] codes, int bits) {
        byte[] out = new byte[Math.toIntExact(bytesFor(codes.length, bits))];
        long bit = 0;
        for (byte code : codes) {
            int v = code & 0xff;
            if (v >>> bits != 0) {
                throw new IllegalArgumentException("code " + v + " does not fit " + bits + " bits");
            }
            for (int k = 0; k < bits; k++, bit++) {
                if ((v >>> k & 1) != 0) {
                    out[(int) (bit >>> 3)] |= (byte) (1 << (bit & 7));
                }
            }
        }
        return out;
    }

    static byte[] unpack(byte[] packed, int count, int bits) {
        if (packed.length != bytesFor(count, bits)) {
            throw new IllegalArgumentException(packed.length + " bytes cannot hold exactly " + count + " codes of " + bits + " bits");
        }
        byte[] codes = new byte[count];
        long bit = 0;
        for (int i = 0; i < count; i++) {
            int v = 0;
            for (int k = 0; k < bits; k++, bit++) {
                v |= (packed[(int) (bit >>> 3)] >>> (bit & 7) & 1) << k;
            }
            codes[i] = (byte) v;
        }
        return codes;
    }

    /** ±1 signs as bits: 1 means −1. */
    static byte[] packSigns(byte[] signs) {
        byte[] bits = new byte[signs.length];
        for (int i = 0; i < signs.length; i++) {
            bits[i] = (byte) (signs[i] < 0 ? 1 : 0);
        }
        return pack(bits, 1);
    }

    static byte[] unpackSigns(byte[] packed, int count) {
        byte[] bits = unpack(packed, count, 1);
        for (int i = 0; i < count; i++) {
            bits[i] = (byte) (bits[i] == 1 ? -1 : 1);
        }
        return bits;
    }
}
