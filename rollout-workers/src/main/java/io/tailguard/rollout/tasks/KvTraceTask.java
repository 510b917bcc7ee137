package io.tailguard.rollout.tasks;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code kv-trace}: a long generation that attends far back at every step. The prompt is a table of
 * key-value lines, then a query line listing {@code steps} distinct keys of the table; the completion
 * writes, for each queried key in order, its table line again ("key" + value), one per line.
 *
 * <pre>
 * kv-trace
 * qW381
 * Bx027
 * ...
 * ?Bx,qW,...          completion: "Bx027\nqW381\n..."
 * </pre>
 *
 * Each completion line is two lookups that small transformers learn as induction: the next key
 * follows the previous line's key in the query line, and the value follows the key in the table,
 * hundreds to thousands of tokens back. The completion is {@code steps} × (key + 3 digits + newline)
 * tokens of the character tokenizer, so prompt length ({@code contextTokens}) and generation length
 * ({@code steps}) are separate knobs. Keys are distinct labels of two or more letters, so a key never
 * reads as a prefix of another.
 *
 * <p>Reward: exact match (1 only when every line is right and nothing follows) or, graded, the share
 * of lines right in their place, over the larger of {@code steps} and the lines written, so that
 * writing more lines than asked never pays.
 */
final class KvTraceTask extends BuiltinTask {

    static final String NAME = "kv-trace";
    static final String KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static final int VALUE_DIGITS = 3;
    /** The steps of a prompt of {@code contextTokens} when none are given: a sixteenth of the context. */
    static final int DEFAULT_STEPS_DIVISOR = 16;
    private static final String HEADER = NAME + "\n";
    private static final Pattern QUERY = Pattern.compile("\n\\?([a-zA-Z]+(?:,[a-zA-Z]+)*)\n$");
    private static final Pattern ROW = Pattern.compile("^([a-zA-Z]+)(\\d{" + VALUE_DIGITS + "})$", Pattern.MULTILINE);

    private final int steps;
    private final boolean graded;
    private final int keyLength;
    private final int rows;

    /**
     * @param steps  queried keys, so completion lines (0: {@code contextTokens / 16})
     * @param graded the share of lines right as the reward, instead of exact match
     */
    KvTraceTask(int contextTokens, int steps, boolean graded) {
        super(NAME, contextTokens);
        if (steps < 0) {
            throw new IllegalArgumentException(NAME + ": steps must be >= 0 (0: the default), got " + steps);
        }
        this.steps = steps == 0 ? Math.max(1, contextTokens / DEFAULT_STEPS_DIVISOR) : steps;
        this.graded = graded;
        int len = 2;
        int n = rowsFor(len);
        while (Math.pow(KEY_ALPHABET.length(), len) < 4.0 * Math.max(n, 1)) {
            len++;
            n = rowsFor(len);
        }
        this.keyLength = len;
        this.rows = n;
        if (rows < this.steps) {
            throw new IllegalArgumentException(NAME + ": context " + contextTokens + " holds " + Math.max(rows, 0)
                    + " table lines, fewer than the " + this.steps + " steps asked (a longer context or fewer steps)");
        }
    }

    /** Table lines of keys of length {@code len} that fit beside the header and the query line. */
    private int rowsFor(int len) {
        int query = 1 + steps * (len + 1);           // "?" + keys joined by ',' + '\n'
        return (contextTokens - HEADER.length() - query) / rowLength(len);
    }

    private static int rowLength(int keyLength) {
        return keyLength + VALUE_DIGITS + 1;
    }

    int steps() {
        return steps;
    }

    boolean graded() {
        return graded;
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        Table t = table(rng, rows, steps);
        return new Prompt(id, t.context(), t.trace());
    }

    /** A table of {@code n} rows and a query of {@code k} distinct keys of it, as a prompt's text. */
    private record Table(String context, String trace) { }

    private Table table(SplittableRandom rng, int n, int k) {
        List<String> keys = distinctLabels(rng, KEY_ALPHABET, keyLength, n);
        String[] values = new String[n];
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(HEADER);
        for (int i = 0; i < n; i++) {
            values[i] = String.format("%0" + VALUE_DIGITS + "d", rng.nextInt((int) Math.pow(10, VALUE_DIGITS)));
            sb.append(keys.get(i)).append(values[i]).append('\n');
        }
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            int j = rng.nextInt(i + 1);          // inside-out Fisher-Yates
            order[i] = order[j];
            order[j] = i;
        }
        StringBuilder trace = new StringBuilder(k * rowLength(keyLength));
        sb.append('?');
        for (int q = 0; q < k; q++) {
            int row = order[q];
            sb.append(q == 0 ? "" : ",").append(keys.get(row));
            trace.append(keys.get(row)).append(values[row]).append('\n');
        }
        sb.append('\n');
        return new Table(sb.toString(), trace.toString());
    }

    /**
     * A prompt of fewer rows and steps (at least 2 rows and 1 step, at most the task's) with its trace
     * as the drill: the same skill at every size, so that short cases teach the two lookups before
     * long ones have to be right for many lines.
     */
    @Override
    public Optional<Practice> practice(long seed, long index) {
        SplittableRandom rng = rng(NAME + "/practice", seed, index);
        int k = 1 + rng.nextInt(steps);
        int n = k + 1 + rng.nextInt(Math.max(1, rows - k));
        Table t = table(rng, Math.min(n, rows), k);
        return Optional.of(new Practice(t.context(), t.trace()));
    }

    /** The lines a correct completion writes, recomputed from the prompt text. */
    static List<String> expectedLines(String text) {
        Matcher q = QUERY.matcher(text);
        if (!q.find()) {
            throw new IllegalArgumentException("not a kv-trace prompt: no query line \"?key,key,...\" at the end");
        }
        Map<String, String> table = new HashMap<>();
        Matcher m = ROW.matcher(text.substring(0, q.start() + 1));
        while (m.find()) {
            table.put(m.group(1), m.group(2));
        }
        List<String> out = new ArrayList<>();
        for (String key : q.group(1).split(",")) {
            String v = table.get(key);
            if (v == null) {
                throw new IllegalArgumentException("not a kv-trace prompt: key " + key + " is not in the table");
            }
            out.add(key + v);
        }
        return out;
    }

    @Override
    String solve(String promptText) {
        return String.join("\n", expectedLines(promptText)) + "\n";
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        List<String> expected = expectedLines(prompt.text());
        List<String> got = new ArrayList<>();
        for (String line : lines(completion)) {
            if (!line.strip().isEmpty()) {
                got.add(line.strip());
            }
        }
        if (got.isEmpty()) {
            return Verdict.wrong("no answer found");
        }
        int right = 0;
        int firstWrong = -1;
        for (int i = 0; i < expected.size(); i++) {
            if (i < got.size() && got.get(i).equals(expected.get(i))) {
                right++;
            } else if (firstWrong < 0) {
                firstWrong = i;
            }
        }
        if (right == expected.size() && got.size() == expected.size()) {
            return Verdict.correct();
        }
        String reason = firstWrong >= 0
                ? "wrong line " + (firstWrong + 1) + " of " + expected.size() + ": got "
                        + (firstWrong < got.size() ? quote(got.get(firstWrong)) : "nothing") + ", expected " + expected.get(firstWrong)
                : "extra lines: " + got.size() + " written, " + expected.size() + " asked";
        if (!graded) {
            return Verdict.wrong(reason);
        }
        return new Verdict((double) right / Math.max(expected.size(), got.size()), reason);
    }
}
