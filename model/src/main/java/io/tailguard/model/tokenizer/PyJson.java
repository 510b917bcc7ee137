package io.tailguard.model.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;

import java.util.Iterator;
import java.util.Map;

/**
 * The {@code tojson} filter as transformers' chat templates have it: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=False)}, so ", " and ": "
 * between items (", " becomes "," at line ends with an indent), non-ASCII characters as they are.
 * Jinjava's own tojson writes compact Jackson output, which renders tool descriptions differently.
 */
final class PyJson implements Filter {

    @Override
    public String getName() {
        return "tojson";
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        Integer indent = args.length > 0 && args[0] != null ? Integer.valueOf(args[0]) : null;
        return dumps(var, indent);
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object i = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
        return dumps(var, i == null ? null : ((Number) i).intValue());
    }

    static String dumps(Object v, Integer indent) {
        StringBuilder sb = new StringBuilder();
        write(sb, v, indent, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, Integer indent, int level) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : Double.toString(d));
        } else if (v instanceof Number n) {
            sb.append(n);
        } else if (v instanceof Map<?, ?> m) {
            container(sb, m.entrySet().iterator(), '{', '}', indent, level, true);
        } else if (v instanceof Iterable<?> it) {
            container(sb, it.iterator(), '[', ']', indent, level, false);
        } else if (v instanceof Object[] arr) {
            container(sb, java.util.Arrays.asList(arr).iterator(), '[', ']', indent, level, false);
        } else {
            string(sb, v.toString());
        }
    }

    private static void container(StringBuilder sb, Iterator<?> it, char open, char close, Integer indent, int level,
                                  boolean entries) {
        sb.append(open);
        if (!it.hasNext()) {
            sb.append(close);
            return;
        }
        boolean first = true;
        while (it.hasNext()) {
            Object item = it.next();
            if (!first) {
                sb.append(indent == null ? ", " : ",");
            }
            first = false;
            if (indent != null) {
                sb.append('\n').append(" ".repeat(indent * (level + 1)));
            }
            if (entries) {
                Map.Entry<?, ?> e = (Map.Entry<?, ?>) item;
                string(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                write(sb, e.getValue(), indent, level + 1);
            } else {
                write(sb, item, indent, level + 1);
            }
        }
        if (indent != null) {
            sb.append('\n').append(" ".repeat(indent * level));
        }
        sb.append(close);
    }

    /** A JSON string as Python writes it with ensure_ascii=False. */
    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
