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

/**
 * A Hugging Face Qwen3 {@code config.json} to and from {@link ModelConfig}. Optional keys take the
 * defaults of transformers' Qwen3Config, so a real Qwen3 checkpoint reads as it is; unknown keys are
 * ignored for the same reason.
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
        int vocab = requiredInt(f, o, "vocab_size");
        int hidden = requiredInt(f, o, "hidden_size");
        int inter = requiredInt(f, o, "intermediate_size");
        int layers = requiredInt(f, o, "num_hidden_layers");
        int heads = requiredInt(f, o, "num_attention_heads");
        int kvHeads = requiredInt(f, o, "num_key_value_heads");
        Integer headDim = optionalInt(f, o, "head_dim");
        if (headDim == null) {
            if (heads <= 0 || hidden % heads != 0) {
                throw CheckpointException.of(f, "key head_dim", "absent, and hidden_size " + hidden
                        + " is not a positive multiple of num_attention_heads " + heads);
            }
            headDim = hidden / heads;
        }
        double eps = optionalDouble(f, o, "rms_norm_eps", 1e-6);
        double theta = optionalDouble(f, o, "rope_theta", 10000.0);
        Integer maxPos = optionalInt(f, o, "max_position_embeddings");
        boolean tie = optionalBoolean(f, o, "tie_word_embeddings", false);
        int eos = eosTokenId(f, o);
        try {
            return new ModelConfig(vocab, hidden, inter, layers, heads, kvHeads, headDim, eps, theta,
                    maxPos == null ? 32768 : maxPos, tie, eos);
        } catch (IllegalArgumentException ex) {
            // ModelConfig's messages start with the config.json key at fault.
            throw CheckpointException.of(f, ex.getMessage(), ex);
        }
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
