package io.tailguard.rollout.tasks;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finding and comparing final answers of math completions.
 *
 * <p>Extraction takes the content of the last {@code \boxed{...}} (braces may nest); without one it
 * takes the last number in the text. Only that one answer is compared, so a completion that mentions
 * the right number on the way ("it is not 12, it is \boxed{13}") is still wrong.
 *
 * <p>Comparison first normalises simple LaTeX and typography (math delimiters, {@code \left}/
 * {@code \right}, {@code \text{}}, {@code \dfrac}, Unicode minus, thousands separators, a trailing
 * period), then, when both sides read as rational numbers (integers, decimals, a/b, \frac{a}{b}),
 * compares them exactly as fractions of BigIntegers: "0.50", "1/2" and "\frac{1}{2}" are equal and
 * no floating-point rounding can make 0.1 + 0.2 style near-misses equal. Anything else (expressions,
 * intervals) is compared as the normalised string.
 */
final class MathAnswers {

    private MathAnswers() {
    }

    private static final Pattern NUMBER = Pattern.compile(
            "[-\u2212]?(?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?(?:/\\d+)?|[-\u2212]?\\.\\d+");

    /** The final answer of a completion, or empty if it has neither a \boxed{} nor a number. */
    static Optional<String> extract(String completion) {
        Optional<String> boxed = lastBoxed(completion);
        if (boxed.isPresent()) {
            return boxed;
        }
        Matcher m = NUMBER.matcher(completion);
        String last = null;
        while (m.find()) {
            last = m.group();
        }
        return Optional.ofNullable(last);
    }

    /** Content of the last \boxed{...} or \fbox{...}, matching nested braces; empty if none closes. */
    static Optional<String> lastBoxed(String s) {
        int at = Math.max(s.lastIndexOf("\\boxed"), s.lastIndexOf("\\fbox"));
        while (at >= 0) {
            int open = s.indexOf('{', at);
            String between = open < 0 ? "" : s.substring(at, open);
            if (open >= 0 && between.matches("\\\\(boxed|fbox)\\s*")) {
                int depth = 0;
                for (int i = open; i < s.length(); i++) {
                    char c = s.charAt(i);
                    if (c == '{') {
                        depth++;
                    } else if (c == '}' && --depth == 0) {
                        return Optional.of(s.substring(open + 1, i));
                    }
                }
            }
            // unclosed or malformed: try an earlier one
            at = Math.max(s.lastIndexOf("\\boxed", at - 1), s.lastIndexOf("\\fbox", at - 1));
        }
        return Optional.empty();
    }

    /** True iff the two answers are the same after normalisation (exactly, for rational numbers). */
    static boolean equivalent(String got, String expected) {
        String a = normalise(got);
        String b = normalise(expected);
        if (a.isEmpty() || b.isEmpty()) {
            return false;
        }
        Optional<Rational> ra = Rational.parse(a);
        Optional<Rational> rb = Rational.parse(b);
        if (ra.isPresent() && rb.isPresent()) {
            return ra.get().equals(rb.get());
        }
        return a.equals(b);
    }

