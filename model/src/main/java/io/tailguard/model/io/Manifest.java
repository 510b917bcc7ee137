package io.tailguard.model.io;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collections;
import java.util.HexFormat;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * {@code manifest.json}: which checkpoint this is (version, parent, learner step, schedule version)
 * and the sha256 of every other file in the directory, so that a torn or tampered checkpoint is
 * refused rather than trained on.
 *
 * @param parent the directory name of the checkpoint this one was trained from; null for the first
 */
public record Manifest(long version, String parent, long step, long scheduleVersion, SortedMap<String, String> sha256) {

    public static final String FILE_NAME = "manifest.json";
    private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");

    public Manifest {
        sha256 = Collections.unmodifiableSortedMap(new TreeMap<>(sha256 == null ? Map.of() : sha256));
    }

    public static Manifest read(Path dir) {
        Path f = dir.resolve(FILE_NAME);
        JsonObject o;
        try {
            JsonElement root = JsonParser.parseString(Files.readString(f));
            if (root == null || !root.isJsonObject()) {
                throw CheckpointException.of(f, "not a JSON object");
            }
            o = root.getAsJsonObject();
        } catch (NoSuchFileException ex) {
            throw CheckpointException.of(f, "file does not exist");
        } catch (JsonParseException ex) {
            throw CheckpointException.of(f, "not valid JSON: " + ex.getMessage(), ex);
        } catch (IOException ex) {
            throw CheckpointException.of(f, "cannot read: " + ex, ex);
        }
        long version = longKey(f, o, "version");
        long step = longKey(f, o, "step");
        long scheduleVersion = longKey(f, o, "schedule_version");
        String parent = null;
        JsonElement p = o.get("parent");
        if (p != null && !p.isJsonNull()) {
            if (!p.isJsonPrimitive() || !p.getAsJsonPrimitive().isString()) {
                throw CheckpointException.of(f, "key parent", "expected a string or null, got " + p);
            }
            parent = p.getAsString();
        }
        JsonElement s = o.get("sha256");
        if (s == null || !s.isJsonObject()) {
            throw CheckpointException.of(f, "key sha256", "expected an object of file name to hex digest, got " + s);
        }
        SortedMap<String, String> sums = new TreeMap<>();
        for (Map.Entry<String, JsonElement> e : s.getAsJsonObject().entrySet()) {
            JsonElement v = e.getValue();
            if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString() || !HEX64.matcher(v.getAsString()).matches()) {
                throw CheckpointException.of(f, "key sha256." + e.getKey(), "expected 64 lowercase hex digits, got " + v);
            }
            if (!isCheckpointPath(e.getKey()) || e.getKey().equals(FILE_NAME)) {
                // A manifest must not make us hash files outside the checkpoint.
                throw CheckpointException.of(f, "key sha256." + e.getKey(), "not a file name inside the checkpoint");
            }
            sums.put(e.getKey(), v.getAsString());
        }
        return new Manifest(version, parent, step, scheduleVersion, sums);
    }

    public String toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("version", version);
        o.addProperty("parent", parent);
        o.addProperty("step", step);
        o.addProperty("schedule_version", scheduleVersion);
        JsonObject s = new JsonObject();
        sha256.forEach(s::addProperty);
        o.add("sha256", s);
        // serializeNulls: a first checkpoint says "parent": null rather than leaving the key out.
        return new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    /** Every listed file exists in {@code dir} and has the listed digest. */
    public void verify(Path dir) {
        for (Map.Entry<String, String> e : sha256.entrySet()) {
            Path f = dir.resolve(e.getKey());
            if (!Files.isRegularFile(f)) {
                throw CheckpointException.of(f, "listed in " + FILE_NAME + " but missing");
            }
            String actual = sha256(f);
            if (!actual.equals(e.getValue())) {
                throw CheckpointException.of(f, "sha256 " + actual + " does not match " + FILE_NAME + " ("
                        + e.getValue() + "); the file is corrupt or was changed");
            }
        }
    }

    /** Lowercase hex sha256 of a file, read in chunks so multi-GB checkpoints need no memory. */
    public static String sha256(Path file) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException ex) {
            throw new IllegalStateException("every Java runtime has SHA-256", ex);
        }
        byte[] buf = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        } catch (NoSuchFileException ex) {
            throw CheckpointException.of(file, "file does not exist");
        } catch (IOException ex) {
            throw new UncheckedIOException(file + ": cannot read: " + ex.getMessage(), ex);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /**
     * A file of the checkpoint by its path inside it: a plain file name, or one in a folder of the
     * checkpoint ({@code lora/adapter_model.safetensors}), no deeper.
     */
    static boolean isCheckpointPath(String name) {
        int slash = name.indexOf('/');
        return slash < 0 ? isPlainFileName(name)
                : isPlainFileName(name.substring(0, slash)) && isPlainFileName(name.substring(slash + 1));
    }

    static boolean isPlainFileName(String name) {
        return !name.isEmpty() && !name.equals(".") && !name.equals("..")
                && name.indexOf('/') < 0 && name.indexOf('\\') < 0 && name.indexOf('\0') < 0;
    }

    private static long longKey(Path f, JsonObject o, String key) {
        JsonElement v = o.get(key);
        if (v == null || v.isJsonNull()) {
            throw CheckpointException.of(f, "key " + key, "missing (required)");
        }
        if (v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()) {
            try {
                return new BigDecimal(v.getAsString()).longValueExact();
            } catch (ArithmeticException | NumberFormatException ignored) {
                // fall through
            }
        }
        throw CheckpointException.of(f, "key " + key, "expected an integer, got " + v);
    }
}
