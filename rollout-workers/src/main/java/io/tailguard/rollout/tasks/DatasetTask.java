package io.tailguard.rollout.tasks;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.Strictness;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A task read from a JSON-lines file, one record per line: {@code {"id","problem",<reference>}}
 * where the reference field ("answer" for math, "tests" for code) is what the verifier checks
 * against. Prompts are the records in file order: {@code prompt(seed, i)} is record i, whatever the
 * seed (see {@link Task}).
 *
 * <p>A line that is not one JSON object, or lacks a field, or repeats an id, is skipped with a
 * warning naming the file and the 1-based line number ({@link #skipped()}); blank lines are ignored.
 * A missing or unreadable file, or one without a single valid record, is an error.
 */
public final class DatasetTask implements Task {

    /** Checks a completion against the record's reference field. */
    @FunctionalInterface
    interface Verifier {
        Verdict verify(Prompt prompt, String reference, String completion);
    }

    // Strict: Gson's default leniency would accept single quotes, unquoted names and trailing text.
    private static final Gson STRICT = new GsonBuilder().setStrictness(Strictness.STRICT).create();

    private final String name;
    private final Path file;
    private final List<Prompt> prompts;
    private final Map<String, String> referenceById;
    private final List<String> skipped;
    private final Verifier verifier;
    /** 0: none of its own. */
    private final int maxNewTokens;

    private DatasetTask(String name, Path file, List<Prompt> prompts, Map<String, String> referenceById,
                        List<String> skipped, Verifier verifier) {
        this(name, file, prompts, referenceById, skipped, verifier, 0);
    }

    private DatasetTask(String name, Path file, List<Prompt> prompts, Map<String, String> referenceById,
                        List<String> skipped, Verifier verifier, int maxNewTokens) {
        this.maxNewTokens = maxNewTokens;
        this.name = name;
        this.file = file;
        this.prompts = List.copyOf(prompts);
        this.referenceById = Map.copyOf(referenceById);
        this.skipped = List.copyOf(skipped);
        this.verifier = verifier;
    }

    /**
     * Reads {@code file}; {@code referenceField} is copied into {@link Prompt#answer()} when
     * {@code referenceIsAnswer} (math), and kept only for the verifier otherwise (code tests must not
     * leak into what the policy sees).
     *
     * @throws IllegalArgumentException (one line, naming the file) if the file is missing or unreadable
     *                                  or holds no valid record
     */
    static DatasetTask read(String name, Path file, String referenceField, boolean referenceIsAnswer,
                            Verifier verifier) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(name + " dataset " + file + ": file not found");
        } catch (IOException | UncheckedIOException e) {
            throw new IllegalArgumentException(name + " dataset " + file + ": cannot read: "
                    + oneLine(e.getMessage()));
        }
        List<Prompt> prompts = new ArrayList<>();
        Map<String, String> references = new HashMap<>();
        List<String> skipped = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            String where = file + ":" + (i + 1) + ": ";
            JsonObject obj;
            try {
                obj = STRICT.fromJson(line, JsonObject.class);
            } catch (JsonParseException | IllegalStateException e) {
                skipped.add(where + "not a JSON object, skipped");
                continue;
            }
            if (obj == null) {
                skipped.add(where + "not a JSON object, skipped");
                continue;
            }
            String id = text(obj, "id");
            String problem = text(obj, "problem");
            String reference = text(obj, referenceField);
            String missing = id == null ? "id" : problem == null ? "problem" : reference == null ? referenceField : null;
            if (missing != null) {
                skipped.add(where + "missing or non-text field \"" + missing + "\", skipped");
                continue;
            }
            if (references.containsKey(id)) {
                skipped.add(where + "duplicate id \"" + id + "\", skipped");
                continue;
            }
            references.put(id, reference);
            prompts.add(new Prompt(id, problem, referenceIsAnswer ? reference : null));
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(name + " dataset " + file + ": no valid record ("
                    + lines.size() + " lines, " + skipped.size() + " skipped)");
        }
        return new DatasetTask(name, file, prompts, references, skipped, verifier);
    }

    /** The file's sha256, lower-case hex (what every node of a run must read the same of). */
    public static String sha256(Path file) {
        try (java.io.InputStream in = Files.newInputStream(file)) {
            java.security.MessageDigest md = java.security.MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return java.util.HexFormat.of().formatHex(md.digest());
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("dataset " + file + ": file not found");
        } catch (IOException e) {
            throw new IllegalArgumentException("dataset " + file + ": cannot read: " + oneLine(e.getMessage()));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A string or number field as text; null if absent, null, or an object or array. */
    private static String text(JsonObject obj, String field) {
        JsonElement e = obj.get(field);
        return e != null && e.isJsonPrimitive() ? e.getAsString() : null;
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ');
    }

    @Override
    public String name() {
        return name;
    }

    public Path file() {
        return file;
    }

    @Override
    public OptionalInt size() {
        return OptionalInt.of(prompts.size());
    }

    /** The record at {@code index} in file order; the seed is ignored (see {@link Task}). */
    @Override
    public Prompt prompt(long seed, long index) {
        if (index < 0 || index >= prompts.size()) {
            throw new IndexOutOfBoundsException(name + " dataset " + file + " has " + prompts.size()
                    + " prompts, asked for index " + index);
        }
        return prompts.get((int) index);
    }

    /** All prompts in file order. */
    public List<Prompt> prompts() {
        return prompts;
    }

    /** One warning per skipped line: "FILE:LINE: why, skipped". */
    public List<String> skipped() {
        return skipped;
    }

    public int skippedCount() {
        return skipped.size();
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        String reference = referenceById.get(prompt.id());
        if (reference == null) {
            return Verdict.wrong("unknown prompt id " + prompt.id() + " for dataset " + file.getFileName());
        }
        return verifier.verify(prompt, reference, completion);
    }

    /**
     * The same records with a completion budget of their own ({@link Task#maxNewTokens}), as a run
     * that trains on them fixes it.
     *
     * @throws IllegalArgumentException "max-new-tokens: ..." below 1
     */
    public DatasetTask withMaxNewTokens(int tokens) {
        if (tokens < 1) {
            throw new IllegalArgumentException("max-new-tokens: must be >= 1, got " + tokens);
        }
        return new DatasetTask(name, file, prompts, referenceById, skipped, verifier, tokens);
    }

    @Override
    public OptionalInt maxNewTokens() {
        return maxNewTokens > 0 ? OptionalInt.of(maxNewTokens) : OptionalInt.empty();
    }

    @Override
    public Optional<String> solution(Prompt prompt) {
        return Optional.empty();
    }
}
