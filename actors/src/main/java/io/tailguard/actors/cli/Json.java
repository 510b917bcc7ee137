package io.tailguard.actors.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.TypeAdapter;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonWriter;

import java.io.IOException;

/**
 * One JSON object per line on stdout: the last stdout line of a --json command.
 *
 * <p>A number that is not finite (NaN, ±Infinity: a log-prob of a token the sampler could not pick,
 * a ratio over nothing) is written as {@code null}, keeping its key: JSON has no such numbers, and
 * strict parsers reject the bare {@code NaN} Gson would otherwise write.
 */
public final class Json {
    private static final TypeAdapter<Number> FINITE_OR_NULL = new TypeAdapter<>() {
        @Override
        public void write(JsonWriter out, Number value) throws IOException {
            if (value == null || !Double.isFinite(value.doubleValue())) {
                boolean serializeNulls = out.getSerializeNulls();
                out.setSerializeNulls(true);  // "key": null, not a silently missing key
                out.nullValue();
                out.setSerializeNulls(serializeNulls);
            } else if (value instanceof Float) {
                out.value(value.floatValue());  // the float's own shortest digits, not its double widening
            } else {
                out.value(value.doubleValue());
            }
        }

        @Override
        public Number read(JsonReader in) {
            throw new UnsupportedOperationException("output only");
        }
    };

    private static final Gson GSON = new GsonBuilder()
            .registerTypeAdapter(Double.class, FINITE_OR_NULL)
            .registerTypeAdapter(double.class, FINITE_OR_NULL)
            .registerTypeAdapter(Float.class, FINITE_OR_NULL)
            .registerTypeAdapter(float.class, FINITE_OR_NULL)
            .disableHtmlEscaping().create();

    private Json() {}

    public static String of(Object value) {
        return GSON.toJson(value);
    }

    public static void print(Object value) {
        System.out.println(of(value));
        System.out.flush();
    }
}
