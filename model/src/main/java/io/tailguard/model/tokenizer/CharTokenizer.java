package io.tailguard.model.tokenizer;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import io.tailguard.model.io.CheckpointException;

import java.util.List;

/**
 * The built-in character-level tokenizer of the verifiable tasks: ids 0 {@code <pad>}, 1
 * {@code <bos>}, 2 {@code <eos>}, then one id per alphabet character ('\n' and printable ASCII,
 * 99 tokens in all). Characters map to ids one to one, so answers can be checked character by
 * character and a tiny model needs no subword vocabulary.
 */
public final class CharTokenizer implements Tokenizer {

    public static final String TYPE = "tailguard-char";
    public static final int VERSION = 1;
    public static final List<String> SPECIALS = List.of("<pad>", "<bos>", "<eos>");
    public static final int PAD = 0;
    public static final int BOS = 1;
    public static final int EOS = 2;

    private static final CharTokenizer STANDARD = new CharTokenizer(standardAlphabet());

    private final String alphabet;
    private final int[] idOfChar;  // indexed by char; -1: not in the alphabet

    private CharTokenizer(String alphabet) {
        this.alphabet = alphabet;
        this.idOfChar = new int[Character.MAX_VALUE + 1];
        java.util.Arrays.fill(idOfChar, -1);
        for (int i = 0; i < alphabet.length(); i++) {
            char ch = alphabet.charAt(i);
            if (idOfChar[ch] >= 0) {
                throw new IllegalArgumentException("alphabet repeats " + describe(ch));
            }
            idOfChar[ch] = SPECIALS.size() + i;
        }
    }

    public static CharTokenizer standard() {
        return STANDARD;
    }

    private static String standardAlphabet() {
        StringBuilder sb = new StringBuilder("\n");
        for (char ch = 32; ch <= 126; ch++) {
            sb.append(ch);
        }
        return sb.toString();
    }

    /**
     * Reads the description written by {@link #toJson()}.
     *
     * @param where the file it came from, for the error message
     */
    public static CharTokenizer fromJson(String json, String where) {
        JsonObject o;
        try {
            JsonElement root = JsonParser.parseString(json);
            if (root == null || !root.isJsonObject()) {
                throw new CheckpointException(where + ": not a JSON object");
            }
            o = root.getAsJsonObject();
        } catch (JsonParseException ex) {
            throw new CheckpointException(where + ": not valid JSON: " + ex.getMessage(), ex);
        }
        String type = string(o, "type", where);
        if (!TYPE.equals(type)) {
            throw new CheckpointException(where + ": key type: expected " + TYPE + ", got " + type);
        }
        JsonElement v = o.get("version");
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isNumber() || v.getAsDouble() != VERSION) {
            throw new CheckpointException(where + ": key version: expected " + VERSION + ", got " + v);
        }
        JsonElement specials = o.get("specials");
        JsonArray expected = new JsonArray();
        SPECIALS.forEach(expected::add);
        if (!expected.equals(specials)) {
            throw new CheckpointException(where + ": key specials: expected " + expected + ", got " + specials);
        }
        String alphabet = string(o, "alphabet", where);
        try {
            return alphabet.equals(STANDARD.alphabet) ? STANDARD : new CharTokenizer(alphabet);
        } catch (IllegalArgumentException ex) {
            throw new CheckpointException(where + ": key alphabet: " + ex.getMessage(), ex);
        }
    }

    private static String string(JsonObject o, String key, String where) {
        JsonElement v = o.get(key);
        if (v == null || !v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString()) {
            throw new CheckpointException(where + ": key " + key + ": expected a string, got " + v);
        }
        return v.getAsString();
    }

    /** @throws IllegalArgumentException naming the first character outside the alphabet and its position */
    @Override
    public int[] encode(String text) {
        int[] ids = new int[text.length()];
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            int id = idOfChar[ch];
            if (id < 0) {
                throw new IllegalArgumentException(describe(ch) + " at position " + i
                        + " is not in the task tokenizer's alphabet");
            }
            ids[i] = id;
        }
        return ids;
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder(ids.length);
        for (int id : ids) {
            if (id < 0 || id >= vocabSize()) {
                throw new IllegalArgumentException("token id " + id + " is outside [0, " + vocabSize() + ")");
            }
            if (id >= SPECIALS.size()) {
                sb.append(alphabet.charAt(id - SPECIALS.size()));
            }
        }
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return SPECIALS.size() + alphabet.length();
    }

    @Override
    public int eosId() {
        return EOS;
    }

    @Override
    public int bosId() {
        return BOS;
    }

    @Override
    public String toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("type", TYPE);
        o.addProperty("version", VERSION);
        JsonArray s = new JsonArray();
        SPECIALS.forEach(s::add);
        o.add("specials", s);
        o.addProperty("alphabet", alphabet);
        return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    private static String describe(char ch) {
        String shown = ch >= 32 && ch < 127 ? "'" + ch + "'" : "";
        return "character " + shown + (shown.isEmpty() ? "" : " ") + String.format("(U+%04X)", (int) ch);
    }
}
