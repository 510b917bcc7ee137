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
}
