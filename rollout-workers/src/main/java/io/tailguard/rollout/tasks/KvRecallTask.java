package io.tailguard.rollout.tasks;

import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code kv-recall}: many lines of a key followed by its value, then a query "?key"; the completion
 * is the value and a newline.
 *
 * <pre>
 * kv-recall
 * q381
 * B027
 * ...
 * ?B                completion: "027\n"
 * </pre>
 *
 * Values are three digits. Keys are distinct single letters (a-z, A-Z) while the body has at most 52
 * lines, which holds up to a context of 272 tokens, and distinct labels of two or more letters
 * beyond. A single-letter key makes the lookup the simplest content match there is (find the line
 * that starts with this token, copy what follows), which a small model can learn from scratch in
 * minutes; the value still sits at a random position far back, where a sparse window loses it. The
 * queried line is in the first three quarters of the body.
 */
final class KvRecallTask extends BuiltinTask {

    static final String NAME = "kv-recall";
    static final String KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static final int VALUE_DIGITS = 3;
    private static final String HEADER = NAME + "\n";
    private static final Pattern QUERY = Pattern.compile("\n\\?([a-zA-Z]+)$");

    private final int keyLength;
    private final int lines;

    KvRecallTask(int contextTokens) {
        super(NAME, contextTokens);
        int single = (contextTokens - fixedChars(1)) / lineLength(1);
        this.keyLength = single <= KEY_ALPHABET.length() ? 1 : labelLength(KEY_ALPHABET, contextTokens / 8);
        this.lines = bodyLines(fixedChars(keyLength), lineLength(keyLength), 4);
    }

    /** Header and query line ("?" + key). */
    private static int fixedChars(int keyLength) {
        return HEADER.length() + 1 + keyLength;
    }

    /** key, value, newline. */
    private static int lineLength(int keyLength) {
        return keyLength + VALUE_DIGITS + 1;
    }

    private static String value(SplittableRandom rng) {
        return String.format("%0" + VALUE_DIGITS + "d", rng.nextInt((int) Math.pow(10, VALUE_DIGITS)));
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        List<String> keys = distinctLabels(rng, KEY_ALPHABET, keyLength, lines);
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(HEADER);
        String[] values = new String[lines];
        for (int i = 0; i < lines; i++) {
            values[i] = value(rng);
            sb.append(keys.get(i)).append(values[i]).append('\n');
        }
        int q = rng.nextInt(Math.max(1, (int) (lines * FAR_FRACTION)));
        sb.append('?').append(keys.get(q));
        return new Prompt(id, sb.toString(), values[q]);
    }

    /**
     * The header and n lines of pairs as the context, then distinct keys of those pairs queried in
     * random order with their values ("?key" + value), as many as fit the context, as the drill: a
     * prompt's query and its completion, several times over, at every distance. n is between 2 and
     * as many as leave room for two queries. No key is asked twice, so that, as in a prompt, the
     * answer can only come from the pair's own line: a drill that repeats questions can be learnt by
     * copying an earlier answer, which never helps on a prompt. Few pairs make the lookup easy to
     * discover; many make it sharp, and make a value's digits recur in other values, so that only
     * the key (not the previous digit) tells which line to continue.
     */
    @Override
    public Optional<Practice> practice(long seed, long index) {
        SplittableRandom rng = rng(NAME + "/practice", seed, index);
        int queryLine = 1 + lineLength(keyLength);
        int room = (contextTokens - HEADER.length() - 2 * queryLine) / lineLength(keyLength);
        int most = Math.max(2, Math.min(lines, room));
        int pairs = 2 + rng.nextInt(most - 1);
        List<String> keys = distinctLabels(rng, KEY_ALPHABET, keyLength, pairs);
        String[] values = new String[pairs];
        StringBuilder context = new StringBuilder(contextTokens).append(HEADER);
        for (int i = 0; i < pairs; i++) {
            values[i] = value(rng);
            context.append(keys.get(i)).append(values[i]).append('\n');
        }
        int[] order = new int[pairs];
        for (int i = 0; i < pairs; i++) {
            int j = rng.nextInt(i + 1);          // inside-out Fisher-Yates
            order[i] = order[j];
            order[j] = i;
        }
        StringBuilder drill = new StringBuilder(contextTokens);
        for (int q : order) {
            if (context.length() + drill.length() + queryLine > contextTokens && drill.length() > 0) {
                break;
            }
            drill.append('?').append(keys.get(q)).append(values[q]).append('\n');
        }
        return Optional.of(new Practice(context.toString(), drill.toString()));
    }

    @Override
    String solve(String promptText) {
        return expectedValue(promptText) + "\n";
    }

    private static String expectedValue(String text) {
        Matcher m = QUERY.matcher(text);
        if (!m.find()) {
            throw new IllegalArgumentException("not a kv-recall prompt: no query line \"?key\" at the end");
        }
        Matcher line = Pattern.compile("\n" + m.group(1) + "(\\d+)\n").matcher(text);
        if (!line.find()) {
            throw new IllegalArgumentException("not a kv-recall prompt: key " + m.group(1) + " is not listed");
        }
        return line.group(1);
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        String expected = expectedValue(prompt.text());
        String got = lines(completion).get(0).strip();   // stop at the first newline
        if (got.isEmpty()) {
            return Verdict.wrong("no answer found");
        }
        return got.equals(expected) ? Verdict.correct()
                : Verdict.wrong("wrong answer: got " + quote(got) + ", expected " + expected);
    }
}
