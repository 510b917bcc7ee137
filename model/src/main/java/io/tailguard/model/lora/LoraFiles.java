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
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiPredicate;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A LoRA on disk, as PEFT writes one:
 * <ul>
 *   <li>the weights, {@value #PEFT_WEIGHTS}, in an adapter directory of its own (PEFT's
 *       {@code save_pretrained}, {@link LoraAdapter#save}) or in a checkpoint's folder
 *       {@value #DIR} (older checkpoints: {@value #WEIGHTS} beside the model's files, with
 *       {@value #CONFIG}):
 *       {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} [r, in] and
 *       {@code ...lora_B.weight} [out, r] for every layer and target module
 *       ({@code self_attn.{q,k,v,o}_proj}, {@code mlp.{gate,up,down}_proj});</li>
 *   <li>{@value #CONFIG}: {@code peft_type} "LORA", {@code r}, {@code lora_alpha},
 *       {@code target_modules} (module names, a regular expression or "all-linear", matched as PEFT
 *       matches them), and PEFT's other keys with the values this implementation computes with.</li>
 * </ul>
 * Reading trusts nothing: a key or tensor that is missing, malformed, of the wrong shape or not
 * finite, a tensor that belongs to no target, and PEFT options that would change the math
 * (rsLoRA, DoRA, fan_in_fan_out, biases, per-module patterns, modules to save, initialisations
 * that change the base weights, keys this reader does not know set to anything but off) fail
 * with a {@link CheckpointException} that names the file and the key or tensor.
 */
public final class LoraFiles {
    /** The adapter's weights, as PEFT names them. */
    public static final String PEFT_WEIGHTS = "adapter_model.safetensors";
    /**
     * The folder of a Tailguard checkpoint that holds its adapter, an adapter directory as PEFT
     * writes one. Not beside the model's files: there transformers would take the checkpoint for
     * an adapter and apply it to the model it loads.
     */
    public static final String DIR = "lora";
    /** The adapter's weights beside the model's, in checkpoints written before {@value #DIR} held them (still read). */
    public static final String WEIGHTS = "lora.safetensors";
    public static final String CONFIG = "adapter_config.json";
    private static final String PREFIX = "base_model.model.model.layers.";

    private LoraFiles() {}

    /** A parsed adapter: its config (and the file it came from) and every A and B by PEFT name, as float32. */
    record Read(LoraConfig config, Path configFile, Map<String, float[]> values) {}

    /**
     * Whether a checkpoint directory carries an adapter: {@value #DIR}/{@value #PEFT_WEIGHTS}, or
     * {@value #WEIGHTS} beside the model's files as older checkpoints have it.
     */
    public static boolean inCheckpoint(Path checkpointDir) {
        return Files.isRegularFile(checkpointDir.resolve(DIR).resolve(PEFT_WEIGHTS))
                || Files.isRegularFile(checkpointDir.resolve(WEIGHTS));
    }

    /** The adapter's two files in a checkpoint directory, by their names in its manifest. */
    public static List<String> checkpointFiles(Path checkpointDir) {
        return Files.isDirectory(checkpointDir.resolve(DIR))
                ? List.of(DIR + "/" + PEFT_WEIGHTS, DIR + "/" + CONFIG)
                : List.of(WEIGHTS, CONFIG);
    }

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

    /** The two files' bytes, the weights under {@code weightsName}. */
    static Map<String, byte[]> encode(ModelConfig mc, LoraConfig c, Map<String, float[]> values, String weightsName) {
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
        files.put(weightsName, safetensorsBytes(tensors));
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
        if (Files.isDirectory(dirOrFile) && Files.isDirectory(dirOrFile.resolve(DIR))
                && !Files.exists(dirOrFile.resolve(PEFT_WEIGHTS)) && !Files.exists(dirOrFile.resolve(WEIGHTS))) {
            // a checkpoint: its manifest covers the adapter's folder
            if (Files.isRegularFile(dirOrFile.resolve(Manifest.FILE_NAME))) {
                Manifest.read(dirOrFile).verify(dirOrFile);
            }
            dir = dirOrFile.resolve(DIR);
            weights = weightsIn(dir);
        } else if (Files.isDirectory(dirOrFile)) {
            dir = dirOrFile;
            weights = weightsIn(dir);
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
        LoraConfig config = readConfig(configFile, mc);
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
        return new Read(config, configFile, values);
    }

    /**
     * The weights file of an adapter directory: PEFT's {@value #PEFT_WEIGHTS} (what {@code
     * save_pretrained} and {@link LoraAdapter#save} write) or {@value #WEIGHTS} (beside the model in
     * checkpoints written before the folder {@value #DIR}); never both, since either could be the one meant.
     */
    static Path weightsIn(Path dir) {
        Path peft = dir.resolve(PEFT_WEIGHTS);
        Path ours = dir.resolve(WEIGHTS);
        boolean hasPeft = Files.isRegularFile(peft);
        boolean hasOurs = Files.isRegularFile(ours);
        if (hasPeft && hasOurs) {
            throw CheckpointException.of(dir, "holds both " + PEFT_WEIGHTS + " and " + WEIGHTS + "; name the file to use");
        }
        if (hasPeft || hasOurs) {
            return hasPeft ? peft : ours;
        }
        if (Files.isRegularFile(dir.resolve("adapter_model.bin"))) {
            throw CheckpointException.of(dir.resolve("adapter_model.bin"), "a PyTorch pickle, which is not read; save the "
                    + "adapter with save_pretrained(..., safe_serialization=True) to get " + PEFT_WEIGHTS);
        }
        throw CheckpointException.of(dir, "no " + PEFT_WEIGHTS + ", " + DIR + "/" + PEFT_WEIGHTS + " or " + WEIGHTS
                + " in this directory (not a LoRA adapter or a checkpoint with one)");
    }

    // ---- adapter_config.json ----

    /** Keys that only describe the adapter or its training, not what it computes at inference. */
    private static final Set<String> DESCRIPTIVE = Set.of("task_type", "base_model_name_or_path", "revision",
            "inference_mode", "peft_version", "auto_mapping", "lora_dropout", "megatron_core", "qalora_group_size",
            "layers_pattern", "ensure_weight_tying",
            // configurations of an initialisation, which init_lora_weights names (and is checked)
            "loftq_config", "eva_config", "corda_config", "lora_ga_config");

    /** Values of init_lora_weights whose adapters apply to the base weights as they are. */
    private static final Set<String> PLAIN_INITS = Set.of("true", "false", "gaussian", "eva", "orthogonal");

    /** Keys that change the math when set, with what they would do. */
    private static final Map<String, String> REFUSED = refused();

    private static Map<String, String> refused() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("use_rslora", "rsLoRA scales by alpha/sqrt(r); only alpha/r is supported");
        m.put("use_dora", "DoRA is not supported");
        m.put("fan_in_fan_out", "weights stored transposed (fan_in_fan_out) are not supported");
        m.put("lora_bias", "a bias on lora_B is not supported");
        m.put("rank_pattern", "per-module ranks are not supported");
        m.put("alpha_pattern", "per-module alphas are not supported");
        m.put("modules_to_save", "fully trained modules beside the LoRA are not supported");
        m.put("layers_to_transform", "adapting some layers only is not supported");
        m.put("layer_replication", "replicated layers are not supported");
        m.put("target_parameters", "LoRA on parameters (not modules) is not supported");
        m.put("trainable_token_indices", "trainable token embeddings are not supported");
        m.put("use_qalora", "QALoRA is not supported");
        m.put("use_bdlora", "block-diagonal LoRA is not supported");
        m.put("megatron_config", "Megatron parallel layers are not supported");
        m.put("alora_invocation_tokens", "activated LoRA is not supported");
        m.put("arrow_config", "Arrow routing is not supported");
        m.put("kasa_config", "KaSA is not supported");
        m.put("monteclora_config", "MonteCLoRA is not supported");
        m.put("velora_config", "VeLoRA is not supported");
        return m;
    }

    /**
     * adapter_config.json as PEFT writes it. Every key either is used (r, lora_alpha, target_modules,
     * exclude_modules), only describes the adapter ({@link #DESCRIPTIVE}), or must be off: absent,
     * null, false, "none" (bias), {} or []. A key set to anything else, including keys of PEFT
     * versions newer than this reader, is refused, since it may change what the adapter computes.
     */
    static LoraConfig readConfig(Path f, ModelConfig mc) {
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
        JsonElement init = o.get("init_lora_weights");
        if (init != null && !init.isJsonNull()
                && !(init.isJsonPrimitive() && PLAIN_INITS.contains(init.getAsString().toLowerCase(Locale.ROOT)))) {
            throw CheckpointException.of(f, "key init_lora_weights", "must be one of " + new TreeSet<>(PLAIN_INITS)
                    + ", got " + init + " (PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA change the base weights, MiCA the "
                    + "forward; convert such an adapter with save_pretrained(..., path_initial_model_for_weight_conversion=...))");
        }
        JsonElement bias = o.get("bias");
        if (bias != null && !bias.isJsonNull() && !(bias.isJsonPrimitive() && bias.getAsString().equals("none"))) {
            throw CheckpointException.of(f, "key bias", "only \"none\" is supported, got " + bias);
        }
        for (Map.Entry<String, JsonElement> e : new TreeMap<>(o.asMap()).entrySet()) {
            String key = e.getKey();
            if (Set.of("peft_type", "r", "lora_alpha", "init_lora_weights", "bias", "target_modules", "exclude_modules")
                    .contains(key) || DESCRIPTIVE.contains(key) || isOff(e.getValue())) {
                continue;
            }
            String why = REFUSED.get(key);
            throw CheckpointException.of(f, "key " + key, (why != null ? why : "not a key this reader knows; only null, "
                    + "false or empty is accepted for it") + ", got " + e.getValue());
        }
        List<String> targets = targets(f, o.get("target_modules"), o.get("exclude_modules"), mc.numLayers());
        return new LoraConfig(rank, alpha, targets);
    }

    /** Off as PEFT's defaults are: absent, null, false, {} or []. */
    private static boolean isOff(JsonElement e) {
        return e == null || e.isJsonNull()
                || e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean() && !e.getAsBoolean()
                || e.isJsonObject() && e.getAsJsonObject().size() == 0
                || e.isJsonArray() && e.getAsJsonArray().size() == 0;
    }

    /**
     * The linear modules adapted, matched as PEFT matches them against each module's full name
     * ({@code model.layers.3.self_attn.q_proj}): a list entry matches the name itself or a
     * dot-separated tail of it ("q_proj", "self_attn.q_proj", or the full name, as PEFT saves
     * "all-linear"); a string other than "all-linear" is a regular expression the whole name must
     * match; exclude_modules removes names in the same way. A module must be adapted in every layer
     * or in none.
     */
    private static List<String> targets(Path f, JsonElement t, JsonElement exclude, int layers) {
        if (t == null || t.isJsonNull()) {
            throw CheckpointException.of(f, "key target_modules", "missing");
        }
        Predicate<String> include = matcher(f, "target_modules", t, layers);
        Predicate<String> excluded = isOff(exclude) ? n -> false : matcher(f, "exclude_modules", exclude, layers);
        // a LoRA on the embeddings or the output projection
        for (String other : List.of("lm_head", "model.embed_tokens")) {
            if (include.test(other) && !excluded.test(other)) {
                throw CheckpointException.of(f, "key target_modules", "adapts " + other + "; only the linear modules "
                        + LoraConfig.ALL_LINEAR + " of the layers are supported, got " + t);
            }
        }
        List<String> out = new ArrayList<>();
        for (String module : LoraConfig.ALL_LINEAR) {
            List<Integer> in = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                String name = "model.layers." + l + "." + Projection.of(module).block() + "." + module;
                if (include.test(name) && !excluded.test(name)) {
                    in.add(l);
                }
            }
            if (in.size() == layers) {
                out.add(module);
            } else if (!in.isEmpty()) {
                throw CheckpointException.of(f, "key target_modules", "adapts " + module + " in layers " + in + " of "
                        + layers + " only; a module is adapted in every layer or in none");
            }
        }
        if (out.isEmpty()) {
            throw CheckpointException.of(f, "key target_modules", "matches none of the linear modules "
                    + LoraConfig.ALL_LINEAR + " of this model, got " + t);
        }
        return out;
    }

    private static Predicate<String> matcher(Path f, String key, JsonElement t, int layers) {
        if (t.isJsonPrimitive() && t.getAsJsonPrimitive().isString()) {
            String s = t.getAsString();
            if (key.equals("target_modules") && s.equals("all-linear")) {
                return n -> n.startsWith("model.layers."); // PEFT leaves the output layer out
            }
            Pattern p;
            try {
                p = Pattern.compile(s);
            } catch (PatternSyntaxException e) {
                throw CheckpointException.of(f, "key " + key, "not a valid regular expression: " + s);
            }
            return n -> p.matcher(n).matches();
        }
        if (!t.isJsonArray()) {
            throw CheckpointException.of(f, "key " + key, "must be a list of module names or a regular expression"
                    + (key.equals("target_modules") ? " or \"all-linear\"" : "") + ", got " + t);
        }
        List<String> names = new ArrayList<>();
        for (JsonElement e : t.getAsJsonArray()) {
            if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
                throw CheckpointException.of(f, "key " + key, "holds a non-string: " + e);
            }
            names.add(e.getAsString());
        }
        BiPredicate<String, String> matches = (n, x) -> n.equals(x) || n.endsWith("." + x);
        if (key.equals("target_modules")) {
            // A name no layer module answers to is another module of the model (lm_head, say) or
            // none of it: either way not what this adapter can compute.
            for (String x : names) {
                boolean any = false;
                for (int l = 0; l < layers && !any; l++) {
                    for (String module : LoraConfig.ALL_LINEAR) {
                        any |= matches.test("model.layers." + l + "." + Projection.of(module).block() + "." + module, x);
                    }
                }
                if (!any) {
                    throw CheckpointException.of(f, "key " + key, "'" + x + "' names none of the linear modules "
                            + LoraConfig.ALL_LINEAR + " of this " + layers + "-layer model");
                }
            }
        }
        return n -> names.stream().anyMatch(x -> matches.test(n, x));
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

    /** Names of the files a LoRA consists of. */
    public static Set<String> fileNames() {
        return Set.of(WEIGHTS, CONFIG);
    }
}
