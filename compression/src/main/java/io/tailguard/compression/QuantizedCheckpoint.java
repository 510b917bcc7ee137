package io.tailguard.compression;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.PackedLinear;
import io.tailguard.model.Qwen3Model;
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
 * The on-disk form of a {@link QuantizedModel}, a directory:
 * <pre>
 *   config.json        the Qwen3 config, as in any checkpoint
 *   quant.json         the scheme: method, bits, group size, quantizer, incoherence, per-layer shapes
 *   quant.safetensors  per linear layer N: N.codes (U8, codes bit-packed LSB first),
 *                      N.scales (F16 [rows, groups]), N.signs_out / N.signs_in (U8, 1 bit each, 1 = −1)
 *   dense.safetensors  the tensors left in float32 (embedding, norms, untied lm_head)
 *   tokenizer.json     the source checkpoint's tokenizer, when it has one
 *   manifest.json      sha256 of every file, written last
 * </pre>
 * Written into a temporary sibling directory and renamed into place, so a reader never sees a
 * half-written checkpoint. Loading verifies the manifest and rebuilds the codes exactly.
 */
public final class QuantizedCheckpoint {
    public static final String FORMAT = "tailguard-quant-v1";
    public static final String QUANT_JSON = "quant.json";
    public static final String QUANT_TENSORS = "quant.safetensors";
    public static final String DENSE_TENSORS = "dense.safetensors";

    private QuantizedCheckpoint() {}

    public static void write(Path dir, QuantizedModel q, long version, String parent) {
        write(dir, q, null, version, parent);
    }

    /** As above, with the source checkpoint's tokenizer.json (when not null), so the directory generates as it is. */
    public static void write(Path dir, QuantizedModel q, String tokenizerJsonOrNull, long version, String parent) {
        CheckpointDir.writeAtomically(dir, tmp -> {
            if (tokenizerJsonOrNull != null) {
                Files.writeString(tmp.resolve(CheckpointDir.TOKENIZER), tokenizerJsonOrNull);
            }
            Files.writeString(tmp.resolve(CheckpointDir.CONFIG), ConfigJson.toJson(q.config(), DType.F32));
            Files.writeString(tmp.resolve(QUANT_JSON), schemeJson(q));
            Map<String, ByteTensors.Entry> packed = new TreeMap<>();
            for (QuantizedLinear l : q.linears().values()) {
                int groups = GroupQuantizer.groupsOf(l.cols(), l.groupSize());
                byte[] codes = PackedCodes.pack(l.codes(), l.bits());
                packed.put(l.name() + ".codes", new ByteTensors.Entry("U8", new long[] {codes.length}, codes));
                packed.put(l.name() + ".scales", new ByteTensors.Entry("F16", new long[] {l.rows(), groups}, halves(l.steps())));
                byte[] so = PackedCodes.packSigns(l.signsOut());
                byte[] si = PackedCodes.packSigns(l.signsIn());
                packed.put(l.name() + ".signs_out", new ByteTensors.Entry("U8", new long[] {so.length}, so));
                packed.put(l.name() + ".signs_in", new ByteTensors.Entry("U8", new long[] {si.length}, si));
            }
            ByteTensors.write(tmp.resolve(QUANT_TENSORS), packed, Map.of("format", FORMAT));
            Map<String, HostTensor> dense = new TreeMap<>();
            Map<String, long[]> shapes = io.tailguard.model.ParameterShapes.of(q.config());
            q.dense().forEach((name, v) -> dense.put(name, HostTensor.ofFloats(shapes.get(name), v, DType.F32)));
            SafeTensors.write(tmp.resolve(DENSE_TENSORS), dense, Map.of("format", "pt"));
        }, version, parent, 0, 0);
    }

    /**
     * The checkpoint as a model whose linears stay packed ({@link Qwen3Model#packed}): codes, float16
     * steps and signs go from the file to native memory as they are stored. Needs
     * {@link PackedLinear#supported()} and a CPU device.
     */
    public static Qwen3Model readPacked(Path dir, Device device) {
        return readPacked(dir, device, PackedLinear.Activations.FLOAT32);
    }

