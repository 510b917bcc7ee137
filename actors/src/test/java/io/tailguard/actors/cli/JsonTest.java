package io.tailguard.actors.cli;

import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import org.junit.jupiter.api.Test;

import java.io.StringReader;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** --json output is valid JSON: numbers that are not finite become null, with their keys kept. */
class JsonTest {
    @Test
    void nonFiniteNumbersAreNullAndTheRestIsUnchanged() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("nan", Double.NaN);
        m.put("inf", Double.POSITIVE_INFINITY);
        m.put("logprobs", new float[] {-0.1f, Float.NEGATIVE_INFINITY, 2.5f});
        m.put("boxed", List.of(1.5, Double.NaN));
        m.put("float", 0.1f);
        m.put("int", 3);
        m.put("absent", null);
        String s = Json.of(m);
        assertEquals("{\"nan\":null,\"inf\":null,\"logprobs\":[-0.1,null,2.5],\"boxed\":[1.5,null],\"float\":0.1,\"int\":3}", s);
        JsonReader strict = new JsonReader(new StringReader(s));
        strict.setStrictness(Strictness.STRICT);
        JsonParser.parseReader(strict);
    }

    record Row(String name, double value, float small) {
    }

    @Test
    void recordFieldsToo() {
        assertEquals("{\"name\":\"x\",\"value\":null,\"small\":null}", Json.of(new Row("x", Double.NaN, Float.NaN)));
        assertEquals("{\"name\":\"x\",\"value\":1.0E-7,\"small\":0.25}", Json.of(new Row("x", 1e-7, 0.25f)));
    }
}
