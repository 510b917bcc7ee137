package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.Main;
import org.junit.jupiter.api.Test;

import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
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
                "--new-tokens", "4", "--transformers-new-tokens", "2", "--json")).getAsJsonObject();
        assertTrue(j.get("tokens_per_s").getAsDouble() > 0);
        assertTrue(j.get("prefill_tokens_per_s").getAsDouble() > 0);
        assertEquals(2, j.get("batch").getAsInt());
        assertEquals(40, j.get("context").getAsInt());
        if (PeerScript.torchAvailable()) {
            assertTrue(j.get("pytorch_tokens_per_s").getAsDouble() > 0);
            assertTrue(j.get("pytorch_prefill_tokens_per_s").getAsDouble() > 0);
            assertEquals(j.get("tokens_per_s").getAsDouble() / j.get("pytorch_tokens_per_s").getAsDouble(),
                    j.get("vs_pytorch").getAsDouble(), 0.01);
        }
        if (PeerScript.transformersAvailable()) {
            assertEquals(2, j.get("transformers_new_tokens").getAsInt());
            // 2 timed steps at most: 3 tokens, the first from the prefill
            assertTrue(j.get("transformers_decode_steps").getAsInt() >= 1 && j.get("transformers_decode_steps").getAsInt() <= 2);
            assertTrue(j.has("transformers_dynamic_tokens_per_s") && j.has("transformers_static_tokens_per_s"));
            assertTrue(j.get("transformers_prefill_tokens_per_s").getAsDouble() > 0);
            String peer = j.get("peer").getAsString();
            double peerTps = j.get(peer + "_tokens_per_s").getAsDouble();
            assertEquals(Math.max(j.get("transformers_tokens_per_s").getAsDouble(), j.get("pytorch_tokens_per_s").getAsDouble()),
                    peerTps, 1e-9);
            assertEquals(j.get("tokens_per_s").getAsDouble() / peerTps, j.get("vs_peer").getAsDouble(), 0.01);
        }
    }

    @Test
    void badPeerOptionsExitTwo() {
        assertEquals(2, Main.run("bench", "decode", "--preset", "tiny", "--batch", "1", "--context", "4", "--new-tokens", "1",
                "--transformers-cache", "paged"));
        assertEquals(2, Main.run("bench", "decode", "--preset", "tiny", "--batch", "1", "--context", "4", "--new-tokens", "1",
                "--transformers-new-tokens", "0"));
        assertEquals(2, Main.run("bench", "decode", "--preset", "qwen3-7b", "--batch", "1", "--context", "4", "--new-tokens", "1"));
    }

    @Test
    void theEagerPeerDecodesWhatTransformersComputes(@TempDir Path tmp) {
        assumeTrue(PeerScript.transformersAvailable(), "the peer Python lacks torch 2, safetensors or transformers");
        System.setProperty("tailguard.home", "..");
        ModelSource small = new ModelSource();
        small.preset = "tiny";
        Path dir = small.directory(3, tmp);
        // --check: transformers' Qwen3ForCausalLM (from_pretrained on the same directory), one full
        // forward over prompt + generated tokens, scores every token the eager peer decoded greedily.
        JsonObject j = PeerScript.run("bench/pytorch_decode.py", List.of("--checkpoint", dir.toString(), "--batch", "2",
                "--context", "12", "--new-tokens", "5", "--warmup", "0", "--seed", "3", "--threads", "1", "--check"));
        JsonObject check = j.getAsJsonObject("check");
        assertEquals(2 * 6, check.get("positions").getAsInt());
        // transformers' best logit minus its logit of the peer's token: 0 where they agree, and a
        // float32 rounding gap at most where a near-tie went the other way.
        assertTrue(check.get("max_ref_logit_gap").getAsDouble() <= 1e-5, check.toString());
    }

    @Test
    void int8ActivationVariantsAreTheirOwnNames() {
        DecodeBench.Variant v = DecodeBench.Variant.parse("q4a8");
        assertEquals("q4a8", v.name());
        assertEquals(4, v.bits());
        assertEquals(io.tailguard.model.PackedLinear.Activations.INT8, v.activations());
        v = DecodeBench.Variant.parse("q8a8");
        assertEquals(8, v.bits());
        assertEquals(io.tailguard.model.PackedLinear.Activations.INT8, v.activations());
        // plain qB keeps float32 activations
        assertEquals(io.tailguard.model.PackedLinear.Activations.FLOAT32, DecodeBench.Variant.parse("q4").activations());
        assertEquals(io.tailguard.model.PackedLinear.Activations.FLOAT32, DecodeBench.Variant.parse("64:2:5").activations());
        for (String bad : new String[] {"q9a8", "q4a7", "q1a8"}) {
            org.junit.jupiter.api.Assertions.assertThrows(io.tailguard.actors.cli.BadInput.class, () -> DecodeBench.Variant.parse(bad), bad);
        }
    }

    @Test
    void compareTimesPackedVariantsAndAPackedCheckpointDecodesAsItIs(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.tailguard.model.PackedLinear.supported());
        JsonObject j = JsonParser.parseString(run("bench", "decode", "--preset", "tiny", "--batch", "3", "--context", "20",
                "--new-tokens", "3", "--compare", "q4,64:2:5,kv16,q4+kv16", "--pytorch", "off", "--json")).getAsJsonObject();
        com.google.gson.JsonArray rows = j.getAsJsonArray("compare");
        assertEquals(4, rows.size());
        // tiny: 4 layers of q/k/v 128+64+64, o 128, gate/up 384+384 and down 128 rows over 128 or 384 columns
        long float32 = 4L * 4 * (256 * 128 + 128 * 128 + 768 * 128 + 128 * 384);
        assertEquals(float32, j.get("float32_linear_bytes").getAsLong());
        String[] names = {"q4", "64:2:5", "kv16", "q4+kv16"};
        for (int i = 0; i < 4; i++) {
            JsonObject r = rows.get(i).getAsJsonObject();
            assertEquals(names[i], r.get("variant").getAsString());
            assertEquals(i >= 2 ? "float16" : "float32", r.get("kv_cache").getAsString());
            assertTrue(r.get("tokens_per_s").getAsDouble() > 0);
            assertEquals(r.get("tokens_per_s").getAsDouble() / j.get("tokens_per_s").getAsDouble(), r.get("speedup").getAsDouble(), 0.01);
            if (i == 2) {
                assertEquals(float32, r.get("linear_bytes").getAsLong(), "kv16 keeps the float32 weights");
            } else {
                assertTrue(r.get("linear_bytes").getAsLong() * 2 < float32, r.toString());
            }
            // against the same weights (dequantized to float32) on a float32 cache: the same greedy tokens; a
            // float16 cache moves the log-probs by its rounding only
            assertTrue(r.get("reference_tokens_equal").getAsBoolean(), r.toString());
            assertTrue(r.get("reference_max_logprob_diff").getAsDouble() < (i >= 2 ? 1e-2 : 1e-3), r.toString());
        }
        assertEquals(2, Main.run("bench", "decode", "--preset", "tiny", "--batch", "2", "--context", "12", "--new-tokens", "2",
                "--compare", "q4+kv8", "--pytorch", "off"));
        java.nio.file.Path init = tmp.resolve("init");
        java.nio.file.Path q = tmp.resolve("q");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", init.toString()));
        assertEquals(0, Main.run("compress", "vnm", "--checkpoint", init.toString(), "--baseline", "2:4", "--out", q.toString(),
                "--context", "64", "--calibration", "0", "--held-out", "2", "--eval-n", "0", "--recovery-steps", "0"));
        JsonObject p = JsonParser.parseString(run("bench", "decode", "--checkpoint", q.toString(), "--batch", "2", "--context", "12",
                "--new-tokens", "2", "--json")).getAsJsonObject();
        assertTrue(p.get("packed").getAsBoolean());
        assertTrue(p.get("tokens_per_s").getAsDouble() > 0);
        assertEquals(2, Main.run("bench", "decode", "--checkpoint", q.toString(), "--batch", "2", "--context", "12",
                "--new-tokens", "2", "--pytorch", "on"));
    }
}
