package io.tailguard.actors.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.runtime.RunRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** compare-runs at the command line: records written by hand, read back; bad input is one line and exit 2. */
class CompareRunsCommandTest {
    /** A run of seed 1 whose pass@1 goes from 0.2 to `end` at 20 steps, its evaluations at 10 s and `at` s (5 s each). */
    static void write(Path dir, double end, double at) throws Exception {
        Map<String, Object> settings = Map.of("seed", 1);
        new RunRecord(0, at + 10, settings, Map.of(), List.of(new RunRecord.StepRow(20, at - 5, 0.5, 0.5, 100, 50, 2, 1, 0.01, 0, 0)),
                List.of(), List.of(new RunRecord.EvalRow(0, 10, 0.2, 5), new RunRecord.EvalRow(20, at, end, 5)))
                .write(dir.resolve(RunRecord.FILE_NAME));
    }

    @Test
    void comparesRunsFromTheirRecords(@TempDir Path tmp) throws Exception {
        write(tmp.resolve("dense-s1"), 0.5, 200);
        write(tmp.resolve("guarded-s1"), 0.6, 100);
        Path out = tmp.resolve("cmp");
        CliBadInputTest.Run r = CliBadInputTest.cli("compare-runs", "--out", out.toString(), "--label", "dense", "--label", "guarded",
                tmp.resolve("dense-s1").toString(), tmp.resolve("guarded-s1").toString(), "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        assertEquals("dense", j.get("reference").getAsString());
        JsonObject g = j.getAsJsonArray("runs").get(1).getAsJsonObject();
        assertEquals("guarded", g.get("label").getAsString());
        // dense reaches its 0.5 at 200 s less the first evaluation's 5 = 195; guarded at 100 − 5 = 95; 95 / 195 = 0.487
        assertEquals(195.0, g.get("reference_seconds_to_target").getAsDouble());
        assertEquals(95.0, g.get("seconds_to_target").getAsDouble());
        assertEquals(0.487, g.get("ratio_to_reference").getAsDouble());
        assertTrue(j.get("runs").getAsJsonArray().get(0).getAsJsonObject().has("mean_tis_truncated"));
        assertTrue(Files.isRegularFile(out.resolve("table.md")));
        assertTrue(Files.size(out.resolve("pass_at_1_seconds.png")) > 0);

        // labels from the directories' names; the reference is then the first run's
        CliBadInputTest.Run named = CliBadInputTest.cli("compare-runs", "--out", out.toString(), tmp.resolve("dense-s1").toString(),
                tmp.resolve("guarded-s1").toString());
        assertEquals(0, named.code(), named.err());
        assertTrue(named.out().contains("| guarded-s1 | 1 |"), named.out());
        assertTrue(named.out().contains("× dense-s1"), named.out());
    }

    @Test
    void badInputIsOneLineNamingThePath(@TempDir Path tmp) throws Exception {
        write(tmp.resolve("dense-s1"), 0.5, 200);
        Path missing = tmp.resolve("nope");
        CliBadInputTest.Run gone = CliBadInputTest.cli("compare-runs", "--out", tmp.resolve("cmp").toString(), missing.toString());
        assertEquals(2, gone.code());
        assertEquals("tailguard: " + missing + ": no such run directory", gone.err().strip());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        CliBadInputTest.Run noRecord = CliBadInputTest.cli("compare-runs", "--out", tmp.resolve("cmp").toString(),
                tmp.resolve("dense-s1").toString(), empty.toString());
        assertEquals(2, noRecord.code());
        assertTrue(noRecord.err().strip().startsWith("tailguard: " + empty.resolve(RunRecord.FILE_NAME) + ": no run record"), noRecord.err());
        assertEquals(1, noRecord.err().strip().lines().count(), noRecord.err());
        CliBadInputTest.Run labels = CliBadInputTest.cli("compare-runs", "--out", tmp.resolve("cmp").toString(), "--label", "dense",
                tmp.resolve("dense-s1").toString(), tmp.resolve("dense-s1").toString());
        assertEquals(2, labels.code());
        assertEquals("tailguard: --label: 1 labels for 2 runs (give one per run, or none)", labels.err().strip());
        CliBadInputTest.Run ref = CliBadInputTest.cli("compare-runs", "--out", tmp.resolve("cmp").toString(), "--reference", "sparse",
                tmp.resolve("dense-s1").toString());
        assertEquals(2, ref.code());
        assertEquals("tailguard: --reference: no run is labelled \"sparse\"", ref.err().strip());
        assertTrue(Files.notExists(tmp.resolve("cmp")));
        // the train keys this change adds are checked like the others: exit 2, one line naming the key
        CliBadInputTest.Run every = CliBadInputTest.cli("train", "--set", "tailguard.train.eval-every=-1",
                "--set", "tailguard.train.out=" + tmp.resolve("run"));
        assertEquals(2, every.code());
        assertTrue(every.err().strip().endsWith("tailguard.train.eval-every: must be >= 0, got -1"), every.err());
        CliBadInputTest.Run adapt = CliBadInputTest.cli("train", "--set", "tailguard.controller.adapt=maybe",
                "--set", "tailguard.train.out=" + tmp.resolve("run"));
        assertEquals(2, adapt.code());
        assertTrue(adapt.err().strip().endsWith("tailguard.controller.adapt: must be on or off, got \"maybe\""), adapt.err());
        assertTrue(Files.notExists(tmp.resolve("run")));
    }
}
