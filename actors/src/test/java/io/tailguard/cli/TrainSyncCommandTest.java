package io.tailguard.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.learner.LearnerCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainSyncCommandTest {
    @Test
    void runsStepsPrintsTheSummaryAndWritesAResumableCheckpoint(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("rl");
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "2", "--prompts", "2", "--group", "4", "--eval-n", "2",
                "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(3, lines.length, r.out());
        JsonObject last = JsonParser.parseString(lines[2]).getAsJsonObject();
        assertTrue(last.has("pass_at_1_start") && last.has("pass_at_1_end") && last.has("rollout_speedup"));
        assertEquals(1, JsonParser.parseString(lines[0]).getAsJsonObject().get("step").getAsInt());
        assertTrue(Files.isRegularFile(out.resolve(LearnerCheckpoint.OPTIMIZER)));
        assertTrue(Files.readString(out.resolve(LearnerCheckpoint.STATE)).contains("\"step\": 2"));
        assertEquals(0, CliBadInputTest.cli("generate", "--checkpoint", out.toString(), "--prompt", "a=1", "--max-new", "2").code());
    }

    @Test
    void needsExactlyOneRolloutMode(@TempDir Path tmp) {
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", tmp.toString(), "--task", "kv-recall", "--steps", "1");
        assertEquals(2, r.code());
        CliBadInputTest.Run both = CliBadInputTest.cli("train-sync", "--checkpoint", tmp.toString(), "--task", "kv-recall",
                "--steps", "1", "--dense", "--budget", "64");
        assertEquals(2, both.code());
    }

    @Test
    void distillWritesAPeftLoraThatMismatchAndEvalApplyToTheSparseActor(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("distilled");
        CliBadInputTest.Run r = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--steps", "2", "--prompts", "2", "--group", "4", "--eval-n", "0",
                "--distill", "--lora-rank", "4", "--out", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject step = JsonParser.parseString(lines[0]).getAsJsonObject();
        assertTrue(step.has("distill_kl_k3") && step.has("distill_loss") && step.has("distill_grad_norm"), lines[0]);
        JsonObject config = JsonParser.parseString(Files.readString(out.resolve("adapter_config.json"))).getAsJsonObject();
        assertEquals("LORA", config.get("peft_type").getAsString());
        assertEquals(4, config.get("r").getAsInt());
        assertEquals(16, config.get("lora_alpha").getAsInt());
        assertTrue(io.tailguard.model.io.SafeTensors.read(out.resolve("lora.safetensors"))
                .containsKey("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight"));
        assertTrue(Files.readString(out.resolve("manifest.json")).contains("lora.safetensors"), "written with the checkpoint");

        CliBadInputTest.Run m = CliBadInputTest.cli("mismatch", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--context", "96", "--budget", "48", "--n", "2", "--lora", out.toString(), "--json");
        assertEquals(0, m.code(), m.err());
        assertTrue(m.out().contains("\"lora\":\"" + out), m.out());
        CliBadInputTest.Run e = CliBadInputTest.cli("eval", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--context", "96", "--n", "2", "--budget", "48", "--lora", out.resolve("lora.safetensors").toString(), "--json");
        assertEquals(0, e.code(), e.err());
        CliBadInputTest.Run dense = CliBadInputTest.cli("eval", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--n", "1", "--lora", out.toString());
        assertEquals(2, dense.code());
        assertTrue(dense.err().contains("--lora"), dense.err());
        Path broken = tmp.resolve("broken");
        Files.createDirectories(broken);
        Files.copy(out.resolve("adapter_config.json"), broken.resolve("adapter_config.json"));
        Files.writeString(broken.resolve("lora.safetensors"), "not safetensors");
        CliBadInputTest.Run bad = CliBadInputTest.cli("mismatch", "--checkpoint", out.toString(), "--task", "kv-recall",
                "--budget", "48", "--lora", broken.toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("lora.safetensors") && bad.err().strip().split("\n").length == 1, bad.err());
        CliBadInputTest.Run noSparse = CliBadInputTest.cli("train-sync", "--checkpoint", init.toString(), "--task", "kv-recall",
                "--steps", "1", "--dense", "--distill");
        assertEquals(2, noSparse.code());
        assertTrue(noSparse.err().contains("--distill"), noSparse.err());
    }
}
