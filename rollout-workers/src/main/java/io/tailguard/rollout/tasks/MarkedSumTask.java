package io.tailguard.rollout.tasks;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code marked-sum}: a long list of two-digit numbers, a few of them marked with '*', then "sum?";
 * the completion writes, for each marked number in list order, "+NUMBER=PARTIAL" (the running sum
 * mod 100, two digits), then "=TOTAL".
 *
 * <pre>
 * marked-sum
 *  41
 * *17
 *  08
 * *92
 * ...
 * sum?              completion: "+17=17\n+92=09\n=09\n"
 * </pre>
 *
 * Sums are taken mod 100 and there are only 2 to 4 marks, so the completion stays a few short lines;
 * all marks sit in the first three quarters of the body.
 */
final class MarkedSumTask extends BuiltinTask {

    static final String NAME = "marked-sum";
    static final int MIN_MARKS = 2;
    static final int MAX_MARKS = 4;
    private static final String QUERY = "sum?\n";
    private static final Pattern MARKED = Pattern.compile("^\\*(\\d\\d)$", Pattern.MULTILINE);

    MarkedSumTask(int contextTokens) {
        super(NAME, contextTokens);
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        String header = NAME + "\n";
        int n = bodyLines(header.length() + QUERY.length(), 4, 2 * MAX_MARKS);  // mark dd '\n'
        int marks = MIN_MARKS + rng.nextInt(MAX_MARKS - MIN_MARKS + 1);
        int far = Math.max(marks, (int) (n * FAR_FRACTION));
        boolean[] marked = new boolean[n];
        for (int placed = 0; placed < marks; ) {
            int i = rng.nextInt(far);
            if (!marked[i]) {
                marked[i] = true;
                placed++;
            }
        }
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(header);
        int total = 0;
        for (int i = 0; i < n; i++) {
            int v = rng.nextInt(100);
            if (marked[i]) {
                total = (total + v) % 100;
            }
            sb.append(marked[i] ? '*' : ' ').append(two(v)).append('\n');
        }
        sb.append(QUERY);
        return new Prompt(id, sb.toString(), two(total));
    }

    private static String two(int v) {
        return v < 10 ? "0" + v : Integer.toString(v);
    }

    /** The lines a correct completion writes before its "=" line, recomputed from the prompt text. */
    private static List<String> expectedSteps(String text) {
        if (!text.endsWith("\n" + QUERY)) {
            throw new IllegalArgumentException("not a marked-sum prompt: no \"sum?\" line at the end");
        }
        List<String> steps = new ArrayList<>();
        int sum = 0;
        Matcher m = MARKED.matcher(text);
        while (m.find()) {
            int v = Integer.parseInt(m.group(1));
            sum = (sum + v) % 100;
            steps.add("+" + m.group(1) + "=" + two(sum));
        }
        return steps;
    }

    private static String totalOf(List<String> steps) {
        String last = steps.isEmpty() ? "=00" : steps.get(steps.size() - 1);
        return last.substring(last.indexOf('=') + 1);
    }

    @Override
    String solve(String promptText) {
        List<String> steps = expectedSteps(promptText);
        return String.join("\n", steps) + "\n=" + totalOf(steps) + "\n";
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        List<String> expected = expectedSteps(prompt.text());
        return checkChain(parseChain(completion), expected, totalOf(expected), "step");
    }
}
