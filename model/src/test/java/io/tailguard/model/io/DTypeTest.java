package io.tailguard.model.io;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Expected bit patterns are IEEE 754 / bfloat16 reference values (cross-checked with numpy). */
class DTypeTest {

    private static int f16(float f) {
        return DType.floatToF16Bits(f) & 0xFFFF;
    }

    private static int bf16(float f) {
        return DType.floatToBf16Bits(f) & 0xFFFF;
    }

    @Test
    void sizesAndNames() {
        assertEquals(4, DType.F32.bytes());
        assertEquals(2, DType.BF16.bytes());
        assertEquals(2, DType.F16.bytes());
        assertEquals("BF16", DType.BF16.safetensorsName());
        assertEquals(DType.BF16, DType.parse("BF16", "x"));
        assertEquals(DType.F16, DType.parse("float16", "x"));
    }

    @Test
    void parseRejectsUnsupportedDtypeNamingWhere() {
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> DType.parse("I64", "/c/model.safetensors: tensor a.weight"));
        assertTrue(e.getMessage().contains("/c/model.safetensors: tensor a.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("I64"), e.getMessage());
    }

    @Test
    void oneIsKnownPatternInBothHalfFormats() {
        assertEquals(0x3F80, bf16(1.0f));
        assertEquals(0x3C00, f16(1.0f));
        assertEquals(0xC000, f16(-2.0f));
        assertEquals(0xC000, bf16(-2.0f));
    }

    @Test
    void pointOneRoundsToNearest() {
        assertEquals(0x2E66, f16(0.1f));
        assertEquals(0x3DCD, bf16(0.1f));  // 0x3DCCCCCD: the dropped half 0xCCCD is above the midpoint
    }

    @Test
    void halfMaxIs65504AndBeyondRoundsToInfinity() {
        assertEquals(0x7BFF, f16(65504f));
        assertEquals(65504f, DType.f16BitsToFloat((short) 0x7BFF));
        assertEquals(0x7BFF, f16(65519.99f));
        assertEquals(0x7C00, f16(65520f));  // the tie between 65504 and 65536 goes to the even one: infinity
        assertEquals(0x7C00, f16(1e10f));
        assertEquals(0xFC00, f16(Float.NEGATIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, DType.f16BitsToFloat((short) 0x7C00));
    }

    @Test
    void tinyValuesBecomeHalfSubnormals() {
        assertEquals(0x0002, f16(1e-7f));  // 1e-7 / 2^-24 = 1.68 -> 2
        assertEquals(0x0001, f16(0x1p-24f));
        assertEquals(0x0000, f16(0x1p-25f));  // tie between 0 and 2^-24: even is 0
        assertEquals(0x0001, f16(0x1.8p-25f));
        assertEquals(0x0002, f16(0x1.8p-24f));  // tie 1.5 -> 2
        assertEquals(0x0002, f16(0x1.4p-23f));  // tie 2.5 -> 2
        assertEquals(0x0400, f16(0x1p-14f));  // smallest normal
        assertEquals(0x03FF, f16(0x1.ff8p-15f));  // largest subnormal
        assertEquals(0x0400, f16(0x1.ffcp-15f));  // rounds up into the smallest normal
        assertEquals(0x8001, f16(-0x1p-24f));
        assertEquals(0x0000, f16(Float.MIN_VALUE));
        assertEquals(0x1p-24f, DType.f16BitsToFloat((short) 0x0001));
        assertEquals(0x3FFp-24f, DType.f16BitsToFloat((short) 0x03FF));
    }

    @Test
    void tiesRoundToEven() {
        assertEquals(0x3C00, f16(1f + 0x1p-11f));        // halfway 1.0 | 1+2^-10 -> even 1.0
        assertEquals(0x3C02, f16(1f + 3 * 0x1p-11f));    // halfway odd | even -> even
        assertEquals(0x3C01, f16(1f + 0x1p-11f + 0x1p-20f));  // just above halfway -> up
        assertEquals(0x3F80, bf16(1f + 0x1p-8f));
        assertEquals(0x3F82, bf16(1f + 3 * 0x1p-8f));
        assertEquals(0x3F81, bf16(1f + 0x1p-8f + 0x1p-20f));
    }

    @Test
    void signedZeroAndInfinitiesSurvive() {
        assertEquals(0x8000, f16(-0.0f));
        assertEquals(0x8000, bf16(-0.0f));
        assertEquals(0x7F80, bf16(Float.POSITIVE_INFINITY));
        assertEquals(0x7F80, bf16(Float.MAX_VALUE));  // rounds past the largest bfloat16
        assertEquals(0x7F7F, bf16(3.3895314e38f));
    }

    @Test
    void nanStaysNanEvenWhenOnlyLowPayloadBitsAreSet() {
        float lowPayloadNan = Float.intBitsToFloat(0x7F800001);
        assertTrue(Float.isNaN(lowPayloadNan));
        assertTrue(Float.isNaN(DType.bf16BitsToFloat(DType.floatToBf16Bits(lowPayloadNan))));
        assertTrue(Float.isNaN(DType.f16BitsToFloat(DType.floatToF16Bits(lowPayloadNan))));
        assertEquals(0x7FC0, bf16(Float.NaN));
        assertTrue(Float.isNaN(DType.f16BitsToFloat(DType.floatToF16Bits(Float.NaN))));
    }

    @Test
    void everyHalfAndBfloat16PatternRoundTripsThroughFloat() {
        for (int h = 0; h < 0x10000; h++) {
            int pattern = h;
            float f16v = DType.f16BitsToFloat((short) h);
            if (!Float.isNaN(f16v)) {
                assertEquals(h, f16(f16v), () -> "f16 pattern " + Integer.toHexString(pattern));
            }
            float bf = DType.bf16BitsToFloat((short) h);
            if (!Float.isNaN(bf)) {
                assertEquals(h, bf16(bf), () -> "bf16 pattern " + Integer.toHexString(pattern));
            }
        }
    }
}
