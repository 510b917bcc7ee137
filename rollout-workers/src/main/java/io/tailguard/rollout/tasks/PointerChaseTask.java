package io.tailguard.rollout.tasks;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code pointer-chase}: a shuffled list of links "a>b", then "go START K"; the completion copies the
 * K links it follows from START, one per line (the chain of thought), then "=END".
 *
 * <pre>
 * pointer-chase
 * gkb>ocl
 * ocl>afe
 * ...
 * go gkb 2          completion: "gkb>ocl\nocl>afe\n=afe\n"
 * </pre>
 *
 * The links form one cycle through every node, so each node has exactly one outgoing link and K hops
 * never revisit a node. K is 2 to 4; the start link sits in the first three quarters of the body and
 * later hops anywhere. Every hop is checked, not only the end node, so a lucky guess scores 0.
 */
final class PointerChaseTask extends BuiltinTask {

    static final String NAME = "pointer-chase";
    static final int MIN_HOPS = 2;
    static final int MAX_HOPS = 4;
    private static final String NODE_ALPHABET = "abcdefghijklmnop";
    private static final Pattern LINK = Pattern.compile("^([a-p]+)>([a-p]+)$", Pattern.MULTILINE);
    private static final Pattern QUERY = Pattern.compile("\ngo ([a-p]+) (\\d)\n$");

    PointerChaseTask(int contextTokens) {
        super(NAME, contextTokens);
    }

    @Override
    Prompt generate(String id, SplittableRandom rng) {
        String header = NAME + "\n";
        int len = labelLength(NODE_ALPHABET, contextTokens / 6);
        int lineLen = 2 * len + 2;                                    // a '>' b '\n'
        int n = bodyLines(header.length() + len + 6, lineLen, MAX_HOPS + 2);  // "go " a " k\n"
        List<String> nodes = distinctLabels(rng, NODE_ALPHABET, len, n);
        // Line i of the body links nodes[order[i]] to its successor on the cycle.
        int[] order = shuffled(rng, n);
        int startLine = rng.nextInt(Math.max(1, (int) (n * FAR_FRACTION)));
        String start = nodes.get(order[startLine]);
        int hops = MIN_HOPS + rng.nextInt(MAX_HOPS - MIN_HOPS + 1);
        StringBuilder sb = new StringBuilder(contextTokens + 16).append(header);
        for (int i = 0; i < n; i++) {
            int from = order[i];
            sb.append(nodes.get(from)).append('>').append(nodes.get((from + 1) % n)).append('\n');
        }
        sb.append("go ").append(start).append(' ').append(hops).append('\n');
        String end = nodes.get((order[startLine] + hops) % n);
        return new Prompt(id, sb.toString(), end);
    }

    private static int[] shuffled(SplittableRandom rng, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return a;
    }

    /** The hop lines a correct completion writes, recomputed from the prompt text. */
    private static List<String> expectedHops(String text) {
        Matcher q = QUERY.matcher(text);
        if (!q.find()) {
            throw new IllegalArgumentException("not a pointer-chase prompt: no \"go\" line at the end");
        }
        Map<String, String> next = new HashMap<>();
        Matcher m = LINK.matcher(text);
        while (m.find()) {
            next.put(m.group(1), m.group(2));
        }
        List<String> hops = new ArrayList<>();
        String at = q.group(1);
        for (int k = Integer.parseInt(q.group(2)); k > 0; k--) {
            String to = next.get(at);
            if (to == null) {
                throw new IllegalArgumentException("not a pointer-chase prompt: node " + at + " has no link");
            }
            hops.add(at + ">" + to);
            at = to;
        }
        return hops;
    }

    private static String endOf(List<String> hops) {
        String last = hops.get(hops.size() - 1);
        return last.substring(last.indexOf('>') + 1);
    }

    @Override
    String solve(String promptText) {
        List<String> hops = expectedHops(promptText);
        return String.join("\n", hops) + "\n=" + endOf(hops) + "\n";
    }

    @Override
    public Verdict verify(Prompt prompt, String completion) {
        List<String> expected = expectedHops(prompt.text());
        return checkChain(parseChain(completion), expected, endOf(expected), "hop");
    }
}