    /**
     * {@link #readPacked(Path, Device)} whose linears multiply with {@code activations}
     * ({@link PackedLinear.Activations#INT8}: int8 activations, which changes the results; the caller's choice).
     */
    public static Qwen3Model readPacked(Path dir, Device device, PackedLinear.Activations activations) {
        Manifest.read(dir).verify(dir);
        ModelConfig config = ConfigJson.read(dir.resolve(CheckpointDir.CONFIG));
        JsonObject scheme = scheme(dir);
        int bits = scheme.get("bits").getAsInt();
        int groupSize = scheme.get("group_size").getAsInt();
        Map<String, ByteTensors.Entry> packed = ByteTensors.read(dir.resolve(QUANT_TENSORS));
        Map<String, PackedLinear> linears = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, com.google.gson.JsonElement> e : scheme.getAsJsonObject("layers").entrySet()) {
                String name = e.getKey();
                JsonObject l = e.getValue().getAsJsonObject();
                ByteTensors.Entry scales = need(packed, name + ".scales");
                if (!"F16".equals(scales.dtype())) {
                    throw new IllegalArgumentException(QUANT_TENSORS + ": " + name + ".scales must be F16, got " + scales.dtype());
                }
                try {
                    linears.put(name, PackedLinear.quantized(l.get("rows").getAsInt(), l.get("cols").getAsInt(), bits, groupSize,
                            need(packed, name + ".codes").data(), scales.data(), need(packed, name + ".signs_out").data(),
                            need(packed, name + ".signs_in").data(), activations));
                } catch (IllegalArgumentException ex) {
                    throw new IllegalArgumentException(dir.resolve(QUANT_TENSORS) + ": " + name + ": " + ex.getMessage(), ex);
                }
            }
        } catch (RuntimeException ex) {
            linears.values().forEach(PackedLinear::close);
            throw ex;
        }
        packed.clear();
        Map<String, float[]> dense = new LinkedHashMap<>();
        SafeTensors.read(dir.resolve(DENSE_TENSORS)).forEach((name, t) -> dense.put(name, t.toFloats()));
        return Qwen3Model.packed(config, dense, linears, device);
    }

    private static JsonObject scheme(Path dir) {
        JsonObject scheme;
        try {
            scheme = JsonParser.parseString(Files.readString(dir.resolve(QUANT_JSON))).getAsJsonObject();
        } catch (IOException ex) {
            throw new UncheckedIOException(dir.resolve(QUANT_JSON) + ": cannot read: " + ex.getMessage(), ex);
        }
        if (!scheme.has("format") || !FORMAT.equals(scheme.get("format").getAsString())) {
            throw new IllegalArgumentException(dir + ": unknown quantization format " + scheme.get("format"));
        }
        return scheme;
    }

    public static QuantizedModel read(Path dir) {
        Manifest.read(dir).verify(dir);
        ModelConfig config = ConfigJson.read(dir.resolve(CheckpointDir.CONFIG));
        JsonObject scheme;
        try {
            scheme = JsonParser.parseString(Files.readString(dir.resolve(QUANT_JSON))).getAsJsonObject();
        } catch (IOException ex) {
            throw new UncheckedIOException(dir.resolve(QUANT_JSON) + ": cannot read: " + ex.getMessage(), ex);
        }
        if (!FORMAT.equals(scheme.get("format").getAsString())) {
            throw new IllegalArgumentException(dir + ": unknown quantization format " + scheme.get("format"));
        }
        int bits = scheme.get("bits").getAsInt();
        int groupSize = scheme.get("group_size").getAsInt();
        Map<String, ByteTensors.Entry> packed = ByteTensors.read(dir.resolve(QUANT_TENSORS));
        Map<String, QuantizedLinear> linears = new LinkedHashMap<>();
        for (Map.Entry<String, com.google.gson.JsonElement> e : scheme.getAsJsonObject("layers").entrySet()) {
            String name = e.getKey();
            JsonObject l = e.getValue().getAsJsonObject();
            int rows = l.get("rows").getAsInt();
            int cols = l.get("cols").getAsInt();
            byte[] codes = PackedCodes.unpack(need(packed, name + ".codes").data(), rows * cols, bits);
            float[] steps = floats(need(packed, name + ".scales").data());
            byte[] so = PackedCodes.unpackSigns(need(packed, name + ".signs_out").data(), rows);
            byte[] si = PackedCodes.unpackSigns(need(packed, name + ".signs_in").data(), cols);
            linears.put(name, new QuantizedLinear(name, rows, cols, bits, groupSize, codes, steps, so, si));
        }
        Map<String, float[]> dense = new LinkedHashMap<>();
        SafeTensors.read(dir.resolve(DENSE_TENSORS)).forEach((name, t) -> dense.put(name, t.toFloats()));
        return new QuantizedModel(config, Method.valueOf(scheme.get("method").getAsString()), bits, groupSize,
                scheme.get("seed").getAsLong(), linears, dense);
    }

    private static String schemeJson(QuantizedModel q) {
        JsonObject o = new JsonObject();
        o.addProperty("format", FORMAT);
        o.addProperty("method", q.method().name());
        o.addProperty("bits", q.bits());
        o.addProperty("group_size", q.groupSize());
        o.addProperty("group_axis", "input");
        o.addProperty("seed", q.seed());
        o.addProperty("quantizer", "uniform mid-rise: w = scale * (code - (2^bits - 1) / 2), code in [0, 2^bits)");
        o.addProperty("code_packing", "bits little-endian: code i at stream bits [i*bits, (i+1)*bits), bit k in byte k/8 at position k%8");
        o.addProperty("incoherence", "W = diag(s_out) Had_out W~ Had_in diag(s_in); Had orthonormal Sylvester Hadamard,"
                + " block-diagonal with block = largest power of two dividing the dimension; signs 1 bit each, 1 = -1");
        o.addProperty("tile", TwoSidedRounding.TILE);
        JsonObject layers = new JsonObject();
        for (QuantizedLinear l : q.linears().values()) {
            JsonObject j = new JsonObject();
            j.addProperty("rows", l.rows());
            j.addProperty("cols", l.cols());
            j.addProperty("hadamard_block_out", Incoherence.hadamardBlock(l.rows()));
            j.addProperty("hadamard_block_in", Incoherence.hadamardBlock(l.cols()));
            layers.add(l.name(), j);
        }
        o.add("layers", layers);
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    private static ByteTensors.Entry need(Map<String, ByteTensors.Entry> packed, String name) {
        ByteTensors.Entry e = packed.get(name);
        if (e == null) {
            throw new IllegalArgumentException(QUANT_TENSORS + " lacks tensor " + name);
        }
        return e;
    }

    static byte[] halves(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putShort(DType.floatToF16Bits(f));
        }
        return b.array();
    }

    private static float[] floats(byte[] halfBytes) {
        ByteBuffer b = ByteBuffer.wrap(halfBytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[halfBytes.length / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = DType.f16BitsToFloat(b.getShort(2 * i));
        }
        return out;
    }

}
