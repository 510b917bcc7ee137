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
}
