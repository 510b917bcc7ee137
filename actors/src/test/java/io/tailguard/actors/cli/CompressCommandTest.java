package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompressCommandTest {
    @Test
    void yaqaWritesPackedCodesAndReportsKlPassRateAndBytes(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString(), "--seed", "3").code());
        Path out = tmp.resolve("q4");
        Path deq = tmp.resolve("deq");
        CliBadInputTest.Run r = CliBadInputTest.cli("compress", "yaqa", "--checkpoint", init.toString(), "--bits", "4",
                "--out", out.toString(), "--export-dequantized", deq.toString(), "--context", "64", "--calibration", "8",
                "--held-out", "4", "--eval-n", "2", "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        assertTrue(j.get("kl").getAsDouble() > 0, "quantization changes the model a little");
        long bytes = j.get("bytes").getAsLong();
        long f32 = j.get("float32_linear_bytes").getAsLong();
        assertTrue(bytes < 0.3 * f32, "4-bit codes plus scales are well under a quarter of float32: " + bytes + " vs " + f32);
        assertTrue(j.has("pass_at_1") && j.has("seconds"));
        assertEquals(0, CliBadInputTest.cli("generate", "--checkpoint", deq.toString(), "--prompt-ids", "5,6", "--max-new", "2").code());
        assertTrue(Files.isRegularFile(out.resolve("manifest.json")));
    }

    @Test
    void badMethodOptionsExitTwo(@TempDir Path tmp) {
        assertEquals(2, CliBadInputTest.cli("compress", "yaqa", "--checkpoint", tmp.toString(), "--bits", "4", "--out",
                tmp.resolve("o").toString(), "--baseline", "gptq").code());
        assertEquals(2, CliBadInputTest.cli("compress", "yaqa", "--checkpoint", tmp.toString(), "--bits", "4", "--out",
                tmp.resolve("o").toString(), "--sketch", "C").code());
    }
}
