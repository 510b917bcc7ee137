package io.tailguard.model.tokenizer;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Python's string and dict methods for the chat-template engine: templates written for Jinja call
 * {@code content.startswith(...)}, {@code .split('</think>')}, {@code .lstrip('\n')} and the like on
 * Python objects, while Jinjava would look for Java methods (and Java's {@code split} takes a regex
 * and drops trailing empty strings). Resolved before Jinjava's own resolvers; anything not listed
 * here falls through to them.
 */
final class PyMethods extends ELResolver {

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (method == null) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        String name = method.toString();
        Object out;
        if (base instanceof String s) {
            out = string(s, name, args);
        } else if (base instanceof Map<?, ?> m) {
            out = map(m, name, args);
        } else {
            return null;
        }
        if (out == NONE) {
            return null;
        }
        context.setPropertyResolved(true);
        return out;
    }

    /** Marks "not a method handled here" (null is a legitimate result of dict.get). */
    private static final Object NONE = new Object();

    private static Object string(String s, String name, Object[] a) {
        switch (name) {
            case "startswith":
                return affix(s, a, true);
            case "endswith":
                return affix(s, a, false);
            case "strip":
                return strip(s, chars(a), true, true);
            case "lstrip":
                return strip(s, chars(a), true, false);
            case "rstrip":
                return strip(s, chars(a), false, true);
            case "split":
                return split(s, a.length > 0 ? (String) a[0] : null, a.length > 1 ? ((Number) a[1]).intValue() : -1);
            case "upper":
                return s.toUpperCase(java.util.Locale.ROOT);
            case "lower":
                return s.toLowerCase(java.util.Locale.ROOT);
            case "replace":
                return replace(s, str(a[0]), str(a[1]), a.length > 2 ? ((Number) a[2]).intValue() : -1);
            case "find":
                return (long) s.indexOf(str(a[0]));
            case "count":
                return count(s, str(a[0]));
            case "join":
                return join(s, a.length > 0 ? a[0] : null);
            default:
                return NONE;
        }
    }

    private static Object map(Map<?, ?> m, String name, Object[] a) {
        switch (name) {
            case "items": {
                List<Object> out = new ArrayList<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    out.add(new ArrayList<>(java.util.Arrays.asList(e.getKey(), e.getValue())));
                }
                return out;
            }
            case "keys":
                return new ArrayList<>(m.keySet());
            case "values":
                return new ArrayList<>(m.values());
            case "get":
                return m.containsKey(a[0]) ? m.get(a[0]) : a.length > 1 ? a[1] : null;
            default:
                return NONE;
        }
    }

    private static String str(Object o) {
        return o == null ? "None" : o.toString();
    }

    private static String chars(Object[] a) {
        return a.length == 0 || a[0] == null ? null : a[0].toString();
    }

    /** str.startswith/endswith with a string or a tuple (list) of strings. */
    private static boolean affix(String s, Object[] a, boolean start) {
        Collection<?> options = a[0] instanceof Collection<?> c ? c : List.of(str(a[0]));
        for (Object o : options) {
            if (start ? s.startsWith(str(o)) : s.endsWith(str(o))) {
                return true;
            }
        }
        return false;
    }

    /** str.strip: without chars, Python's whitespace; with chars, any of them. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int from = 0;
        int to = s.length();
        while (left && from < to && strippable(s.charAt(from), chars)) {
            from++;
        }
        while (right && to > from && strippable(s.charAt(to - 1), chars)) {
            to--;
        }
        return s.substring(from, to);
    }

    private static boolean strippable(char c, String chars) {
        if (chars != null) {
            return chars.indexOf(c) >= 0;
        }
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || (c >= 0x1c && c <= 0x1f) || c == 0x85;
    }

    /** str.split: on a separator (keeping empty parts), or on whitespace runs when it is absent. */
    static List<String> split(String s, String sep, int maxsplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && strippable(s.charAt(i), null)) {
                    i++;
                }
                if (i >= n) {
                    return out;
                }
                if (maxsplit >= 0 && out.size() == maxsplit) {
                    out.add(strip(s.substring(i), null, false, true));
                    return out;
                }
                int j = i;
                while (j < n && !strippable(s.charAt(j), null)) {
                    j++;
                }
                out.add(s.substring(i, j));
                i = j;
            }
        }
        if (sep.isEmpty()) {
            throw new IllegalArgumentException("split: empty separator");
        }
        int from = 0;
        while (maxsplit < 0 || out.size() < maxsplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) {
                break;
            }
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static String replace(String s, String old, String rep, int count) {
        if (count < 0) {
            return s.replace(old, rep);
        }
        StringBuilder sb = new StringBuilder();
        int from = 0;
        for (int k = 0; k < count; k++) {
            int at = s.indexOf(old, from);
            if (at < 0 || old.isEmpty()) {
                break;
            }
            sb.append(s, from, at).append(rep);
            from = at + old.length();
        }
        return sb.append(s.substring(from)).toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) {
            return s.length() + 1L;
        }
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) {
            n++;
        }
        return n;
    }

    private static String join(String sep, Object items) {
        StringBuilder sb = new StringBuilder();
        Iterator<?> it = items instanceof Iterable<?> i ? i.iterator() : List.of().iterator();
        while (it.hasNext()) {
            sb.append(str(it.next()));
            if (it.hasNext()) {
                sb.append(sep);
            }
        }
        return sb.toString();
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
