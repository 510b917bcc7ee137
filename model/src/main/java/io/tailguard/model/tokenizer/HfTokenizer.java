package io.tailguard.model.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tailguard.model.io.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's bindings to the Rust tokenizers library.
 * It is built from the file alone (never the hub; run with {@code -Dai.djl.offline=true}) and adds no
 * special tokens on encode. DJL exposes neither the vocabulary size nor the eos/bos tokens, so those
 * are read from tokenizer.json and, when present, the sibling tokenizer_config.json.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final String json;
    private final int vocabSize;
    private final int eosId;
    private final int bosId;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, String json, int vocabSize, int eosId, int bosId) {
        this.tokenizer = tokenizer;
        this.json = json;
        this.vocabSize = vocabSize;
        this.eosId = eosId;
        this.bosId = bosId;
    }

    /** @throws CheckpointException when the file is missing or not a tokenizer the library accepts */
    public static HfTokenizer load(Path tokenizerJson) {
        String text;
        try {
            text = Files.readString(tokenizerJson);
        } catch (IOException ex) {
            throw new CheckpointException(tokenizerJson + ": cannot read: " + ex, ex);
        }
        JsonObject root;
        try {
            JsonElement e = JsonParser.parseString(text);
            if (e == null || !e.isJsonObject()) {
                throw new CheckpointException(tokenizerJson + ": not a JSON object");
            }
            root = e.getAsJsonObject();
        } catch (JsonParseException ex) {
            throw new CheckpointException(tokenizerJson + ": not valid JSON: " + ex.getMessage(), ex);
        }
        Map<String, Integer> ids = tokenIds(root);
        int vocab = ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        if (vocab <= 0) {
            throw new CheckpointException(tokenizerJson + ": key model.vocab: no tokens found");
        }
        JsonObject tokConfig = readTokenizerConfig(tokenizerJson.resolveSibling("tokenizer_config.json"));
        int eos = specialId(tokConfig, "eos_token", ids);
        int bos = specialId(tokConfig, "bos_token", ids);
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(tokenizerJson)
                    .optAddSpecialTokens(false)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (IOException | RuntimeException ex) {
            throw new CheckpointException(tokenizerJson + ": the tokenizers library rejects it: " + ex.getMessage(), ex);
        }
        return new HfTokenizer(tok, text, vocab, eos, bos);
    }

    /** Token string to id, from model.vocab (object or Unigram list) and added_tokens. */
    private static Map<String, Integer> tokenIds(JsonObject root) {
        Map<String, Integer> ids = new HashMap<>();
        JsonElement model = root.get("model");
        JsonElement vocab = model != null && model.isJsonObject() ? model.getAsJsonObject().get("vocab") : null;
        if (vocab != null && vocab.isJsonObject()) {
            for (Map.Entry<String, JsonElement> e : vocab.getAsJsonObject().entrySet()) {
                ids.put(e.getKey(), e.getValue().getAsInt());
            }
        } else if (vocab != null && vocab.isJsonArray()) {
            // Unigram: a list of [piece, score]; the id is the position.
            for (int i = 0; i < vocab.getAsJsonArray().size(); i++) {
                JsonElement piece = vocab.getAsJsonArray().get(i);
                if (piece.isJsonArray() && !piece.getAsJsonArray().isEmpty()) {
                    ids.put(piece.getAsJsonArray().get(0).getAsString(), i);
                }
            }
        }
        JsonElement added = root.get("added_tokens");
        if (added != null && added.isJsonArray()) {
            for (JsonElement a : added.getAsJsonArray()) {
                if (a.isJsonObject() && a.getAsJsonObject().has("content") && a.getAsJsonObject().has("id")) {
                    ids.put(a.getAsJsonObject().get("content").getAsString(), a.getAsJsonObject().get("id").getAsInt());
                }
            }
        }
        return ids;
    }

    private static JsonObject readTokenizerConfig(Path f) {
        if (!Files.exists(f)) {
            return new JsonObject();
        }
        try {
            JsonElement e = JsonParser.parseString(Files.readString(f));
            return e.isJsonObject() ? e.getAsJsonObject() : new JsonObject();
        } catch (IOException | JsonParseException ex) {
            throw new CheckpointException(f + ": cannot read: " + ex.getMessage(), ex);
        }
    }

    /** tokenizer_config.json writes a special token as a string or as {"content": ...}. */
    private static int specialId(JsonObject tokConfig, String key, Map<String, Integer> ids) {
        JsonElement v = tokConfig.get(key);
        if (v != null && v.isJsonObject()) {
            v = v.getAsJsonObject().get("content");
        }
        if (v == null || !v.isJsonPrimitive()) {
            return -1;
        }
        return ids.getOrDefault(v.getAsString(), -1);
    }

    @Override
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return tokenizer.decode(l, true);
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public int eosId() {
        return eosId;
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public String toJson() {
        return json;
    }

    /** Frees the native tokenizer now rather than at garbage collection. */
    @Override
    public void close() {
        tokenizer.close();
    }
}
