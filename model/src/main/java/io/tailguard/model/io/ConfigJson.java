package io.tailguard.model.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.tailguard.model.ModelConfig;

import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.MalformedInputException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face Qwen3 {@code config.json} to and from {@link ModelConfig}, as transformers 4 and 5
 * write it. Every key that changes what the model computes is either read or, where it switches on
 * something not implemented here (RoPE scalings other than YaRN, sliding-window attention,
 * biases), refused with the key named; absent optional keys take the defaults of transformers'
 * Qwen3Config, so a file means here what it means to transformers. Keys that change nothing
 * computed (bos_token_id, use_cache, initializer_range, ...) are ignored.
 */
public final class ConfigJson {

    private ConfigJson() {
    }

    public static ModelConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson);
        } catch (NoSuchFileException ex) {
            throw CheckpointException.of(configJson, "file does not exist");
        } catch (MalformedInputException ex) {
            throw CheckpointException.of(configJson, "not UTF-8 text", ex);
        } catch (IOException ex) {
            throw CheckpointException.of(configJson, "cannot read: " + ex, ex);
        }
        JsonElement root;
        try {
            root = JsonParser.parseString(text);
        } catch (JsonParseException ex) {
            throw CheckpointException.of(configJson, "not valid JSON: " + ex.getMessage(), ex);
        }
        if (root == null || !root.isJsonObject()) {
            throw CheckpointException.of(configJson, "not a JSON object");
        }
        JsonObject o = root.getAsJsonObject();
        Path f = configJson;
        refuseWhatIsNotImplemented(f, o);
        int vocab = requiredInt(f, o, "vocab_size");
        int hidden = requiredInt(f, o, "hidden_size");
        int inter = requiredInt(f, o, "intermediate_size");
        int layers = requiredInt(f, o, "num_hidden_layers");
        int heads = requiredInt(f, o, "num_attention_heads");
        int kvHeads = requiredInt(f, o, "num_key_value_heads");
        // transformers' Qwen3Config defaults head_dim to 128, whatever hidden_size / num_attention_heads
        // is; a stated null breaks transformers' attention, so it is refused rather than guessed.
        if (o.has("head_dim") && o.get("head_dim").isJsonNull()) {
            throw CheckpointException.of(f, "key head_dim", "null; state the per-head width");
        }
        Integer headDim = optionalInt(f, o, "head_dim");
        double eps = optionalDouble(f, o, "rms_norm_eps", 1e-6);
        Integer maxPos = optionalInt(f, o, "max_position_embeddings");
        boolean tie = optionalBoolean(f, o, "tie_word_embeddings", false);
        int eos = eosTokenId(f, o);
        if (layers > 0) {
            fullAttentionOnly(f, o, layers);
        }
        int maxPositions = maxPos == null ? 32768 : maxPos;
        Rope rope = rope(f, o, maxPositions);
        try {
            return new ModelConfig(vocab, hidden, inter, layers, heads, kvHeads, headDim == null ? 128 : headDim, eps, rope.theta(),
                    maxPositions, tie, eos, rope.yarn());
        } catch (IllegalArgumentException ex) {
            // ModelConfig's messages start with the config.json key at fault.
            throw CheckpointException.of(f, ex.getMessage(), ex);
        }
    }

    /** The dtype names a checkpoint may declare; the model computes in float32 whichever it is. */
    private static final Set<String> DTYPES = Set.of("float32", "bfloat16", "float16");

    /**
     * Keys that switch on something this model does not compute (biases, another activation,
     * quantized weights, another architecture) are refused; transformers would honour them, so
     * loading on would compute a different model without a word.
     */
    private static void refuseWhatIsNotImplemented(Path f, JsonObject o) {
        String type = optionalString(f, o, "model_type");
        if (type != null && !type.equals("qwen3")) {
            throw CheckpointException.of(f, "key model_type", "\"" + type + "\" is not supported (only \"qwen3\")");
        }
        if (optionalBoolean(f, o, "attention_bias", false)) {
            throw CheckpointException.of(f, "key attention_bias", "true is not supported (q/k/v/o projections without bias only)");
        }
        String act = optionalString(f, o, "hidden_act");
        if (act != null && !act.equals("silu")) {
            throw CheckpointException.of(f, "key hidden_act", "\"" + act + "\" is not supported (only \"silu\")");
        }
        if (optionalDouble(f, o, "attention_dropout", 0.0) != 0.0) {
            throw CheckpointException.of(f, "key attention_dropout", get(o, "attention_dropout")
                    + " is not supported (training here never drops attention weights; only 0)");
        }
        if (get(o, "quantization_config") != null) {
            throw CheckpointException.of(f, "key quantization_config", "quantized checkpoints are not supported");
        }
        // transformers 5 writes dtype, transformers 4 torch_dtype; the weights' own dtypes are what is read.
        for (String key : new String[] {"dtype", "torch_dtype"}) {
            String d = optionalString(f, o, key);
            if (d != null && !DTYPES.contains(d)) {
                throw CheckpointException.of(f, "key " + key, "\"" + d + "\" is not supported (one of " + new TreeSet<>(DTYPES) + ")");
            }
        }
    }

    /**
     * Every layer must attend to all earlier positions. transformers' Qwen3 makes layer i sliding
     * when layer_types says so, or, without layer_types, when use_sliding_window is true, sliding_window
     * is set and i ≥ max_window_layers (default 28); hub configs carry use_sliding_window false and
     * sliding_window null, which load.
     */
    private static void fullAttentionOnly(Path f, JsonObject o, int layers) {
        boolean use = optionalBoolean(f, o, "use_sliding_window", false);
        Integer window = optionalInt(f, o, "sliding_window");
        int maxWindowLayers = Math.max(0, optionalIntOr(f, o, "max_window_layers", 28));
        JsonElement types = get(o, "layer_types");
        if (types == null) {
            if (use && window != null && maxWindowLayers < layers) {
                throw CheckpointException.of(f, "key use_sliding_window", "true with sliding_window " + window
                        + " makes layers " + maxWindowLayers + ".." + (layers - 1)
                        + " (from max_window_layers) sliding-window attention, which is not supported");
            }
            return;
        }
        if (!types.isJsonArray()) {
            throw CheckpointException.of(f, "key layer_types", "expected a list of strings, got " + types);
        }
        JsonArray a = types.getAsJsonArray();
        if (a.size() != layers) {
            throw CheckpointException.of(f, "key layer_types", a.size() + " entries for num_hidden_layers " + layers);
        }
        for (int i = 0; i < a.size(); i++) {
            JsonElement t = a.get(i);
            if (!t.isJsonPrimitive() || !t.getAsJsonPrimitive().isString()) {
                throw CheckpointException.of(f, "key layer_types", "entry " + i + ": expected a string, got " + t);
            }
            if (!t.getAsString().equals("full_attention")) {
                throw CheckpointException.of(f, "key layer_types", "layer " + i + " is \"" + t.getAsString()
                        + "\"; only \"full_attention\" is supported");
            }
        }
    }

    /** The RoPE base and, for rope_type "yarn", its scaling (null: none). */
    private record Rope(double theta, ModelConfig.Yarn yarn) {
    }

    /**
     * RoPE as transformers 5 resolves it: rope_scaling when set (the transformers 4 key), else
     * rope_parameters, possibly nested by layer type ({"full_attention": {...}}); within it
     * rope_theta, else the top-level rope_theta (transformers 4), else Qwen3Config's 10000. The
     * default rope type and YaRN are implemented, any other type is refused; a top-level rope_theta
     * that disagrees with the one in rope_parameters is refused, since transformers 4 and 5 would
     * then compute different models.
     */
    private static Rope rope(Path f, JsonObject o, int maxPositions) {
        String key = "rope_scaling";
        JsonElement rp = get(o, key);
        if (rp != null && rp.isJsonObject() && rp.getAsJsonObject().isEmpty()) {
            rp = null;  // {} counts as unset, as in transformers
        }
        if (rp == null) {
            key = "rope_parameters";
            rp = get(o, key);
        }
        double topLevel = optionalDouble(f, o, "rope_theta", Double.NaN);
        if (rp == null) {
            return new Rope(Double.isNaN(topLevel) ? 10_000.0 : topLevel, null);
        }
        if (!rp.isJsonObject()) {
            throw CheckpointException.of(f, "key " + key, "expected an object, got " + rp);
        }
        JsonObject p = rp.getAsJsonObject();
        JsonElement nested = get(p, "full_attention");
        if (nested != null) {
            if (!nested.isJsonObject()) {
                throw CheckpointException.of(f, "key " + key + ".full_attention", "expected an object, got " + nested);
            }
            p = nested.getAsJsonObject();
            key = key + ".full_attention";
        }
        String typeKey = get(p, "rope_type") != null ? "rope_type" : "type";
        String type = optionalString(f, p, key + "." + typeKey, typeKey);
        if (type != null && !type.equals("default") && !type.equals("yarn")) {
            throw CheckpointException.of(f, "key " + key + "." + typeKey, "\"" + type
                    + "\" is not supported (only \"default\" and \"yarn\")");
        }
        double theta;
        JsonElement inner = p.get("rope_theta");
        if (inner == null) {
            theta = Double.isNaN(topLevel) ? 10_000.0 : topLevel;
        } else {
            if (!inner.isJsonPrimitive() || !inner.getAsJsonPrimitive().isNumber()) {
                throw CheckpointException.of(f, "key " + key + ".rope_theta", "expected a number, got " + inner);
            }
            theta = inner.getAsDouble();
            if (!Double.isNaN(topLevel) && topLevel != theta) {
                throw CheckpointException.of(f, "key rope_theta", topLevel + " disagrees with " + key + ".rope_theta " + theta);
            }
        }
        return new Rope(theta, "yarn".equals(type) ? yarn(f, o, p, key, maxPositions) : null);
    }

    /**
     * YaRN's parameters as transformers reads them: factor required (null: max_position_embeddings
     * over the original length); original_max_position_embeddings from the top level (transformers
     * 5 prefers it there), else from the scaling, else max_position_embeddings; attention_factor,
     * else from mscale and mscale_all_dim when both are set, else 0.1 ln(factor) + 1; beta_fast and
     * beta_slow 32 and 1 when absent or 0; truncate true. A partial_rotary_factor other than 1
     * is refused (Qwen3 rotates whole heads).
     */
    private static ModelConfig.Yarn yarn(Path f, JsonObject top, JsonObject p, String key, int maxPositions) {
        if (!p.has("factor")) {
            throw CheckpointException.of(f, "key " + key + ".factor", "missing (required for rope_type \"yarn\")");
        }
        Integer origTop = optionalInt(f, top, "original_max_position_embeddings");
        Double origIn = numberIn(f, p, key, "original_max_position_embeddings");
        int original = origTop != null ? origTop
                : origIn != null && origIn != 0 ? asWhole(f, key + ".original_max_position_embeddings", origIn) : maxPositions;
        Double factorIn = numberIn(f, p, key, "factor");
        double factor = factorIn != null ? factorIn : (double) maxPositions / original;
        Double attention = numberIn(f, p, key, "attention_factor");
        Double mscale = numberIn(f, p, key, "mscale");
        Double mscaleAll = numberIn(f, p, key, "mscale_all_dim");
        if (attention == null) {
            attention = mscale != null && mscale != 0 && mscaleAll != null && mscaleAll != 0
                    ? ModelConfig.Yarn.mscale(factor, mscale) / ModelConfig.Yarn.mscale(factor, mscaleAll)
                    : ModelConfig.Yarn.mscale(factor, 1);
        }
        Double betaFast = numberIn(f, p, key, "beta_fast");
        Double betaSlow = numberIn(f, p, key, "beta_slow");
        boolean truncate = optionalBoolean(f, p, "truncate", true);
        for (JsonObject where : new JsonObject[] {p, top}) {
            Double partial = numberIn(f, where, where == p ? key : null, "partial_rotary_factor");
            if (partial != null && partial != 1.0) {
                throw CheckpointException.of(f, "key " + (where == p ? key + "." : "") + "partial_rotary_factor",
                        partial + " is not supported (only 1: every dimension rotates)");
            }
        }
        try {
            return new ModelConfig.Yarn(factor, original, attention,
                    betaFast == null || betaFast == 0 ? 32 : betaFast, betaSlow == null || betaSlow == 0 ? 1 : betaSlow, truncate);
        } catch (IllegalArgumentException ex) {
            throw CheckpointException.of(f, ex.getMessage().replace("rope_scaling.", key + "."), ex);
        }
    }

    /** A number under {@code parent.name} (parent null: top level), or null when absent or null. */
    private static Double numberIn(Path f, JsonObject o, String parent, String name) {
        JsonElement v = get(o, name);
        if (v == null) {
            return null;
        }
        if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()) {
            return v.getAsDouble();
        }
        throw CheckpointException.of(f, "key " + (parent == null ? "" : parent + ".") + name, "expected a number, got " + v);
    }

    private static int asWhole(Path f, String key, double v) {
        if (v != Math.rint(v) || v < 1 || v > Integer.MAX_VALUE) {
            throw CheckpointException.of(f, "key " + key, "expected a positive integer, got " + v);
        }
        return (int) v;
    }

    /** config.json text a Hugging Face Qwen3 user would recognise. */
    public static String toJson(ModelConfig c, DType torchDtype) {
        JsonObject o = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("Qwen3ForCausalLM");
        o.add("architectures", arch);
        o.addProperty("model_type", "qwen3");
        o.addProperty("vocab_size", c.vocabSize());
        o.addProperty("hidden_size", c.hiddenSize());
        o.addProperty("intermediate_size", c.intermediateSize());
        o.addProperty("num_hidden_layers", c.numLayers());
        o.addProperty("num_attention_heads", c.numHeads());
        o.addProperty("num_key_value_heads", c.numKvHeads());
        o.addProperty("head_dim", c.headDim());
        o.addProperty("hidden_act", "silu");          // what the model code implements; stated for HF loaders
        o.addProperty("attention_bias", false);
        o.addProperty("rms_norm_eps", c.rmsNormEps());
        o.addProperty("rope_theta", c.ropeTheta());
        if (c.yarn() != null) {
            // transformers 4's key; transformers 5 reads it too (and takes rope_theta from the top level)
            ModelConfig.Yarn y = c.yarn();
            JsonObject r = new JsonObject();
            r.addProperty("rope_type", "yarn");
            r.addProperty("factor", y.factor());
            r.addProperty("original_max_position_embeddings", y.originalMaxPositionEmbeddings());
            r.addProperty("attention_factor", y.attentionFactor());
            r.addProperty("beta_fast", y.betaFast());
            r.addProperty("beta_slow", y.betaSlow());
            r.addProperty("truncate", y.truncate());
            o.add("rope_scaling", r);
        }
        o.addProperty("max_position_embeddings", c.maxPositionEmbeddings());
        o.addProperty("tie_word_embeddings", c.tieWordEmbeddings());
        if (c.eosTokenId() >= 0) {
            o.addProperty("eos_token_id", c.eosTokenId());  // absent means none, as read() expects
        }
        o.addProperty("torch_dtype", torchDtype.torchName());
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    // ---- typed getters; JSON null counts as absent, as in transformers ----

    private static JsonElement get(JsonObject o, String key) {
        JsonElement v = o.get(key);
        return v == null || v.isJsonNull() ? null : v;
    }

    private static int requiredInt(Path f, JsonObject o, String key) {
        Integer v = optionalInt(f, o, key);
        if (v == null) {
            throw CheckpointException.of(f, "key " + key, "missing (required)");
        }
        return v;
    }

    private static Integer optionalInt(Path f, JsonObject o, String key) {
        JsonElement v = get(o, key);
        return v == null ? null : asInt(f, key, v);
    }

    private static int asInt(Path f, String key, JsonElement v) {
        if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()) {
            try {
                return new BigDecimal(v.getAsString()).intValueExact();
            } catch (ArithmeticException | NumberFormatException ignored) {
                // fall through to the error below
            }
        }
        throw CheckpointException.of(f, "key " + key, "expected an integer, got " + v);
    }

    private static int optionalIntOr(Path f, JsonObject o, String key, int dflt) {
        Integer v = optionalInt(f, o, key);
        return v == null ? dflt : v;
    }

    private static String optionalString(Path f, JsonObject o, String key) {
        return optionalString(f, o, key, key);
    }

    /** {@code name}: the key as the message names it (with its parent's key for nested ones). */
    private static String optionalString(Path f, JsonObject o, String name, String key) {
        JsonElement v = get(o, key);
        if (v == null) {
            return null;
        }
        if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isString()) {
            return v.getAsString();
        }
        throw CheckpointException.of(f, "key " + name, "expected a string, got " + v);
    }

    private static double optionalDouble(Path f, JsonObject o, String key, double dflt) {
        JsonElement v = get(o, key);
        if (v == null) {
            return dflt;
        }
        if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()) {
            return v.getAsDouble();
        }
        throw CheckpointException.of(f, "key " + key, "expected a number, got " + v);
    }

    private static boolean optionalBoolean(Path f, JsonObject o, String key, boolean dflt) {
        JsonElement v = get(o, key);
        if (v == null) {
            return dflt;
        }
        if (v.isJsonPrimitive() && ((JsonPrimitive) v).isBoolean()) {
            return v.getAsBoolean();
        }
        throw CheckpointException.of(f, "key " + key, "expected true or false, got " + v);
    }

    /** An int, or a list whose first entry is the one used to stop generation; absent: -1. */
    private static int eosTokenId(Path f, JsonObject o) {
        JsonElement v = get(o, "eos_token_id");
        if (v == null) {
            return -1;
        }
        if (v.isJsonArray()) {
            JsonArray a = v.getAsJsonArray();
            return a.isEmpty() ? -1 : asInt(f, "eos_token_id", a.get(0));
        }
        return asInt(f, "eos_token_id", v);
    }
}
