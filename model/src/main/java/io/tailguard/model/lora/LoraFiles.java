package io.tailguard.model.lora;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Projection;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.io.DType;
import io.tailguard.model.io.HostTensor;
import io.tailguard.model.io.Manifest;
import io.tailguard.model.io.SafeTensors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A LoRA on disk, as PEFT writes one:
 * <ul>
 *   <li>{@value #WEIGHTS}: {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight}
 *       [r, in] and {@code ...lora_B.weight} [out, r] for every layer and target module
 *       ({@code self_attn.{q,k,v,o}_proj}, {@code mlp.{gate,up,down}_proj});</li>
 *   <li>{@value #CONFIG}: {@code peft_type} "LORA", {@code r}, {@code lora_alpha},
 *       {@code target_modules} (a list of module names, or "all-linear"), and PEFT's other keys with
 *       the values this implementation computes with.</li>
 * </ul>
 * Reading trusts nothing: a key or tensor that is missing, malformed, of the wrong shape or not
 * finite, a tensor that belongs to no target, and PEFT options that would change the math
 * (rsLoRA, DoRA, fan_in_fan_out, biases, per-layer patterns) fail with a
 * {@link CheckpointException} that names the file and the key or tensor.
 */
public final class LoraFiles {
    public static final String WEIGHTS = "lora.safetensors";
    public static final String CONFIG = "adapter_config.json";
    private static final String PREFIX = "base_model.model.model.layers.";

    private LoraFiles() {}

    /** A parsed adapter: its config and every A and B by PEFT name, as float32. */
    record Read(LoraConfig config, Map<String, float[]> values) {}

    /** {@code base_model.model.model.layers.{layer}.{block}.{module}.lora_{A|B}.weight}. */
    public static String tensorName(int layer, String module, char which) {
        return PREFIX + layer + "." + Projection.of(module).block() + "." + module + ".lora_" + which + ".weight";
    }

    static long[] shapeA(ModelConfig mc, LoraConfig c, String module) {
        return new long[] {c.rank(), Projection.shape(mc, module)[1]};
    }

    static long[] shapeB(ModelConfig mc, LoraConfig c, String module) {
        return new long[] {Projection.shape(mc, module)[0], c.rank()};
    }

    /** The two files' bytes. */
    static Map<String, byte[]> encode(ModelConfig mc, LoraConfig c, Map<String, float[]> values) {
        Map<String, HostTensor> tensors = new TreeMap<>();
        for (int l = 0; l < mc.numLayers(); l++) {
            for (String module : c.targetModules()) {
                for (char w : new char[] {'A', 'B'}) {
                    String name = tensorName(l, module, w);
                    long[] shape = w == 'A' ? shapeA(mc, c, module) : shapeB(mc, c, module);
                    tensors.put(name, HostTensor.ofFloats(shape, values.get(name), DType.F32));
                }
            }
        }
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put(WEIGHTS, safetensorsBytes(tensors));
        files.put(CONFIG, configJson(c).getBytes(StandardCharsets.UTF_8));
        return files;
    }

    static String configJson(LoraConfig c) {
        JsonObject o = new JsonObject();
        o.addProperty("peft_type", "LORA");
        o.addProperty("task_type", "CAUSAL_LM");
        o.addProperty("r", c.rank());
        if (c.alpha() == Math.rint(c.alpha()) && Math.abs(c.alpha()) < 1e15) {
            o.addProperty("lora_alpha", (long) c.alpha());
        } else {
            o.addProperty("lora_alpha", c.alpha());
        }
        JsonArray targets = new JsonArray();
        c.targetModules().forEach(targets::add);
        o.add("target_modules", targets);
        o.addProperty("lora_dropout", 0.0);
        o.addProperty("bias", "none");
        o.addProperty("fan_in_fan_out", false);
        o.addProperty("use_rslora", false);
        o.addProperty("use_dora", false);
        o.addProperty("inference_mode", true);
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    private static byte[] safetensorsBytes(Map<String, HostTensor> tensors) {
        try {
            Path tmp = Files.createTempFile("tailguard-lora-", ".safetensors");
            try {
                SafeTensors.write(tmp, tensors, Map.of("format", "pt"));
                return Files.readAllBytes(tmp);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ---- reading ----

    static Read read(Path dirOrFile, ModelConfig mc) {
        Path weights;
        Path dir;
        if (Files.isDirectory(dirOrFile)) {
            dir = dirOrFile;
            weights = dir.resolve(WEIGHTS);
            if (!Files.isRegularFile(weights)) {
                throw CheckpointException.of(dir, "no " + WEIGHTS + " in this directory (not a LoRA adapter or a checkpoint with one)");
            }
        } else if (Files.isRegularFile(dirOrFile)) {
            weights = dirOrFile;
            dir = dirOrFile.toAbsolutePath().getParent();
        } else {
            throw CheckpointException.of(dirOrFile, "does not exist");
        }
        if (Files.isRegularFile(dir.resolve(Manifest.FILE_NAME))) {
            Manifest.read(dir).verify(dir);
        }
        Path configFile = dir.resolve(CONFIG);
        LoraConfig config = readConfig(configFile);
        Map<String, HostTensor> tensors = SafeTensors.read(weights);
        Map<String, float[]> values = new LinkedHashMap<>();
        for (int l = 0; l < mc.numLayers(); l++) {
            for (String module : config.targetModules()) {
                for (char w : new char[] {'A', 'B'}) {
                    String name = tensorName(l, module, w);
                    HostTensor t = tensors.get(name);
                    if (t == null) {
                        throw CheckpointException.of(weights, "tensor " + name, "missing (" + CONFIG + " targets " + module
                                + " with r " + config.rank() + ")");
                    }
                    long[] want = w == 'A' ? shapeA(mc, config, module) : shapeB(mc, config, module);
                    if (!Arrays.equals(t.shape(), want)) {
                        throw CheckpointException.of(weights, "tensor " + name, "shape " + Arrays.toString(t.shape())
                                + " expected " + Arrays.toString(want));
                    }
                    float[] v;
                    try {
                        v = t.toFloats();
                    } catch (RuntimeException e) {
                        throw CheckpointException.of(weights, "tensor " + name, e.getMessage());
                    }
                    for (float x : v) {
                        if (!Float.isFinite(x)) {
                            throw CheckpointException.of(weights, "tensor " + name, "holds a value that is not finite");
                        }
                    }
                    values.put(name, v);
                }
            }
        }
        for (String name : tensors.keySet()) {
            if (!values.containsKey(name)) {
                throw CheckpointException.of(weights, "tensor " + name, "not an A or B of a target module of this "
                        + mc.numLayers() + "-layer model under " + CONFIG);
            }
        }
        return new Read(config, values);
    }

    private static LoraConfig readConfig(Path f) {
        JsonObject o;
        try {
            JsonElement root = JsonParser.parseString(Files.readString(f));
            if (root == null || !root.isJsonObject()) {
                throw CheckpointException.of(f, "not a JSON object");
            }
            o = root.getAsJsonObject();
        } catch (NoSuchFileException e) {
            throw CheckpointException.of(f, "file does not exist (a LoRA needs its " + CONFIG + ")");
        } catch (JsonParseException e) {
            throw CheckpointException.of(f, "not valid JSON: " + e.getMessage(), e);
        } catch (IOException e) {
            throw CheckpointException.of(f, "cannot read: " + e, e);
        }
        JsonElement type = o.get("peft_type");
        if (type != null && !(type.isJsonPrimitive() && type.getAsString().equals("LORA"))) {
            throw CheckpointException.of(f, "key peft_type", "must be \"LORA\", got " + type);
        }
        int rank = positiveInt(f, o, "r");
        double alpha = positiveNumber(f, o, "lora_alpha");
        List<String> targets = targets(f, o.get("target_modules"));
        refuse(f, o, "use_rslora", false, "rsLoRA scales by alpha/sqrt(r); only alpha/r is supported");
        refuse(f, o, "use_dora", false, "DoRA is not supported");
        refuse(f, o, "fan_in_fan_out", false, "weights stored transposed (fan_in_fan_out) are not supported");
        JsonElement bias = o.get("bias");
        if (bias != null && !bias.isJsonNull() && !(bias.isJsonPrimitive() && bias.getAsString().equals("none"))) {
            throw CheckpointException.of(f, "key bias", "only \"none\" is supported, got " + bias);
        }
        for (String key : List.of("rank_pattern", "alpha_pattern")) {
            JsonElement p = o.get(key);
            if (p != null && !p.isJsonNull() && !(p.isJsonObject() && p.getAsJsonObject().size() == 0)) {
                throw CheckpointException.of(f, "key " + key, "per-module ranks or alphas are not supported, got " + p);
            }
        }
        for (String key : List.of("layers_to_transform", "modules_to_save")) {
            JsonElement p = o.get(key);
            if (p != null && !p.isJsonNull() && !(p.isJsonArray() && p.getAsJsonArray().size() == 0)) {
                throw CheckpointException.of(f, "key " + key, "not supported, got " + p);
            }
        }
        try {
            return new LoraConfig(rank, alpha, targets);
        } catch (IllegalArgumentException e) {
            throw CheckpointException.of(f, "key target_modules", e.getMessage());
        }
    }

    private static List<String> targets(Path f, JsonElement t) {
        if (t == null || t.isJsonNull()) {
            throw CheckpointException.of(f, "key target_modules", "missing");
        }
        if (t.isJsonPrimitive() && t.getAsJsonPrimitive().isString() && t.getAsString().equals("all-linear")) {
            return LoraConfig.ALL_LINEAR;
        }
        if (!t.isJsonArray()) {
            throw CheckpointException.of(f, "key target_modules", "must be a list of module names or \"all-linear\", got " + t);
        }
        List<String> out = new ArrayList<>();
        for (JsonElement e : t.getAsJsonArray()) {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
                throw CheckpointException.of(f, "key target_modules", "holds a non-string: " + e);
            }
            out.add(e.getAsString());
        }
        // PEFT stores the list in no particular order (it is a set there).
        return out.stream().distinct().toList();
    }

    private static int positiveInt(Path f, JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
            throw CheckpointException.of(f, "key " + key, "must be a positive integer, got " + e);
        }
        double d = e.getAsDouble();
        if (d != Math.rint(d) || d < 1 || d > Integer.MAX_VALUE) {
            throw CheckpointException.of(f, "key " + key, "must be a positive integer, got " + e);
        }
        return (int) d;
    }

    private static double positiveNumber(Path f, JsonObject o, String key) {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()
                || !(e.getAsDouble() > 0) || !Double.isFinite(e.getAsDouble())) {
            throw CheckpointException.of(f, "key " + key, "must be a positive number, got " + e);
        }
        return e.getAsDouble();
    }

    private static void refuse(Path f, JsonObject o, String key, boolean supported, String why) {
        JsonElement e = o.get(key);
        if (e != null && !e.isJsonNull()) {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
                throw CheckpointException.of(f, "key " + key, "must be true or false, got " + e);
            }
            if (e.getAsBoolean() != supported) {
                throw CheckpointException.of(f, "key " + key, why);
            }
        }
    }

    /** Names of the files a LoRA consists of. */
    public static Set<String> fileNames() {
        return Set.of(WEIGHTS, CONFIG);
    }
}
