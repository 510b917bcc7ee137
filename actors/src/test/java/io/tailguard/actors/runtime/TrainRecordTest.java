package io.tailguard.actors.runtime;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.CliBadInputTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A short `train` run with a held-out evaluation after every step and the controller switched off:
 * pass@1 is a curve, the run record holds what the run saw, the schedule never moves, and
 * compare-runs reads the record.
 */
class TrainRecordTest {
    @Test
    void evaluatesEveryKStepsRecordsTheRunAndHoldsTheScheduleWhenTheControllerIsOff(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("run");
        Path schedule = tmp.resolve("fixed.conf");
        Files.writeString(schedule, "tailguard.schedule { version = 1, kind = fixed, budget = 48 }\n");
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.steps=2", "--set", "tailguard.train.eval-n=2", "--set", "tailguard.train.eval-every=1",
                "--set", "tailguard.train.context-min=64", "--set", "tailguard.train.context-max=96", "--set", "tailguard.rollout.group-size=4",
                "--set", "tailguard.learner.groups-per-step=2", "--set", "tailguard.controller.window=1s",
                "--set", "tailguard.controller.schedule=" + schedule, "--set", "tailguard.controller.adapt=off",
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0", "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        // steps 0 (the start), 1 (eval-every), 2 (the end, once)
        JsonArray curve = j.getAsJsonArray("pass_at_1_curve");
        assertEquals(3, curve.size(), curve.toString());
        for (int k = 0; k < 3; k++) {
            assertEquals(k, curve.get(k).getAsJsonArray().get(0).getAsInt(), curve.toString());
            assertEquals(3, curve.get(k).getAsJsonArray().size());
        }
        assertEquals(j.get("pass_at_1_start").getAsDouble(), curve.get(0).getAsJsonArray().get(2).getAsDouble());
        assertEquals(j.get("pass_at_1_end").getAsDouble(), curve.get(2).getAsJsonArray().get(2).getAsDouble());
        assertEquals(out.resolve(RunRecord.FILE_NAME).toString(), j.get("record").getAsString());

        RunRecord rec = RunRecord.read(out);
        assertEquals(2, rec.steps().size());
        assertEquals(3, rec.evaluations().size());
        assertEquals(false, rec.settings().get("adapt"));
        assertEquals(1.0, rec.settings().get("eval_every"));
        assertEquals(2.0, rec.summary().get("steps"));
        // switched off, the controller held its start schedule (48 at every bin of 64 up to 96 + 64) in every window
        for (RunRecord.WindowRow w : rec.windows()) {
            assertArrayEquals(new int[] {48, 48, 48}, w.budgets());
            assertEquals(1, w.scheduleVersion());
        }
        assertTrue(r.err().contains("eval at step 1: pass@1"), r.err());

        CliBadInputTest.Run cmp = CliBadInputTest.cli("compare-runs", "--out", tmp.resolve("cmp").toString(), out.toString());
        assertEquals(0, cmp.code(), cmp.err());
        assertTrue(Files.isRegularFile(tmp.resolve("cmp/table.md")));
    }
}
