package io.tailguard.compression;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ParameterShapes;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.ConfigJson;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.Manifest;
import io.tailguard.model.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The on-disk form of a {@link VnmModel}, a directory:
 * <pre>
 *   config.json         the Qwen3 config, as in any checkpoint
 *   vnm.json            the scheme: pattern, score, layouts, per-layer shapes, the channel permutations
 *   sparse.safetensors  per pruned layer N: N.values (F32 [rows, column blocks, 2], the kept values),
 *                       N.meta (U8, the 2-bit 2:4 indices of the kept values among the block's 4
 *                       columns, packed LSB first) and, for M &gt; 4, N.columns (U8, the 4 column offsets
 *                       of every V × M block at ⌈log₂ M⌉ bits each, packed LSB first)
 *   dense.safetensors   the tensors left dense (embedding, norms, untied lm_head), F32
 *   tokenizer.json      the source checkpoint's tokenizer, when it has one
 *   manifest.json       sha256 of every file, written last
 * </pre>
 * Written atomically with {@link CheckpointDir#writeAtomically}; loading verifies the manifest and
 * rebuilds the masks and values exactly.
 */
public final class VnmCheckpoint {
    public static final String FORMAT = "tailguard-vnm-v1";
    public static final String VNM_JSON = "vnm.json";
    public static final String SPARSE_TENSORS = "sparse.safetensors";
    public static final String DENSE_TENSORS = "dense.safetensors";

    private VnmCheckpoint() {}

    /** Bits of one column offset within a block of M columns. */
    static int offsetBits(int m) {
        return 32 - Integer.numberOfLeadingZeros(m - 1);
    }

    public static void write(Path dir, VnmModel s, String tokenizerJsonOrNull, long version, String parent) {
        CheckpointDir.writeAtomically(dir, tmp -> {
            Files.writeString(tmp.resolve(CheckpointDir.CONFIG), ConfigJson.toJson(s.config(), DType.F32));
            Files.writeString(tmp.resolve(VNM_JSON), schemeJson(s));
            Map<String, ByteTensors.Entry> packed = new TreeMap<>();
            for (SparseLinear l : s.linears().values()) {
                VnmMask mask = l.mask();
                int cb = mask.columnBlocks();
                packed.put(l.name() + ".values", new ByteTensors.Entry("F32",
                        new long[] {mask.rows(), cb, mask.pattern().n()}, floatBytes(l.values())));
                byte[] meta = PackedCodes.pack(mask.picks(), 2);
                packed.put(l.name() + ".meta", new ByteTensors.Entry("U8", new long[] {meta.length}, meta));
                if (!mask.pattern().isTwoFour()) {
                    byte[] cols = PackedCodes.pack(mask.columns(), offsetBits(mask.pattern().m()));
                    packed.put(l.name() + ".columns", new ByteTensors.Entry("U8", new long[] {cols.length}, cols));
                }
            }
            ByteTensors.write(tmp.resolve(SPARSE_TENSORS), packed, Map.of("format", FORMAT));
            Map<String, HostTensor> dense = new TreeMap<>();
            Map<String, long[]> shapes = ParameterShapes.of(s.config());
            s.dense().forEach((name, v) -> dense.put(name, HostTensor.ofFloats(shapes.get(name), v, DType.F32)));
            SafeTensors.write(tmp.resolve(DENSE_TENSORS), dense, Map.of("format", "pt"));
            if (tokenizerJsonOrNull != null) {
                Files.writeString(tmp.resolve(CheckpointDir.TOKENIZER), tokenizerJsonOrNull);
            }
        }, version, parent, 0, 0);
    }

    /**
     * The checkpoint as a model whose pruned linears stay in their compressed layout
     * ({@link io.tailguard.model.Qwen3Model#packed}); read and checked as {@link #read} does. Needs
     * {@link io.tailguard.model.PackedLinear#supported()} and a CPU device.
     */
    public static io.tailguard.model.Qwen3Model readPacked(Path dir, ai.djl.Device device) {
        return read(dir).toPackedModel(device);
    }

    public static VnmModel read(Path dir) {
        Manifest.read(dir).verify(dir);
        ModelConfig config = ConfigJson.read(dir.resolve(CheckpointDir.CONFIG));
        JsonObject scheme;
        try {
            scheme = JsonParser.parseString(Files.readString(dir.resolve(VNM_JSON))).getAsJsonObject();
        } catch (IOException ex) {
            throw new UncheckedIOException(dir.resolve(VNM_JSON) + ": cannot read: " + ex.getMessage(), ex);
        }
        if (!scheme.has("format") || !FORMAT.equals(scheme.get("format").getAsString())) {
            throw new IllegalArgumentException(dir.resolve(VNM_JSON) + ": unknown sparse format " + scheme.get("format"));
        }
        VnmPattern pattern = VnmPattern.parse(scheme.get("pattern").getAsString());
        Map<String, ByteTensors.Entry> packed = ByteTensors.read(dir.resolve(SPARSE_TENSORS));
        Map<String, SparseLinear> linears = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : scheme.getAsJsonObject("layers").entrySet()) {
            String name = e.getKey();
            JsonObject l = e.getValue().getAsJsonObject();
            int rows = l.get("rows").getAsInt();
            int cols = l.get("cols").getAsInt();
            int cb = pattern.columnBlocks(cols);
            byte[] picks = PackedCodes.unpack(need(packed, name + ".meta").data(), rows * cb * pattern.n(), 2);
            byte[] columns;
            if (pattern.isTwoFour()) {
                columns = new byte[rows / pattern.v() * cb * VnmPattern.COLUMNS_KEPT];
                for (int i = 0; i < columns.length; i++) {
                    columns[i] = (byte) (i % VnmPattern.COLUMNS_KEPT);
                }
            } else {
                columns = PackedCodes.unpack(need(packed, name + ".columns").data(),
                        rows / pattern.v() * cb * VnmPattern.COLUMNS_KEPT, offsetBits(pattern.m()));
            }
            ByteTensors.Entry values = need(packed, name + ".values");
            if (!"F32".equals(values.dtype())) {
                throw new IllegalArgumentException(SPARSE_TENSORS + ": " + name + ".values must be F32, got " + values.dtype());
            }
            linears.put(name, new SparseLinear(name, new VnmMask(pattern, rows, cols, columns, picks), floats(values.data())));
        }
        Map<String, float[]> dense = new LinkedHashMap<>();
        SafeTensors.read(dir.resolve(DENSE_TENSORS)).forEach((name, t) -> dense.put(name, t.toFloats()));
        Map<String, int[][]> perms = new LinkedHashMap<>();
        if (scheme.has("permutations")) {
            for (Map.Entry<String, JsonElement> e : scheme.getAsJsonObject("permutations").entrySet()) {
                JsonArray classes = e.getValue().getAsJsonArray();
                int[][] p = new int[classes.size()][];
                for (int g = 0; g < p.length; g++) {
                    JsonArray a = classes.get(g).getAsJsonArray();
                    p[g] = new int[a.size()];
                    for (int i = 0; i < p[g].length; i++) {
                        p[g][i] = a.get(i).getAsInt();
                    }
                }
                perms.put(e.getKey(), p);
            }
        }
        return new VnmModel(config, pattern, linears, dense, perms);
    }

    private static String schemeJson(VnmModel s) {
        JsonObject o = new JsonObject();
        o.addProperty("format", FORMAT);
        o.addProperty("pattern", s.pattern().toString());
        o.addProperty("v", s.pattern().v());
        o.addProperty("n", s.pattern().n());
        o.addProperty("m", s.pattern().m());
        o.addProperty("blocks", "V rows x M columns; a last block narrower than M is padded with zero columns");
        o.addProperty("values", "F32 [rows, column blocks, 2]: row r, block b keeps the values at its two 2:4 positions");
        o.addProperty("meta", "2 bits per kept value: its position (0..3) among the block's 4 selected columns,"
                + " ascending per row and block; codes in [rows, column blocks, 2] order, LSB first");
        o.addProperty("columns", s.pattern().isTwoFour() ? "none: M = 4 keeps every column"
                : offsetBits(s.pattern().m()) + " bits per offset (0..M-1, ascending) of the 4 columns each"
                + " V x M block keeps; [row blocks, column blocks, 4] order, LSB first");
        o.addProperty("permutation", "perm[class][slot] = original channel now at slot; already folded into the"
                + " weights: mlp permutes down_proj input columns with gate/up_proj rows, self_attn permutes the value"
                + " dims of each KV head (v_proj rows, o_proj columns of every query head reading it)");
        JsonObject layers = new JsonObject();
        for (SparseLinear l : s.linears().values()) {
            JsonObject j = new JsonObject();
            j.addProperty("rows", l.mask().rows());
            j.addProperty("cols", l.mask().cols());
            j.addProperty("column_blocks", l.mask().columnBlocks());
            layers.add(l.name(), j);
        }
        o.add("layers", layers);
        JsonObject perms = new JsonObject();
        s.permutations().forEach((k, p) -> {
            JsonArray classes = new JsonArray();
            for (int[] c : p) {
                JsonArray a = new JsonArray();
                for (int x : c) {
                    a.add(x);
                }
                classes.add(a);
            }
            perms.add(k, classes);
        });
        o.add("permutations", perms);
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    private static ByteTensors.Entry need(Map<String, ByteTensors.Entry> packed, String name) {
        ByteTensors.Entry e = packed.get(name);
        if (e == null) {
            throw new IllegalArgumentException(SPARSE_TENSORS + " lacks tensor " + name);
        }
        return e;
    }

    private static byte[] floatBytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }

    private static float[] floats(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[bytes.length / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.getFloat(4 * i);
        }
        return out;
    }
}
