package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.compression.VnmChecker;
import io.tailguard.compression.VnmPattern;
import io.tailguard.model.io.CheckpointDir;
import io.tailguard.model.io.HostTensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompressVnmCommandTest {
    @TempDir
    static Path tmp;
    static Path init;

    @BeforeAll
    static void tinyCheckpoint() {
        init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString(), "--seed", "3").code());
    }

    private static JsonObject last(CliBadInputTest.Run r) {
        String[] lines = r.out().strip().split("\n");
        return JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
    }

    @Test
    void vnmWritesAPackedSparseCheckpointWhoseWeightsSatisfyThePatternAndReportsKlPassRateBytesAndTime() {
        Path out = tmp.resolve("vnm");
        Path deq = tmp.resolve("vnm-dense");
        CliBadInputTest.Run r = CliBadInputTest.cli("compress", "vnm", "--checkpoint", init.toString(), "--pattern", "64:2:5",
                "--out", out.toString(), "--export-dequantized", deq.toString(), "--context", "64", "--calibration", "4",
                "--held-out", "2", "--eval-n", "2", "--permute-rounds", "3", "--recovery-steps", "4", "--recovery-batch", "2",
                "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject j = last(r);
        assertTrue(j.get("kl").getAsDouble() > 0, "pruning changes the model");
        assertTrue(j.has("pass_at_1") && j.has("seconds") && j.has("permutation"));
        assertTrue(j.getAsJsonObject("permutation").get("gain_percent").getAsDouble() >= 0);
        assertEquals("64:2:5", j.get("pattern").getAsString());
        assertEquals(4, j.getAsJsonObject("recovery").get("steps").getAsInt());
        assertTrue(j.has("kl_one_shot") && j.has("pass_at_1_one_shot"));
        // 2 of 5 values as float32 plus 4 bits of 2:4 index per row and block, and column offsets
        long bytes = j.get("bytes").getAsLong();
        long f32 = j.get("float32_linear_bytes").getAsLong();
        assertTrue(bytes < 0.45 * f32 && bytes > 0.4 * f32, bytes + " vs " + f32);
        assertTrue(Files.isRegularFile(out.resolve("manifest.json")));
        // The exported dense checkpoint: every linear weight's non-zeros satisfy 64:2:5 (random
        // init leaves no kept weight at exactly zero), and it runs.
        Map<String, HostTensor> w = CheckpointDir.read(deq).tensors();
        VnmPattern p = VnmPattern.parse("64:2:5");
        int checked = 0;
        for (Map.Entry<String, HostTensor> e : w.entrySet()) {
            if (e.getKey().endsWith("_proj.weight")) {
                float[] v = e.getValue().toFloats();
                long[] shape = e.getValue().shape();
                boolean[] nz = new boolean[v.length];
                for (int i = 0; i < v.length; i++) {
                    nz[i] = v[i] != 0f;
                }
                assertEquals(Optional.empty(), VnmChecker.violation(nz, (int) shape[0], (int) shape[1], p), e.getKey());
                checked++;
            }
        }
        assertEquals(28, checked);
        assertEquals(0, CliBadInputTest.cli("generate", "--checkpoint", deq.toString(), "--prompt", "ab", "--max-new", "2").code());
    }

    @Test
    void baselineIsPlainTwoFourMagnitude() {
        Path out = tmp.resolve("b24");
        CliBadInputTest.Run r = CliBadInputTest.cli("compress", "vnm", "--checkpoint", init.toString(), "--baseline", "2:4",
                "--out", out.toString(), "--context", "64", "--calibration", "0", "--held-out", "2", "--eval-n", "0",
                "--recovery-steps", "0", "--json");
        assertEquals(0, r.code(), r.err());
        JsonObject j = last(r);
        assertEquals("2:4", j.get("pattern").getAsString());
        assertEquals("magnitude", j.get("score").getAsString());
        assertTrue(!j.has("permutation") && !j.has("recovery"));
    }

    @Test
    void badInputExitsTwoWithTheReason() {
        String ck = init.toString();
        String o = tmp.resolve("bad").toString();
        expectBad("does not fit model.layers.0.self_attn.k_proj.weight [64, 128]: 64 rows are not a multiple of V = 128",
                "compress", "vnm", "--checkpoint", ck, "--pattern", "128:2:5", "--out", o);
        expectBad("N must be 2", "compress", "vnm", "--checkpoint", ck, "--pattern", "64:3:5", "--out", o);
        expectBad("not V:N:M", "compress", "vnm", "--checkpoint", ck, "--pattern", "64-2-5", "--out", o);
        expectBad("calibration", "compress", "vnm", "--checkpoint", ck, "--pattern", "64:2:5", "--calibration", "0", "--out", o);
        expectBad("--baseline must be 2:4", "compress", "vnm", "--checkpoint", ck, "--baseline", "2:8", "--out", o);
        expectBad("not both", "compress", "vnm", "--checkpoint", ck, "--pattern", "64:2:5", "--speedup", "2", "--out", o);
        expectBad("no V:2:M pattern", "compress", "vnm", "--checkpoint", ck, "--speedup", "50", "--out", o);
        expectBad("give --pattern", "compress", "vnm", "--checkpoint", ck, "--out", o);
        expectBad("--recovery-steps must be >= 0", "compress", "vnm", "--checkpoint", ck, "--pattern", "64:2:5",
                "--recovery-steps", "-1", "--out", o);
        expectBad("--score", "compress", "vnm", "--checkpoint", ck, "--pattern", "64:2:5", "--score", "wanda", "--out", o);
        expectBad("--bits must be in 2..8, got 1", "compress", "yaqa", "--checkpoint", ck, "--bits", "1", "--out", o);
        expectBad("--bits must be in 2..8, got 9", "compress", "yaqa", "--checkpoint", ck, "--bits", "9", "--out", o);
        expectBad("needs calibration sequences", "compress", "yaqa", "--checkpoint", ck, "--bits", "4", "--calibration", "0",
                "--context", "64", "--out", o);
        assertTrue(Files.notExists(tmp.resolve("bad")));
    }

    private static void expectBad(String reason, String... args) {
        CliBadInputTest.Run r = CliBadInputTest.cli(args);
        assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
        assertTrue(r.err().contains(reason), r.err());
        assertEquals(1, r.err().strip().split("\n").length, "one line: " + r.err());
    }
}
