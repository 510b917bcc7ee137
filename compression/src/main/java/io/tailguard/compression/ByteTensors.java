package io.tailguard.compression;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;

/**
 * A safetensors file of raw byte tensors, for the dtypes the model's reader does not know: packed
 * codes and sign bits are {@code U8}, steps {@code F16}. The layout is the safetensors one (u64
 * little-endian header length, JSON header with dtype, shape and data_offsets, then the data), so
 * the Python {@code safetensors} package reads it as it is.
 */
final class ByteTensors {
    /** One tensor: its safetensors dtype name, shape and little-endian bytes. */
    record Entry(String dtype, long[] shape, byte[] data) {}

    private static final long MAX_HEADER_BYTES = 100_000_000L;

    private ByteTensors() {}

    static void write(Path file, Map<String, Entry> tensors, Map<String, String> metadata) {
        TreeMap<String, Entry> sorted = new TreeMap<>(tensors);
        JsonObject header = new JsonObject();
        if (!metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            new TreeMap<>(metadata).forEach(meta::addProperty);
            header.add("__metadata__", meta);
        }
        long offset = 0;
        for (Map.Entry<String, Entry> e : sorted.entrySet()) {
            JsonObject t = new JsonObject();
            t.addProperty("dtype", e.getValue().dtype());
            com.google.gson.JsonArray shape = new com.google.gson.JsonArray();
            for (long d : e.getValue().shape()) {
                shape.add(d);
            }
            t.add("shape", shape);
            com.google.gson.JsonArray offsets = new com.google.gson.JsonArray();
            offsets.add(offset);
            offset += e.getValue().data().length;
            offsets.add(offset);
            t.add("data_offsets", offsets);
            header.add(e.getKey(), t);
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8; // the spec allows trailing spaces; 8-byte alignment helps mmap readers
        byte[] padded = new byte[json.length + pad];
        System.arraycopy(json, 0, padded, 0, json.length);
        java.util.Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            writeFully(ch, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded.length).flip());
            writeFully(ch, ByteBuffer.wrap(padded));
            for (Entry e : sorted.values()) {
                writeFully(ch, ByteBuffer.wrap(e.data()));
            }
            ch.force(true);
        } catch (IOException ex) {
            throw new UncheckedIOException(file + ": cannot write: " + ex.getMessage(), ex);
        }
    }

    static Map<String, Entry> read(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            if (all.length < 8) {
                throw new IllegalArgumentException(file + ": too short for a safetensors file");
            }
            long headerLen = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > all.length) {
                throw new IllegalArgumentException(file + ": bad header length " + headerLen);
            }
            JsonObject header = JsonParser.parseString(new String(all, 8, (int) headerLen, StandardCharsets.UTF_8))
                    .getAsJsonObject();
            long dataStart = 8 + headerLen;
            Map<String, Entry> out = new TreeMap<>();
            for (Map.Entry<String, JsonElement> e : header.entrySet()) {
                if (e.getKey().equals("__metadata__")) {
                    continue;
                }
                JsonObject t = e.getValue().getAsJsonObject();
                var shapeJson = t.getAsJsonArray("shape");
                long[] shape = new long[shapeJson.size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = shapeJson.get(i).getAsLong();
                }
                long begin = t.getAsJsonArray("data_offsets").get(0).getAsLong();
                long end = t.getAsJsonArray("data_offsets").get(1).getAsLong();
                if (begin < 0 || end < begin || dataStart + end > all.length) {
                    throw new IllegalArgumentException(file + ": tensor " + e.getKey() + " lies outside the file");
                }
                byte[] data = java.util.Arrays.copyOfRange(all, (int) (dataStart + begin), (int) (dataStart + end));
                out.put(e.getKey(), new Entry(t.get("dtype").getAsString(), shape, data));
            }
            return out;
        } catch (IOException ex) {
            throw new UncheckedIOException(file + ": cannot read: " + ex.getMessage(), ex);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