    /** Strips presentation that does not change the value; see the class comment. */
    static String normalise(String s) {
        String t = s.strip();
        t = t.replace('\u2212', '-').replace('\u2013', '-').replace('\u2012', '-');   // minus, en dash
        t = t.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac");
        t = t.replace("\\left", "").replace("\\right", "");
        t = unwrapCommand(t, "\\text");
        t = unwrapCommand(t, "\\textbf");
        t = unwrapCommand(t, "\\mathrm");
        t = unwrapCommand(t, "\\mathbf");
        t = unwrapCommand(t, "\\boxed");
        t = t.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "").replace("~", "");
        t = t.replace("\\%", "").replace("%", "").replace("^\\circ", "").replace("^{\\circ}", "");
        t = t.replace("$", "").replace("{,}", ",");
        t = t.replaceAll("\\s+", "");
        t = t.replaceAll("(?<=\\d),(?=\\d{3}(?!\\d))", "");     // thousands separators: 1,000 -> 1000
        while (t.endsWith(".")) {
            t = t.substring(0, t.length() - 1);
        }
        return stripOuter(t);
    }

    /** Replaces {@code \cmd{x}} by {@code x} (innermost braces matched), everywhere. */
    private static String unwrapCommand(String s, String cmd) {
        int at;
        while ((at = indexOfCommand(s, cmd)) >= 0) {
            int open = at + cmd.length();
            int depth = 0;
            int close = -1;
            for (int i = open; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c == '{') {
                    depth++;
                } else if (c == '}' && --depth == 0) {
                    close = i;
                    break;
                }
            }
            if (close < 0) {
                return s;
            }
            s = s.substring(0, at) + s.substring(open + 1, close) + s.substring(close + 1);
        }
        return s;
    }

    /** Position of {@code cmd} directly followed by '{' (so \text does not match \textbf{). */
    private static int indexOfCommand(String s, String cmd) {
        return s.indexOf(cmd + "{");
    }

    /** Removes parentheses or braces that wrap the whole answer: "(3)" and "{3}" are 3. */
    private static String stripOuter(String t) {
        while (t.length() >= 2) {
            char first = t.charAt(0);
            char last = t.charAt(t.length() - 1);
            boolean pair = (first == '(' && last == ')') || (first == '{' && last == '}');
            if (!pair || !wrapsWhole(t)) {
                return t;
            }
            t = t.substring(1, t.length() - 1);
        }
        return t;
    }

    private static boolean wrapsWhole(String t) {
        int depth = 0;
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '(' || c == '{') {
                depth++;
            } else if (c == ')' || c == '}') {
                depth--;
                if (depth == 0 && i < t.length() - 1) {
                    return false;
                }
            }
        }
        return depth == 0;
    }

    /** An exact rational number p/q with q > 0 in lowest terms, so equals() is value equality. */
    record Rational(BigInteger num, BigInteger den) {

        Rational {
            if (den.signum() == 0) {
                throw new ArithmeticException("zero denominator");
            }
            if (den.signum() < 0) {
                num = num.negate();
                den = den.negate();
            }
            BigInteger g = num.gcd(den);
            if (g.signum() != 0 && !g.equals(BigInteger.ONE)) {
                num = num.divide(g);
                den = den.divide(g);
            }
        }

        private static final Pattern DECIMAL = Pattern.compile("[-+]?(\\d+(\\.\\d*)?|\\.\\d+)");
        private static final Pattern FRAC_SHORT = Pattern.compile("([-+]?)\\\\frac(\\d)(\\d)");

        /**
         * Reads a normalised answer as a rational: [sign] decimal, [sign] a/b, [sign] \frac{a}{b}
         * (a and b themselves rationals), or the short form \frac12. Empty if it is anything else.
         */
        static Optional<Rational> parse(String s) {
            try {
                return Optional.ofNullable(read(s));
            } catch (ArithmeticException e) {  // a zero denominator is not a number
                return Optional.empty();
            }
        }

        private static Rational read(String s) {
            s = stripOuter(s);
            if (s.isEmpty()) {
                return null;
            }
            if (DECIMAL.matcher(s).matches()) {
                BigDecimal d = new BigDecimal(s.startsWith("+") ? s.substring(1) : s);
                return d.scale() <= 0
                        ? new Rational(d.toBigIntegerExact(), BigInteger.ONE)
                        : new Rational(d.unscaledValue(), BigInteger.TEN.pow(d.scale()));
            }
            Matcher shortFrac = FRAC_SHORT.matcher(s);
            if (shortFrac.matches()) {
                Rational r = new Rational(new BigInteger(shortFrac.group(2)), new BigInteger(shortFrac.group(3)));
                return shortFrac.group(1).equals("-") ? r.negate() : r;
            }
            if (s.startsWith("-") || s.startsWith("+")) {
                Rational r = read(s.substring(1));
                return r == null ? null : s.startsWith("-") ? r.negate() : r;
            }
            if (s.startsWith("\\frac{")) {
                int close = matching(s, 5);
                if (close > 0 && close + 1 < s.length() && s.charAt(close + 1) == '{') {
                    int close2 = matching(s, close + 1);
                    if (close2 == s.length() - 1) {
                        Rational a = read(s.substring(6, close));
                        Rational b = read(s.substring(close + 2, close2));
                        return a == null || b == null ? null : a.divide(b);
                    }
                }
                return null;
            }
            int slash = s.indexOf('/');
            if (slash > 0 && slash == s.lastIndexOf('/')) {
                Rational a = read(s.substring(0, slash));
                Rational b = read(s.substring(slash + 1));
                return a == null || b == null ? null : a.divide(b);
            }
            return null;
        }

        /** Index of the brace closing the one at {@code open}, or -1. */
        private static int matching(String s, int open) {
            int depth = 0;
            for (int i = open; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c == '{') {
                    depth++;
                } else if (c == '}' && --depth == 0) {
                    return i;
                }
            }
            return -1;
        }

        Rational negate() {
            return new Rational(num.negate(), den);
        }

        Rational divide(Rational o) {
            return new Rational(num.multiply(o.den), den.multiply(o.num));
        }
    }
}
