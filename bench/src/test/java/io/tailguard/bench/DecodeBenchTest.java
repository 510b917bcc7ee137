package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.Main;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DecodeBenchTest {
    static String run(String... args) {
        PrintStream old = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, Main.run(args));
        } finally {
            System.setOut(old);
        }
        String s = out.toString(StandardCharsets.UTF_8).strip();
        return s.substring(s.lastIndexOf('\n') + 1);
    }

    @Test
    void benchIsRegisteredWithTheCliAndPrintsJsonSideBySideWithPytorch() {
        System.setProperty("tailguard.home", ".."); // surefire runs in bench/; the peer script is under the root
        assertEquals(0, Main.run("bench", "decode", "--help"));
        JsonObject j = JsonParser.parseString(run("bench", "decode", "--preset", "tiny", "--batch", "2", "--context", "40",
                "--new-tokens", "4", "--json")).getAsJsonObject();
        assertTrue(j.get("tokens_per_s").getAsDouble() > 0);
        assertEquals(2, j.get("batch").getAsInt());
        assertEquals(40, j.get("context").getAsInt());
        if (PeerScript.torchAvailable()) {
            assertTrue(j.get("pytorch_tokens_per_s").getAsDouble() > 0);
            assertEquals(j.get("tokens_per_s").getAsDouble() / j.get("pytorch_tokens_per_s").getAsDouble(),
                    j.get("vs_pytorch").getAsDouble(), 0.01);
        }
    }
}
