package io.tailguard.model.io;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class HostTensorTest {

    private static final float[] VALUES = {0f, 1f, -2f, 0.5f, 0.25f, -0.125f, 3f, 1024f};  // exact in every dtype

    @Test
    void floatsRoundTripExactlyInAllThreeDtypes() {
        for (DType d : DType.values()) {
            HostTensor t = HostTensor.ofFloats(new long[] {2, 4}, VALUES, d);
            assertEquals(d, t.dtype());
            assertEquals(8, t.numel());
            assertEquals(8L * d.bytes(), t.data().remaining());
            assertArrayEquals(VALUES, t.toFloats(), d.toString());
        }
    }

    @Test
    void storesLittleEndianBytes() {
        HostTensor t = HostTensor.ofFloats(new long[] {1}, new float[] {1f}, DType.BF16);
        ByteBuffer b = t.data();
        assertEquals((byte) 0x80, b.get(0));
        assertEquals((byte) 0x3F, b.get(1));
        HostTensor f = HostTensor.ofFloats(new long[] {1}, new float[] {1f}, DType.F32);
        assertEquals(0x3F800000, f.data().order(ByteOrder.LITTLE_ENDIAN).getInt(0));
        assertEquals((byte) 0x3F, f.data().get(3));
    }

    @Test
    void convertingToHalfRoundsEachElement() {
        HostTensor t = HostTensor.ofFloats(new long[] {2}, new float[] {0.1f, 65520f}, DType.F32).convertTo(DType.F16);
        assertEquals(0x2E66, t.data().getShort(0) & 0xFFFF);
        assertEquals(Float.POSITIVE_INFINITY, t.toFloats()[1]);
    }

    @Test
    void bufferOfTheWrongLengthIsRejected() {
        assertThrows(IllegalArgumentException.class,
                () -> new HostTensor(DType.F32, new long[] {3}, ByteBuffer.allocate(8)));
        assertThrows(IllegalArgumentException.class,
                () -> HostTensor.ofFloats(new long[] {3}, new float[2], DType.F32));
    }

    @Test
    void scalarHasOneElementAndEmptyTensorNone() {
        assertEquals(1, HostTensor.ofFloats(new long[] {}, new float[] {7f}, DType.F32).numel());
        assertEquals(0, HostTensor.ofFloats(new long[] {0, 5}, new float[0], DType.BF16).numel());
    }

    @Test
    void laterChangesToTheCallersBufferDoNotAffectTheTensor() {
        ByteBuffer b = ByteBuffer.allocate(8);
        HostTensor t = new HostTensor(DType.F32, new long[] {2}, b);
        b.limit(4);
        t.data().position(8);
        assertEquals(8, t.data().remaining());
    }

    @Test
    void equalityComparesShapeAndBytes() {
        assertEquals(HostTensor.ofFloats(new long[] {2, 4}, VALUES, DType.F16),
                HostTensor.ofFloats(new long[] {2, 4}, VALUES, DType.F16));
    }
}
