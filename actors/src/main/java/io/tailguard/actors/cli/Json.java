package io.tailguard.actors.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;

/** One JSON object per line on stdout: the last stdout line of a --json command. */
public final class Json {
    private static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().disableHtmlEscaping().create();

    private Json() {}

    public static String of(Object value) {
        return GSON.toJson(value);
    }

    public static void print(Object value) {
        System.out.println(of(value));
        System.out.flush();
    }
}
