package io.tailguard.bench;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.Main;
import io.tailguard.model.Devices;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RolloutBenchTest {
    @Test
    void theSparseRoundsCanRunWithALora(@TempDir Path tmp) {
        Path ckpt = tmp.resolve("tiny");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", ckpt.toString()));
        Path adapter = tmp.resolve("lora");
        try (Qwen3Model model = ModelLoader.load(ckpt, Devices.parse("cpu"));
             LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 1)) {
            lora.save(adapter);
        }
        JsonObject j = JsonParser.parseString(DecodeBenchTest.run("bench", "rollout", "--checkpoint", ckpt.toString(),
                "--batch", "2", "--context", "80", "--new-tokens", "3", "--budget", "48", "--rounds", "1",
                "--lora", adapter.toString(), "--json")).getAsJsonObject();
        assertEquals(adapter.toString(), j.get("lora").getAsString());
        assertTrue(j.get("speedup").getAsDouble() > 0);
        assertEquals(2, Main.run("bench", "rollout", "--checkpoint", ckpt.toString(), "--batch", "1", "--context", "80",
                "--new-tokens", "1", "--budget", "48", "--lora", tmp.resolve("missing").toString()));
    }

    @Test
    void aCompressedCheckpointIsTimedDenseAndSparseInTheSameAlternation(@TempDir Path tmp) {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.tailguard.model.PackedLinear.supported());
        Path ckpt = tmp.resolve("tiny");
        Path sparse = tmp.resolve("24");
        assertEquals(0, Main.run("init-model", "--preset", "tiny", "--out", ckpt.toString()));
        assertEquals(0, Main.run("compress", "vnm", "--checkpoint", ckpt.toString(), "--baseline", "2:4", "--out", sparse.toString(),
                "--context", "64", "--calibration", "0", "--held-out", "2", "--eval-n", "0", "--recovery-steps", "0"));
        JsonObject j = JsonParser.parseString(DecodeBenchTest.run("bench", "rollout", "--checkpoint", ckpt.toString(),
                "--batch", "2", "--context", "80", "--new-tokens", "3", "--budget", "48", "--rounds", "1",
                "--compressed", sparse.toString(), "--json")).getAsJsonObject();
        assertTrue(j.get("compressed_packed").getAsBoolean());
        assertTrue(j.get("compressed_dense_tokens_per_s").getAsDouble() > 0);
        assertTrue(j.get("compressed_sparse_tokens_per_s").getAsDouble() > 0);
        // one round: each ratio is that round's own
        assertEquals(j.get("compressed_sparse_tokens_per_s").getAsDouble() / j.get("sparse_tokens_per_s").getAsDouble(),
                j.get("compressed_sparse_vs_sparse").getAsDouble(), 0.01);
        assertEquals(2, Main.run("bench", "rollout", "--checkpoint", ckpt.toString(), "--batch", "1", "--context", "80",
                "--new-tokens", "1", "--budget", "48", "--compressed", ckpt.toString()));
    }
}
