package io.tailguard.model.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {

    @TempDir
    Path tmp;

    /** A safetensors file assembled byte by byte, independent of {@link SafeTensors#write}. */
    private Path handBuilt(String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Path f = tmp.resolve("model.safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static byte[] le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    private void assertRejected(Path f, String... mustContain) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.read(f));
        String m = e.getMessage();
        assertTrue(m.contains(f.toString()), m);
        assertTrue(!m.contains("\n"), m);
        for (String s : mustContain) {
            assertTrue(m.contains(s), "'" + s + "' not in: " + m);
        }
    }

    @Test
    void readsHandBuiltFileWithMixedDtypesAndMetadata() throws IOException {
        byte[] data = new byte[16 + 4 + 2];
        ByteBuffer d = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        d.put(le(1f, -2f, 0.5f, 3f));              // a: F32 [2,2]  bytes 0..16
        d.putShort((short) 0x3F80).putShort((short) 0xC000);  // b: BF16 [2]  16..20 = 1, -2
        d.putShort((short) 0x3C00);                 // c: F16 []   20..22 = 1
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"c\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[20,22]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]}}";
        Path f = handBuilt(header, data);

        Map<String, HostTensor> t = SafeTensors.read(f);
        assertEquals(3, t.size());
        assertArrayEquals(new long[] {2, 2}, t.get("a").shape());
        assertArrayEquals(new float[] {1f, -2f, 0.5f, 3f}, t.get("a").toFloats());
        assertEquals(DType.BF16, t.get("b").dtype());
        assertArrayEquals(new float[] {1f, -2f}, t.get("b").toFloats());
        assertArrayEquals(new long[] {}, t.get("c").shape());
        assertArrayEquals(new float[] {1f}, t.get("c").toFloats());
        assertEquals(Map.of("format", "pt"), SafeTensors.metadata(f));
    }

    @Test
    void writerProducesTheStandardLayout() throws IOException {
        Map<String, HostTensor> in = new LinkedHashMap<>();
        in.put("z", HostTensor.ofFloats(new long[] {1}, new float[] {2f}, DType.F32));
        in.put("a", HostTensor.ofFloats(new long[] {3}, new float[] {1f, 2f, 3f}, DType.BF16));
        Path f = tmp.resolve("w.safetensors");
        SafeTensors.write(f, in, Map.of("format", "pt"));

        byte[] bytes = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long n = b.getLong(0);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.endsWith(" ") || header.endsWith("}"));
        assertTrue(header.strip().startsWith("{\"__metadata__\""), header);
        // sorted order: a (6 bytes) then z (4 bytes), contiguous
        assertTrue(header.contains("\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}"), header);
        assertTrue(header.contains("\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[6,10]}"), header);
        assertEquals(8 + n + 10, bytes.length);
        assertEquals(2f, b.getFloat((int) (8 + n + 6)));

        Map<String, HostTensor> out = SafeTensors.read(f);
        assertEquals(in.get("a"), out.get("a"));
        assertEquals(in.get("z"), out.get("z"));
    }

    @Test
    void roundTripsEveryDtype() {
        for (DType d : DType.values()) {
            HostTensor t = HostTensor.ofFloats(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, -6}, d);
            Path f = tmp.resolve(d + ".safetensors");
            SafeTensors.write(f, Map.of("t", t, "empty", HostTensor.ofFloats(new long[] {0}, new float[0], d)), Map.of());
            Map<String, HostTensor> back = SafeTensors.read(f);
            assertEquals(t, back.get("t"));
            assertEquals(0, back.get("empty").numel());
            assertEquals(Map.of(), SafeTensors.metadata(f));
        }
    }

    @Test
    void fileShorterThanEightBytes() throws IOException {
        Path f = tmp.resolve("short.safetensors");
        Files.write(f, new byte[] {1, 2, 3});
        assertRejected(f, "shorter than the 8-byte header length");
    }

    @Test
    void missingFile() {
        assertRejected(tmp.resolve("absent.safetensors"), "does not exist");
    }

    @Test
    void headerLengthLargerThanFile() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        Path f = tmp.resolve("x.safetensors");
        Files.write(f, b.array());
        assertRejected(f, "header length 1000", "larger than the file");
    }

    @Test
    void absurdHeaderLength() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-5);
        Path f = tmp.resolve("x.safetensors");
        Files.write(f, b.array());
        assertRejected(f, "absurd");
    }

    @Test
    void headerNotJson() throws IOException {
        assertRejected(handBuilt("{\"a\": [1, ", new byte[0]), "not valid JSON");
    }

    @Test
    void headerNotAnObject() throws IOException {
        assertRejected(handBuilt("[1, 2, 3]", new byte[0]), "not a JSON object");
    }

    @Test
    void entryMissingEachRequiredKey() throws IOException {
        assertRejected(handBuilt("{\"w.q\":{\"shape\":[1],\"data_offsets\":[0,4]}}", le(1)), "tensor w.q", "dtype");
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", le(1)), "tensor w.q", "shape");
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"shape\":[1]}}", le(1)), "tensor w.q", "data_offsets");
    }

    @Test
    void unsupportedDtype() throws IOException {
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", le(1)),
                "tensor w.q", "unsupported dtype I32");
    }

    @Test
    void negativeShape() throws IOException {
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", le(1)),
                "tensor w.q", "negative");
    }

    @Test
    void dataOffsetsNotTwoAscendingIntegers() throws IOException {
        for (String offs : new String[] {"[0]", "[0,4,8]", "[4,0]", "[0.5,4]", "[\"0\",4]", "5", "[-4,0]"}) {
            Path f = handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + offs + "}}", le(1, 2));
            assertRejected(f, "tensor w.q", "data_offsets");
        }
    }

    @Test
    void headerOffsetsThatDisagreeWithShapeLie() throws IOException {
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", le(1, 2)),
                "tensor w.q", "header offsets lie");
    }

    @Test
    void truncatedDataSection() throws IOException {
        assertRejected(handBuilt("{\"w.q\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", le(1, 2)),
                "tensor w.q", "truncated");
    }

    @Test
    void overlappingTensors() throws IOException {
        String h = "{\"w.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"w.b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        assertRejected(handBuilt(h, le(1, 2, 3)), "tensor w.b", "overlap", "w.a");
    }

    @Test
    void mappedTensorsAreReadOnly() throws IOException {
        Path f = handBuilt("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", le(5));
        HostTensor t = SafeTensors.read(f).get("w");
        assertTrue(t.data().isReadOnly());
        assertEquals(Arrays.toString(new float[] {5f}), Arrays.toString(t.toFloats()));
    }
}
