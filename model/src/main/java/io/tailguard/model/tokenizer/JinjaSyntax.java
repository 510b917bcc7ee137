package io.tailguard.model.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Jinja syntax that Jinjava reads differently, made to read as Jinja does, so that templates are
 * used as written. Two rewrites of each expression before Jinjava parses it, and Jinja's
 * {@code lstrip_blocks} for the template (Jinjava strips spaces before any tag, Jinja only where
 * they start the line).
 *
 * <p>Named arguments: Jinjava binds {@code name=} tighter than arithmetic, so
 * {@code namespace(i=messages|length - 1)} would subtract 1 from the named parameter; each named
 * argument's value is parenthesised.
 *
 * <p>Slices: Python's slice syntax. Jinjava parses {@code x[a:b]} only; templates
 * written for Jinja (Qwen3's walks {@code messages[::-1]}) also omit bounds and give a step. Each
 * expression is rewritten before parsing: a subscript holding a top-level colon becomes a call of
 * {@link #slice} on its base, so {@code messages[::-1]} parses as
 * {@code __tg_slice__(messages, none, none, -1)}. String literals and nested brackets are respected;
 * everything else is left as written.
 */
final class JinjaSyntax {
    static final String FUNCTION = "__tg_slice__";

    private JinjaSyntax() {
    }

    /** The expression with its named arguments parenthesised and its slices rewritten. */
    static String expression(String expr) {
        return slices(namedArguments(expr));
    }

    /** Every named argument {@code name=value} of a call as {@code name=(value)}. */
    static String namedArguments(String s) {
        boolean[] quoted = quoted(s);
        StringBuilder out = new StringBuilder();
        // per open bracket: whether it is a call's parentheses, and whether a named value is open in it
        java.util.ArrayDeque<boolean[]> stack = new java.util.ArrayDeque<>();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quoted[i]) {
                out.append(c);
                continue;
            }
            if (c == '(' || c == '[' || c == '{') {
                stack.push(new boolean[] {c == '(' && isSubscript(s, quoted, i), false});
                out.append(c);
            } else if (c == ')' || c == ']' || c == '}') {
                boolean[] top = stack.isEmpty() ? null : stack.pop();
                if (top != null && top[1]) {
                    out.append(')');
                }
                out.append(c);
            } else if (c == ',' && !stack.isEmpty() && stack.peek()[1]) {
                stack.peek()[1] = false;
                out.append("),");
            } else if (c == '=' && !stack.isEmpty() && stack.peek()[0] && !stack.peek()[1] && isNamedEquals(s, i)) {
                stack.peek()[1] = true;
                out.append("=(");
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** A lone '=' right after a name (not ==, !=, <=, >=). */
    private static boolean isNamedEquals(String s, int i) {
        if (i + 1 < s.length() && s.charAt(i + 1) == '=') {
            return false;
        }
        int j = i - 1;
        while (j >= 0 && s.charAt(j) == ' ') {
            j--;
        }
        return j >= 0 && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_');
    }

    /**
     * Jinja's lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag
     * are removed (not before {@code {%+}, and not inside a tag or an expression).
     */
    static String lstripBlocks(String t) {
        StringBuilder out = new StringBuilder(t.length());
        int i = 0;
        int lineStart = 0;
        while (i < t.length()) {
            if (t.startsWith("{%", i) || t.startsWith("{#", i) || t.startsWith("{{", i)) {
                char kind = t.charAt(i + 1);
                if (kind != '{' && !(i + 2 < t.length() && t.charAt(i + 2) == '+')) {
                    int k = out.length();
                    int blank = k;
                    while (blank > 0 && (out.charAt(blank - 1) == ' ' || out.charAt(blank - 1) == '\t')) {
                        blank--;
                    }
                    if (blank == lineStart) {
                        out.setLength(blank);
                    }
                }
                int end = tagEnd(t, i + 2, kind == '{' ? "}}" : kind == '%' ? "%}" : "#}", kind != '#');
                if (kind == '%' && isRaw(t, i, end)) {
                    int close = t.indexOf("endraw", end);
                    int after = close < 0 ? t.length() : t.indexOf("%}", close);
                    end = after < 0 ? t.length() : after + 2;
                }
                out.append(t, i, end);
                i = end;
                lineStart = lastNewline(out);
                continue;
            }
            char c = t.charAt(i++);
            out.append(c);
            if (c == '\n') {
                lineStart = out.length();
            }
        }
        return out.toString();
    }

    private static int lastNewline(StringBuilder out) {
        int n = out.lastIndexOf("\n");
        return n < 0 ? -1 : n + 1;
    }

    private static boolean isRaw(String t, int start, int end) {
        return t.substring(start + 2, Math.max(start + 2, end - 2)).replace("-", "").replace("+", "").strip().equals("raw");
    }

    /**
     * The filter names the template's tags and expressions apply ({@code x | name}), so that an
     * unknown one is refused at load as Jinja refuses it (Jinjava renders it as nothing).
     */
    static java.util.Set<String> filterNames(String t) {
        java.util.Set<String> names = new java.util.TreeSet<>();
        java.util.regex.Pattern filter = java.util.regex.Pattern.compile("(?<!\\|)\\|(?!\\|)\\s*([A-Za-z_][A-Za-z_0-9]*)");
        int i = 0;
        while (i < t.length()) {
            if (t.startsWith("{{", i) || t.startsWith("{%", i)) {
                int end = tagEnd(t, i + 2, t.charAt(i + 1) == '{' ? "}}" : "%}", true);
                String body = t.substring(i + 2, Math.max(i + 2, end - 2));
                boolean[] q = quoted(body);
                StringBuilder plain = new StringBuilder(body.length());
                for (int k = 0; k < body.length(); k++) {
                    plain.append(q[k] ? ' ' : body.charAt(k));
                }
                java.util.regex.Matcher m = filter.matcher(plain);
                while (m.find()) {
                    names.add(m.group(1));
                }
                i = end;
            } else {
                i++;
            }
        }
        return names;
    }

    /** Just past the tag's closing delimiter, skipping string literals inside the tag. */
    private static int tagEnd(String t, int from, String close, boolean strings) {
        char open = 0;
        for (int i = from; i < t.length(); i++) {
            char c = t.charAt(i);
            if (open != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == open) {
                    open = 0;
                }
            } else if (strings && (c == '\'' || c == '"')) {
                open = c;
            } else if (t.startsWith(close, i)) {
                return i + close.length();
            }
        }
        return t.length();
    }

    /** The expression with every slice subscript rewritten (unchanged when it has none). */
    static String slices(String expr) {
        String s = expr;
        for (int guard = 0; guard < 1000; guard++) {
            String next = rewriteFirst(s);
            if (next == null) {
                return s;
            }
            s = next;
        }
        return s;
    }

    /** Rewrites the leftmost slice subscript; null when there is none. */
    private static String rewriteFirst(String s) {
        boolean[] quoted = quoted(s);
        for (int i = 0; i < s.length(); i++) {
            if (quoted[i] || s.charAt(i) != '[' || !isSubscript(s, quoted, i)) {
                continue;
            }
            int close = matching(s, quoted, i);
            if (close < 0) {
                return null;
            }
            List<String> parts = topLevelSplit(s, quoted, i + 1, close);
            if (parts.size() < 2 || parts.size() > 3) {
                continue;
            }
            int start = baseStart(s, quoted, i);
            StringBuilder call = new StringBuilder(FUNCTION).append('(').append(s, start, i);
            for (int k = 0; k < 3; k++) {
                String p = k < parts.size() ? parts.get(k).strip() : "";
                call.append(", ").append(p.isEmpty() ? "none" : p);
            }
            call.append(')');
            return s.substring(0, start) + call + s.substring(close + 1);
        }
        return null;
    }

    /** quoted[i]: character i is inside a string literal (its quotes included). */
    private static boolean[] quoted(String s) {
        boolean[] q = new boolean[s.length()];
        char open = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (open != 0) {
                q[i] = true;
                if (c == '\\' && i + 1 < s.length()) {
                    q[++i] = true;
                } else if (c == open) {
                    open = 0;
                }
            } else if (c == '\'' || c == '"') {
                open = c;
                q[i] = true;
            }
        }
        return q;
    }

    /** A '[' that follows a value (a name, a call, a subscript or a string) rather than opening a list. */
    private static boolean isSubscript(String s, boolean[] quoted, int i) {
        if (i == 0) {
            return false;
        }
        char p = s.charAt(i - 1);
        return Character.isLetterOrDigit(p) || p == '_' || p == ')' || p == ']' || (quoted[i - 1] && (p == '\'' || p == '"'));
    }

    private static int matching(String s, boolean[] quoted, int open) {
        int depth = 0;
        for (int i = open; i < s.length(); i++) {
            if (quoted[i]) {
                continue;
            }
            char c = s.charAt(i);
            if (c == '[' || c == '(' || c == '{') {
                depth++;
            } else if (c == ']' || c == ')' || c == '}') {
                if (--depth == 0) {
                    return c == ']' ? i : -1;
                }
            }
        }
        return -1;
    }

    private static List<String> topLevelSplit(String s, boolean[] quoted, int from, int to) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int last = from;
        for (int i = from; i < to; i++) {
            if (quoted[i]) {
                continue;
            }
            char c = s.charAt(i);
            if (c == '[' || c == '(' || c == '{') {
                depth++;
            } else if (c == ']' || c == ')' || c == '}') {
                depth--;
            } else if (c == ':' && depth == 0) {
                parts.add(s.substring(last, i));
                last = i + 1;
            }
        }
        parts.add(s.substring(last, to));
        return parts;
    }

    /** Where the value subscripted at '[' (position i) begins: names, dots, calls, subscripts, a string. */
    private static int baseStart(String s, boolean[] quoted, int i) {
        int j = i;
        while (j > 0) {
            char c = s.charAt(j - 1);
            if (quoted[j - 1]) {
                while (j > 0 && quoted[j - 1]) {
                    j--;
                }
            } else if (c == ')' || c == ']' || c == '}') {
                j = opening(s, quoted, j - 1);
            } else if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                j--;
            } else {
                break;
            }
        }
        return j;
    }

    private static int opening(String s, boolean[] quoted, int close) {
        int depth = 0;
        for (int i = close; i >= 0; i--) {
            if (quoted[i]) {
                continue;
            }
            char c = s.charAt(i);
            if (c == ']' || c == ')' || c == '}') {
                depth++;
            } else if (c == '[' || c == '(' || c == '{') {
                if (--depth == 0) {
                    return i;
                }
            }
        }
        return 0;
    }

    /** Python's {@code seq[start:stop:step]} of a list or a string; null bounds are omitted ones. */
    public static Object slice(Object base, Object start, Object stop, Object step) {
        if (base == null) {
            return null;
        }
        List<?> items;
        String text = null;
        if (base instanceof CharSequence cs) {
            text = cs.toString();
            items = null;
        } else if (base instanceof List<?> l) {
            items = l;
        } else if (base instanceof Iterable<?> it) {
            List<Object> copy = new ArrayList<>();
            it.forEach(copy::add);
            items = copy;
        } else if (base instanceof Object[] arr) {
            items = List.of(arr);
        } else {
            throw new IllegalArgumentException("cannot slice a " + base.getClass().getSimpleName());
        }
        int n = text != null ? text.length() : items.size();
        long st = step == null ? 1 : ((Number) step).longValue();
        if (st == 0) {
            throw new IllegalArgumentException("slice step cannot be zero");
        }
        long lo = bound(start, n, st > 0 ? 0 : n - 1, st);
        long hi = bound(stop, n, st > 0 ? n : -1, st);
        StringBuilder sb = text != null ? new StringBuilder() : null;
        List<Object> out = text != null ? null : new ArrayList<>();
        for (long i = lo; st > 0 ? i < hi : i > hi; i += st) {
            if (sb != null) {
                sb.append(text.charAt((int) i));
            } else {
                out.add(items.get((int) i));
            }
        }
        return sb != null ? sb.toString() : out;
    }

    /** slice.indices: a bound clamped the way CPython clamps it for this step's direction. */
    private static long bound(Object v, int n, long omitted, long step) {
        if (v == null) {
            return omitted;
        }
        long x = ((Number) v).longValue();
        if (x < 0) {
            x += n;
            if (x < 0) {
                x = step < 0 ? -1 : 0;
            }
        } else if (x >= n) {
            x = step < 0 ? n - 1 : n;
        }
        return x;
    }
}
