package io.tailguard.rollout.tasks;

import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * {@code copy}: the longest generation per prompt token. The prompt is a stream of letters and
 * digits with one span in brackets; the completion writes the span again, then "]".
 *
 * <pre>
 * copy
 * Qx7hPa
 * [k3LmZ0q...Rt9]
 * bW2ceY
 * [                                  completion: "k3LmZ0q...Rt9]"
 * </pre>
 *
 * Every output token attends back to the token it copies, as far back as the span is long, so the
 * completion's later tokens read hundreds to thousands of positions back and a sparse kernel has to
 * find the right page at each of them. Small transformers learn it as induction (find where the last
 * tokens written occur, copy what follows): the stream is drawn so that no {@link #order}-gram of
 * symbols occurs twice in a prompt, so the last {@code order} tokens always point at one place, and
 * from an alphabet just large enough for that ({@link #alphabetSize}), so that shorter matches are
 * ambiguous at every length: a model that learns the task on short prompts has learnt the match that
 * still holds on long ones.
 *
 * <p>Knobs: the context ({@code contextTokens}, the prompt's length) and the steps: the span is
 * {@code steps} chunks of {@value #CHUNK} symbols (0: {@value #DEFAULT_STEPS}, or three quarters of what the
 * prompt holds where that is less), at a random place in the stream. Reward: exact (1 when the completion is the span and "]", nothing else but
 * whitespace after it) or graded: the share of chunks right in their place, over the larger of
 * {@code steps} and the chunks written, so that writing more never pays.
 */
final class CopyTask extends BuiltinTask {

    static final String NAME = "copy";
    static final String SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    /** Symbols per step of the span (the unit of the graded reward). */
    static final int CHUNK = 8;
    private static final String HEADER = NAME + "\n";
    /**
     * The default span: {@value #DEFAULT_STEPS} chunks (128 symbols), or three quarters of the stream
     * where that is less. The rest of the stream, split at random before and after the span, moves it
     * from prompt to prompt, so that the distance from a written token back to the one it copies
     * changes and only the content says where to look (a span as long as the stream would always sit
     * at the same distance, which a model learns as a fixed offset that fails at any other). Longer
     * completions are the steps knob.
     */
    static final int DEFAULT_STEPS = 16;
    static final int DEFAULT_SHARE_NUM = 3;
    static final int DEFAULT_SHARE_DEN = 4;
    /**
     * The span opens with a newline and a bracket, and the prompt ends with the same two: the first
     * token written follows that pair as the span's first does, so every token of the completion,
     * the first included, is found by the same two-symbol match (a lone "[" would be a one-symbol
     * match, which a model that matches pairs does not make far back). The span closes with "]" and
     * a newline.
     */
    private static final String OPEN = "\n[";
    private static final String CLOSE = "]\n";
    private static final String QUERY = OPEN;
    /** Header, the span's delimiters and the query. */
    private static final int FIXED = HEADER.length() + OPEN.length() + CLOSE.length() + QUERY.length();

    private final int steps;
    private final boolean graded;
    private final int stream;
    /** No n-gram of this many symbols repeats within a prompt's stream. */
    private final int order;
    /** Symbols a prompt's stream draws from (a random subset of {@link #SYMBOLS} per prompt). */
    private final int alphabet;

    /**
     * @param steps  chunks of the span (0: as many as the context holds)
     * @param graded the share of chunks right as the reward, instead of exact match
     */
    CopyTask(int contextTokens, int steps, boolean graded) {
        super(NAME, contextTokens);
        if (steps < 0) {
            throw new IllegalArgumentException(NAME + ": steps must be >= 0 (0: the default), got " + steps);
        }
        this.stream = contextTokens - FIXED;
        int most = stream / CHUNK;
        this.steps = steps == 0 ? Math.max(1, Math.min(DEFAULT_STEPS, most * DEFAULT_SHARE_NUM / DEFAULT_SHARE_DEN)) : steps;
        if (this.steps > most) {
            throw new IllegalArgumentException(NAME + ": context " + contextTokens + " holds a span of " + most
                    + " steps of " + CHUNK + " symbols, fewer than the " + this.steps + " asked (a longer context or fewer steps)");
        }
        this.graded = graded;
        this.order = orderFor(stream);
        this.alphabet = alphabetSize(stream, order);
    }

    /**
     * The fewest symbols (at least 4, at most all of {@link #SYMBOLS}) whose n-grams of the order are
     * three times as many as the stream is long, so that distinct n-grams are easy to draw while each
     * (n-1)-gram recurs, about length / size^(n-1) times (over 4 at order 2 up to 160 symbols long).
     */
    static int alphabetSize(int length, int order) {
        int m = 4;
        while (m < SYMBOLS.length() && Math.pow(m, order) < 3.0 * length) {
            m++;
        }
        return m;
    }

    /**
     * The shortest n-gram order for which a stream of {@code length} symbols keeps distinct n-grams
     * easily: at most a third of the possible n-grams are used.
     */
    static int orderFor(int length) {
        int n = 1;
        double grams = SYMBOLS.length();
        while (grams < 3.0 * length) {
            n++;
            grams *= SYMBOLS.length();
        }
        return Math.max(2, n);
    }

    int steps() {
        return steps;
    }

    int order() {
        return order;
    }

    int alphabet() {
        return alphabet;
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        String text = text(rng, steps);
        return new Prompt(id, text, span(text));
    }

    /** A prompt text with a span of {@code k} chunks at a random place in a full-length stream. */
    private String text(SplittableRandom rng, int k) {
        String s = distinctStream(rng, symbols(rng, alphabet), stream, order);
        int spanLength = k * CHUNK;
        int before = rng.nextInt(stream - spanLength + 1);
        return HEADER + s.substring(0, before) + OPEN + s.substring(before, before + spanLength) + CLOSE
                + s.substring(before + spanLength) + QUERY;
    }

    /**
     * {@code length} random symbols in which no {@code n}-gram occurs twice: each symbol is drawn
     * among those that do not complete a used n-gram (a draw with none left starts over, which at a
     * third of the n-grams in use is rare).
     */
    static String distinctStream(SplittableRandom rng, String symbols, int length, int n) {
        while (true) {
            StringBuilder sb = new StringBuilder(length);
            Set<String> used = new HashSet<>();
            char[] candidates = new char[symbols.length()];
            boolean stuck = false;
            while (sb.length() < length && !stuck) {
                int c = 0;
                String prefix = sb.length() >= n - 1 ? sb.substring(sb.length() - (n - 1)) : null;
                for (int i = 0; i < symbols.length(); i++) {
                    if (prefix == null || !used.contains(prefix + symbols.charAt(i))) {
                        candidates[c++] = symbols.charAt(i);
                    }
                }
                if (c == 0) {
                    stuck = true;
                    continue;
                }
                sb.append(candidates[rng.nextInt(c)]);
                if (prefix != null) {
                    used.add(sb.substring(sb.length() - n));
                }
            }
            if (!stuck) {
                return sb.toString();
            }
        }
    }

    /** {@code m} distinct symbols of {@link #SYMBOLS}, drawn at random. */
    static String symbols(SplittableRandom rng, int m) {
        char[] all = SYMBOLS.toCharArray();
        for (int i = 0; i < m; i++) {
            int j = i + rng.nextInt(all.length - i);
            char t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        return new String(all, 0, m);
    }

    /**
     * A shorter span (1 to {@code steps} chunks) in a full-length stream, with the span and "]" as the
     * drill: the same skill with completions of every length.
     */
    @Override
    public Optional<Practice> practice(long seed, long index) {
        SplittableRandom rng = rng(NAME + "/practice", seed, index);
        String text = text(rng, 1 + rng.nextInt(steps));
        return Optional.of(new Practice(text, solve(text)));
    }

    /** The span of a prompt text: what lies between its brackets. */
    static String span(String text) {
        int open = text.indexOf('[');
        int close = text.indexOf(']', open + 1);
        if (!text.startsWith(HEADER) || open < 0 || close < 0) {
            throw new IllegalArgumentException("not a copy prompt: no \"[span]\" after the header");
        }
        return text.substring(open + 1, close);
    }

    @Override
    String solve(String promptText) {
        return span(promptText) + "]";
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        String expected = span(prompt.text());
        int close = completion.indexOf(']');
        String got = close < 0 ? completion.strip() : completion.substring(0, close);
        if (close >= 0 && got.equals(expected) && completion.substring(close + 1).isBlank()) {
            return Verdict.correct();
        }
        int chunks = expected.length() / CHUNK;
        int written = (got.length() + CHUNK - 1) / CHUNK;
        int right = 0;
        int firstWrong = -1;
        for (int i = 0; i < chunks; i++) {
            int from = i * CHUNK;
            boolean ok = got.length() >= from + CHUNK && got.regionMatches(from, expected, from, CHUNK);
            if (ok) {
                right++;
            } else if (firstWrong < 0) {
                firstWrong = i;
            }
        }
        String reason;
        if (firstWrong >= 0) {
            int from = firstWrong * CHUNK;
            reason = "wrong step " + (firstWrong + 1) + " of " + chunks + ": got "
                    + (got.length() > from ? quote(got.substring(from, Math.min(got.length(), from + CHUNK))) : "nothing")
                    + ", expected " + expected.substring(from, from + CHUNK);
        } else if (close < 0) {
            reason = "no closing \"]\"";
        } else if (got.length() != expected.length()) {
            reason = "extra symbols: " + got.length() + " written, " + expected.length() + " in the span";
        } else {
            reason = "text after \"]\": " + quote(completion.substring(close + 1));
        }
        if (!graded) {
            return Verdict.wrong(reason);
        }
        // every chunk right but the end wrong (no "]", text after it) counts as one step wrong: 1 is exact match only
        return new Verdict((double) Math.min(right, chunks - 1) / Math.max(chunks, written), reason);
    }
}
