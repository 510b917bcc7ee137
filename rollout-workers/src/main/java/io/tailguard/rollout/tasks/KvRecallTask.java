package io.tailguard.rollout.tasks;

import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code kv-recall}: many "key=value" lines, then a query "?key="; the completion is the value and a
 * newline.
 *
 * <pre>
 * kv-recall
 * dkpa=381
 * mbco=027
 * ...
 * ?mbco=            completion: "027\n"
 * </pre>
 *
 * Keys are distinct labels over 16 letters, values three digits, so the model only copies three
 * characters from the line whose key matches; the queried line sits in the first three quarters of
 * the body.
 */
final class KvRecallTask extends BuiltinTask {

    static final String NAME = "kv-recall";
    private static final String KEY_ALPHABET = "abcdefghijklmnop";
    private static final Pattern QUERY = Pattern.compile("\n\\?([a-p]+)=$");

    KvRecallTask(int contextTokens) {
        super(NAME, contextTokens);
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        String header = NAME + "\n";
        int keyLen = labelLength(KEY_ALPHABET, contextTokens / 8);
        int lineLen = keyLen + 5;                                // key '=' ddd '\n'
        int n = bodyLines(header.length() + keyLen + 2, lineLen, 4);  // query: '?' key '='
        List<String> keys = distinctLabels(rng, KEY_ALPHABET, keyLen, n);
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(header);
        String[] values = new String[n];
        for (int i = 0; i < n; i++) {
            values[i] = String.format("%03d", rng.nextInt(1000));
            sb.append(keys.get(i)).append('=').append(values[i]).append('\n');
        }
        int q = rng.nextInt(Math.max(1, (int) (n * FAR_FRACTION)));
        sb.append('?').append(keys.get(q)).append('=');
        return new Prompt(id, sb.toString(), values[q]);
    }

    /**
     * The header and the first half of a body of pairs, then query lines "?key=value" for keys drawn
     * uniformly from that half, up to the context length: a prompt's query and its completion, many
     * times over, at every distance. Query lines are read as well as written, so later ones may look
     * up a key that an earlier query repeated.
     */
    @Override
    public Optional<String> practice(long seed, long index) {
        SplittableRandom rng = rng(NAME + "/practice", seed, index);
        String header = NAME + "\n";
        int keyLen = labelLength(KEY_ALPHABET, contextTokens / 8);
        int lineLen = keyLen + 5;
        int pairs = Math.max(2, bodyLines(header.length() + keyLen + 2, lineLen, 4) / 2);
        List<String> keys = distinctLabels(rng, KEY_ALPHABET, keyLen, pairs);
        String[] values = new String[pairs];
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(header);
        for (int i = 0; i < pairs; i++) {
            values[i] = String.format("%03d", rng.nextInt(1000));
            sb.append(keys.get(i)).append('=').append(values[i]).append('\n');
        }
        while (sb.length() + lineLen + 1 <= contextTokens) {
            int q = rng.nextInt(pairs);
            sb.append('?').append(keys.get(q)).append('=').append(values[q]).append('\n');
        }
        return Optional.of(sb.toString());
    }

    @Override
    String solve(String promptText) {
        return expectedValue(promptText) + "\n";
    }

    private static String expectedValue(String text) {
        Matcher m = QUERY.matcher(text);
        if (!m.find()) {
            throw new IllegalArgumentException("not a kv-recall prompt: no query line at the end");
        }
        String needle = "\n" + m.group(1) + "=";
        int at = text.indexOf(needle);
        if (at < 0 || at == m.start()) {
            throw new IllegalArgumentException("not a kv-recall prompt: key " + m.group(1) + " is not listed");
        }
        int from = at + needle.length();
        return text.substring(from, text.indexOf('\n', from));
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
