package io.tailguard.rollout.tasks;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.SplittableRandom;

/**
 * What the three generated long-context tasks share: the id scheme, seeding, sizing to a context
 * length and the completion format. Each prompt is a header line naming the task, a long body of
 * short fixed-width lines, and a final query line; the completion is a few short lines and ends at
 * a terminator (a newline, or a final "=..." line), after which anything is ignored.
 *
 * <p>All text uses only '\n' and printable ASCII so that the built-in character tokenizer (one
 * token per character) covers it, and {@code contextTokens} characters are {@code contextTokens}
 * tokens.
 */
abstract class BuiltinTask implements Task {

    /** Smallest context a task accepts: below this there is no "far back" to test. */
    static final int MIN_CONTEXT = 64;

    /**
     * The facts a query needs are drawn from the first FAR_FRACTION of the body, so they sit at
     * least a quarter of the context back from the query, where a local or sparse window loses them.
     */
    static final double FAR_FRACTION = 0.75;

    final String name;
    final int contextTokens;

    BuiltinTask(String name, int contextTokens) {
        if (contextTokens < MIN_CONTEXT) {
            throw new IllegalArgumentException(
                    name + ": context must be at least " + MIN_CONTEXT + " tokens, got " + contextTokens);
        }
        this.name = name;
        this.contextTokens = contextTokens;
    }

    @Override
    public final String name() {
        return name;
    }

    public final int contextTokens() {
        return contextTokens;
    }

    @Override
    public final OptionalInt size() {
        return OptionalInt.empty();
    }

    @Override
    public final Prompt prompt(long seed, long index) {
        if (index < 0) {
            throw new IllegalArgumentException(name + ": prompt index must be >= 0, got " + index);
        }
        String id = name + "/c" + contextTokens + "/s" + seed + "/i" + index;
        return generate(id, rng(name, seed, index));
    }

    @Override
    public final Optional<String> solution(Prompt prompt) {
        return Optional.of(solve(prompt.text()));
    }

    abstract Prompt generate(String id, SplittableRandom rng);

    /** The worked completion for a prompt text of this task (recomputed from the text itself). */
    abstract String solve(String promptText);

    /**
     * A generator per (task, seed, index): the three are mixed with a 64-bit finaliser so that
     * neighbouring seeds and indices give unrelated streams, and each prompt can be regenerated alone.
     */
    static SplittableRandom rng(String name, long seed, long index) {
        long h = mix64(name.hashCode() * 0x9E3779B97F4A7C15L);
        h = mix64(h ^ seed);
        h = mix64(h + 0xBF58476D1CE4E5B9L * index + 1);
        return new SplittableRandom(h);
    }

    private static long mix64(long z) {  // MurmurHash3 / SplitMix64 finaliser
        z = (z ^ (z >>> 33)) * 0xFF51AFD7ED558CCDL;
        z = (z ^ (z >>> 33)) * 0xC4CEB9FE1A85EC53L;
        return z ^ (z >>> 33);
    }

    /** Number of body lines of {@code lineLength} chars that fit around a header and query. */
    final int bodyLines(int fixedChars, int lineLength, int minLines) {
        int n = (contextTokens - fixedChars) / lineLength;
        if (n < minLines) {
            throw new IllegalArgumentException(name + ": context " + contextTokens + " is too short for "
                    + minLines + " lines");
        }
        return n;
    }

    /** Shortest label length over {@code alphabet} that gives at least {@code 4 * count} labels. */
    static int labelLength(String alphabet, int count) {
        int len = 1;
        double labels = alphabet.length();
        while (labels < 4.0 * count) {
            len++;
            labels *= alphabet.length();
        }
        return Math.max(2, len);
    }

    /** {@code count} distinct random labels of length {@code len} over {@code alphabet}. */
    static List<String> distinctLabels(SplittableRandom rng, String alphabet, int len, int count) {
        java.util.LinkedHashSet<String> out = new java.util.LinkedHashSet<>();
        char[] buf = new char[len];
        while (out.size() < count) {
            for (int i = 0; i < len; i++) {
                buf[i] = alphabet.charAt(rng.nextInt(alphabet.length()));
            }
            out.add(new String(buf));
        }
        return new ArrayList<>(out);
    }

    /** Lines of {@code completion}, split at '\n'; a last line without a newline still counts. */
    static List<String> lines(String completion) {
        return List.of(completion.split("\n", -1));
    }

    /** A chain-of-thought completion: the step lines before the first "=" line, and its answer. */
    record Chain(List<String> steps, String answer) { }

    /**
     * Reads steps up to the first line that starts with "=" (the terminator) and ignores everything
     * after it; blank lines and surrounding spaces are tolerated. The answer is null if there is no
     * "=" line.
     */
    static Chain parseChain(String completion) {
        List<String> steps = new ArrayList<>();
        for (String line : lines(completion)) {
            String l = line.strip();
            if (l.startsWith("=")) {
                return new Chain(steps, l.substring(1).strip());
            }
            if (!l.isEmpty()) {
                steps.add(l);
            }
        }
        return new Chain(steps, null);
    }

    /** Scores a chain: the answer first (the most telling reason), then every step in order. */
    static Verdict checkChain(Chain got, List<String> steps, String answer, String stepNoun) {
        if (got.answer() == null || got.answer().isEmpty()) {
            return Verdict.wrong("no answer found");
        }
        if (!got.answer().equals(answer)) {
            return Verdict.wrong("wrong answer: got " + quote(got.answer()) + ", expected " + answer);
        }
        if (got.steps().size() != steps.size()) {
            return Verdict.wrong("wrong chain: " + got.steps().size() + " " + stepNoun + "s, expected " + steps.size());
        }
        for (int i = 0; i < steps.size(); i++) {
            if (!got.steps().get(i).equals(steps.get(i))) {
                return Verdict.wrong("wrong chain: " + stepNoun + " " + (i + 1) + " got " + quote(got.steps().get(i))
                        + ", expected " + steps.get(i));
            }
        }
        return Verdict.correct();
    }

    /** Shortens model output quoted in a reason, so reasons stay one short line. */
    static String quote(String s) {
        String t = s.replace("\n", "\\n");
        return t.length() <= 24 ? t : t.substring(0, 21) + "...";
    }

    /** True iff every character is '\n' or printable ASCII (the character tokenizer's alphabet). */
    static boolean isTokenizerText(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\n' && (c < 32 || c > 126)) {
                return false;
            }
        }
        return true;
    }
}
