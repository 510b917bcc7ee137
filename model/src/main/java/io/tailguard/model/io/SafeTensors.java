package io.tailguard.model.io;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor
 * name to {dtype, shape, data_offsets} (offsets relative to the data section) plus an optional
 * {@code __metadata__} string map, then the tensor bytes.
 *
 * <p>Reading trusts nothing in the header: a checkpoint can come from anywhere, and a lying header
 * must fail with a message naming the tensor rather than as a crash deep in the model.
 */
public final class SafeTensors {

    /** The Python reference implementation refuses headers above 100 MB; so do we. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    private static final String METADATA_KEY = "__metadata__";
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private SafeTensors() {
    }

    /** All tensors, by name (sorted), each a read-only slice of the memory-mapped file. */
    public static Map<String, HostTensor> read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Header h = readHeader(file, ch);
            Map<String, HostTensor> out = new TreeMap<>();
            for (Entry e : h.entries) {
                long len = e.end - e.begin;
                if (len > Integer.MAX_VALUE) {
                    throw CheckpointException.of(file, "tensor " + e.name, len + " bytes: tensors over 2 GiB are not supported");
                }
                // One mapping per tensor: a ByteBuffer cannot span more than 2 GiB, a checkpoint can.
                // A mapping stays valid after the channel is closed.
                ByteBuffer b = len == 0 ? ByteBuffer.allocate(0)
                        : ch.map(FileChannel.MapMode.READ_ONLY, h.dataStart + e.begin, len);
                out.put(e.name, new HostTensor(e.dtype, e.shape, b.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN)));
            }
            return out;
        } catch (NoSuchFileException ex) {
            throw CheckpointException.of(file, "file does not exist");
        } catch (IOException ex) {
            throw CheckpointException.of(file, "cannot read: " + ex, ex);
        }
    }

    /** The {@code __metadata__} map, empty when the header has none. */
    public static Map<String, String> metadata(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return readHeader(file, ch).metadata;
        } catch (NoSuchFileException ex) {
            throw CheckpointException.of(file, "file does not exist");
        } catch (IOException ex) {
            throw CheckpointException.of(file, "cannot read: " + ex, ex);
        }
    }

    /**
     * Writes {@code file} (replacing it; not atomic by itself, {@link CheckpointDir} provides that)
     * with tensors contiguous in sorted name order, and forces it to disk.
     */
    public static void write(Path file, Map<String, HostTensor> tensors, Map<String, String> metadata) {
        TreeMap<String, HostTensor> sorted = new TreeMap<>(tensors);
        JsonObject header = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            new TreeMap<>(metadata).forEach(meta::addProperty);
            header.add(METADATA_KEY, meta);
        }
        long offset = 0;
        for (Map.Entry<String, HostTensor> e : sorted.entrySet()) {
            if (e.getKey().equals(METADATA_KEY)) {
                throw new IllegalArgumentException("'" + METADATA_KEY + "' is reserved and cannot name a tensor");
            }
            HostTensor t = e.getValue();
            long len = t.data().remaining();
            JsonObject o = new JsonObject();
            o.addProperty("dtype", t.dtype().safetensorsName());
            JsonArray shape = new JsonArray();
            for (long d : t.shape()) {
                shape.add(d);
            }
            o.add("shape", shape);
            JsonArray offs = new JsonArray();
            offs.add(offset);
            offs.add(offset + len);
            o.add("data_offsets", offs);
            header.add(e.getKey(), o);
            offset += len;
        }
        byte[] json = GSON.toJson(header).getBytes(StandardCharsets.UTF_8);
        // Pad with spaces to a multiple of 8 so the data section stays aligned, as the reference writer does.
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(ch, head);
            for (HostTensor t : sorted.values()) {
                writeFully(ch, t.data());
            }
            ch.force(true);
        } catch (IOException ex) {
            throw new UncheckedIOException(file + ": cannot write: " + ex.getMessage(), ex);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    // ---- header parsing and validation ----

    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {
    }

    private record Header(long dataStart, List<Entry> entries, Map<String, String> metadata) {
    }

    private static Header readHeader(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw CheckpointException.of(file, "file is " + size + " bytes, shorter than the 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, lenBuf, 0);
        long headerLen = lenBuf.getLong(0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
            throw CheckpointException.of(file, "header length " + Long.toUnsignedString(headerLen)
                    + " is absurd (allowed 2.." + MAX_HEADER_BYTES + "); not a safetensors file?");
        }
        if (headerLen > size - 8) {
            throw CheckpointException.of(file, "header length " + headerLen + " is larger than the file ("
                    + size + " bytes); truncated?");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
        readFully(ch, hb, 8);
        String text = new String(hb.array(), StandardCharsets.UTF_8);
        JsonElement root;
        try {
            root = JsonParser.parseString(text);
        } catch (JsonParseException ex) {
            throw CheckpointException.of(file, "header is not valid JSON: " + ex.getMessage(), ex);
        }
        if (root == null || !root.isJsonObject()) {
            throw CheckpointException.of(file, "header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataLen = size - dataStart;
        Map<String, String> metadata = new TreeMap<>();
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonElement> kv : root.getAsJsonObject().entrySet()) {
            String name = kv.getKey();
            if (name.equals(METADATA_KEY)) {
                readMetadata(file, kv.getValue(), metadata);
            } else {
                entries.add(parseEntry(file, name, kv.getValue(), dataLen));
            }
        }
        checkOverlaps(file, entries);
        return new Header(dataStart, entries, metadata);
    }

    private static void readMetadata(Path file, JsonElement v, Map<String, String> into) {
        if (!v.isJsonObject()) {
            throw CheckpointException.of(file, METADATA_KEY, "must be an object of strings");
        }
        for (Map.Entry<String, JsonElement> m : v.getAsJsonObject().entrySet()) {
            JsonElement s = m.getValue();
            if (!s.isJsonPrimitive() || !s.getAsJsonPrimitive().isString()) {
                throw CheckpointException.of(file, METADATA_KEY + "." + m.getKey(), "must be a string, got " + s);
            }
            into.put(m.getKey(), s.getAsString());
        }
    }

    private static Entry parseEntry(Path file, String name, JsonElement v, long dataLen) {
        String subject = "tensor " + name;
        if (!v.isJsonObject()) {
            throw CheckpointException.of(file, subject, "header entry is not an object");
        }
        JsonObject o = v.getAsJsonObject();
        for (String key : List.of("dtype", "shape", "data_offsets")) {
            if (!o.has(key) || o.get(key).isJsonNull()) {
                throw CheckpointException.of(file, subject, "header entry has no " + key);
            }
        }
        JsonElement dt = o.get("dtype");
        if (!dt.isJsonPrimitive() || !dt.getAsJsonPrimitive().isString()) {
            throw CheckpointException.of(file, subject, "dtype is not a string: " + dt);
        }
        DType dtype = DType.parse(dt.getAsString(), file + ": " + subject);

        long[] shape = longArray(file, subject, "shape", o.get("shape"));
        for (long d : shape) {
            if (d < 0) {
                throw CheckpointException.of(file, subject, "negative dimension in shape " + Arrays.toString(shape));
            }
        }
        long[] offs = longArray(file, subject, "data_offsets", o.get("data_offsets"));
        if (offs.length != 2 || offs[0] < 0 || offs[1] < offs[0]) {
            throw CheckpointException.of(file, subject, "data_offsets " + Arrays.toString(offs)
                    + " must be two ascending non-negative integers");
        }
        long need;
        try {
            need = Math.multiplyExact(HostTensor.numel(shape), (long) dtype.bytes());
        } catch (ArithmeticException ex) {
            throw CheckpointException.of(file, subject, "shape " + Arrays.toString(shape) + " overflows");
        }
        if (offs[1] - offs[0] != need) {
            throw CheckpointException.of(file, subject, "header offsets lie: data_offsets " + Arrays.toString(offs)
                    + " span " + (offs[1] - offs[0]) + " bytes but " + dtype + " " + Arrays.toString(shape)
                    + " needs " + need);
        }
        if (offs[1] > dataLen) {
            throw CheckpointException.of(file, subject, "data_offsets " + Arrays.toString(offs)
                    + " run past the end of the data section (" + dataLen + " bytes); the file is truncated");
        }
        return new Entry(name, dtype, shape, offs[0], offs[1]);
    }

    private static long[] longArray(Path file, String subject, String key, JsonElement v) {
        if (!v.isJsonArray()) {
            throw CheckpointException.of(file, subject, key + " is not an array: " + v);
        }
        JsonArray a = v.getAsJsonArray();
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonElement x = a.get(i);
            if (!x.isJsonPrimitive() || !x.getAsJsonPrimitive().isNumber()) {
                throw CheckpointException.of(file, subject, key + " holds a non-number: " + v);
            }
            out[i] = exactLong(x.getAsJsonPrimitive(), file, subject, key);
        }
        return out;
    }

    private static long exactLong(JsonPrimitive p, Path file, String subject, String key) {
        try {
            return new BigDecimal(p.getAsString()).longValueExact();
        } catch (ArithmeticException | NumberFormatException ex) {
            throw CheckpointException.of(file, subject, key + " holds a non-integer: " + p);
        }
    }

    private static void checkOverlaps(Path file, List<Entry> entries) {
        List<Entry> byBegin = new ArrayList<>(entries);
        byBegin.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry prev = null;
        for (Entry e : byBegin) {
            // Empty tensors occupy no bytes and cannot overlap anything.
            if (e.begin == e.end) {
                continue;
            }
            if (prev != null && e.begin < prev.end) {
                throw CheckpointException.of(file, "tensor " + e.name, "data_offsets [" + e.begin + ", " + e.end
                        + "] overlap tensor " + prev.name + " [" + prev.begin + ", " + prev.end + "]");
            }
            prev = e;
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
        while (b.hasRemaining()) {
            int n = ch.read(b, pos + b.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }
}
