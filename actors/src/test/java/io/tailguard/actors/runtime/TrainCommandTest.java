package io.tailguard.actors.runtime;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.tailguard.actors.cli.CliBadInputTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The main job end to end in one process: controller, worker, buffer, learner, report. */
class TrainCommandTest {
    @Test
    void aCheckpointThatIsNotThereIsBadInputNamingItsKey(@TempDir Path tmp) {
        Path missing = tmp.resolve("missing");
        Path out = tmp.resolve("run");
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + missing,
                "--set", "tailguard.train.out=" + out, "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("tailguard.train.checkpoint: " + missing + ": no such checkpoint directory"), r.err());
        assertTrue(!Files.exists(out), "nothing made for a run that cannot start");
    }

    /**
     * A controller that cannot write its files (a file stands where its directory goes): each write is
     * tried again, fails, is counted, and after tailguard.controller.max-state-write-failures in a row
     * the run stops: exit 1 and one line naming the key and the file.
     */
    @Test
    void aControllerThatCannotWriteItsStateStopsTheRunWithExitOne(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("run");
        Files.createDirectories(out);
        Files.writeString(out.resolve("controller"), "in the way of the controller's directory");
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.steps=1000", "--set", "tailguard.train.eval-n=0", "--set", "tailguard.train.context-min=64",
                "--set", "tailguard.train.context-max=96", "--set", "tailguard.rollout.group-size=2",
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0",
                "--set", "tailguard.controller.state-write-attempts=2", "--set", "tailguard.controller.state-write-backoff=10ms",
                "--set", "tailguard.controller.max-state-write-failures=2");
        assertEquals(1, r.code(), r.err());
        String[] lines = r.err().strip().split("\n");
        String last = lines[lines.length - 1];
        assertTrue(last.startsWith("tailguard: the run stops: cannot write " + out.resolve("controller"))
                && last.endsWith("(2 failures in a row; tailguard.controller.max-state-write-failures = 2)"), r.err());
        assertTrue(r.out().isBlank(), "no summary for a stopped run: " + r.out());
    }

    @Test
    void calibrateOnlyWritesTheRunsCalibratedScheduleAndStops(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("cal");
        String[] common = {"--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.context-min=64", "--set", "tailguard.train.context-max=96",
                "--set", "tailguard.controller.max-budget=64", "--set", "tailguard.controller.bin-width=64",
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0"};
        String[] fixed = java.util.stream.Stream.concat(java.util.Arrays.stream(new String[] {"train", "--calibrate-only",
                "--set", "tailguard.controller.schedule=", "--json"}), java.util.Arrays.stream(common)).toArray(String[]::new);
        CliBadInputTest.Run bad = CliBadInputTest.cli(fixed);
        assertEquals(2, bad.code(), bad.err());
        assertTrue(bad.err().contains("--calibrate-only") && bad.err().contains("tailguard.controller.schedule"), bad.err());
        String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(new String[] {"train", "--calibrate-only",
                "--set", "tailguard.controller.schedule=calibrate", "--json"}), java.util.Arrays.stream(common)).toArray(String[]::new);
        CliBadInputTest.Run r = CliBadInputTest.cli(args);
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        Path file = out.resolve("calibrated.conf");
        assertEquals(file.toString(), j.get("schedule").getAsString());
        assertEquals(io.tailguard.rollout.sparse.Schedule.parse(file).budgets().length, j.get("budgets").getAsJsonArray().size());
        assertTrue(j.get("calibration_seconds").getAsDouble() >= 0, j.toString());
        assertTrue(!Files.exists(out.resolve("store")) && !Files.exists(out.resolve("run-record.json")), "no run: " + r.err());
    }

    @Test
    void trainsAsynchronouslyPublishesEveryVersionAndWritesTheReport(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("run");
        Path schedule = tmp.resolve("fixed.conf");
        Files.writeString(schedule, "tailguard.schedule { version = 1, kind = fixed, budget = 48 }\n");
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.steps=2", "--set", "tailguard.train.eval-n=2", "--set", "tailguard.train.context-min=64",
                "--set", "tailguard.train.context-max=96", "--set", "tailguard.rollout.group-size=4",
                "--set", "tailguard.learner.groups-per-step=2", "--set", "tailguard.controller.window=1s",
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0", "--set", "tailguard.train.compare-schedule=" + schedule,
                // start sparse (budget 48 under contexts of 64 to 96) and measure the speedup in every lease
                "--set", "tailguard.controller.schedule=" + schedule, "--set", "tailguard.rollout.speedup-every=1",
                "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        assertEquals(2, j.get("steps").getAsInt());
        for (String k : new String[] {"pass_at_1_start", "pass_at_1_end", "rollout_speedup", "tail_in_band_fraction", "report",
                "compare_speedup", "speedup_vs_compare"}) {
            assertTrue(j.has(k), k + " missing: " + j);
        }
        // the first lease runs under the sparse start schedule, so at least one lease measured the speedup
        assertEquals("in-run", j.get("rollout_speedup_source").getAsString());
        assertTrue(j.get("speedup_measurements").getAsInt() >= 1, j.toString());
        for (String k : new String[] {"rollout_speedup", "rollout_wall_speedup", "predicted_decode_speedup"}) {
            assertTrue(j.get(k).getAsDouble() > 0, k + ": " + j);
        }
        double decodeFraction = j.get("decode_fraction").getAsDouble();
        assertTrue(decodeFraction > 0 && decodeFraction < 1, j.toString());
        assertTrue(r.err().contains("rollout speedup, lease"), r.err());
        Path report = Path.of(j.get("report").getAsString());
        for (String f : new String[] {"report.html", "reward.png", "alpha.png", "budget.png", "throughput.png", "rollout.png",
                "speedup.png"}) {
            assertTrue(Files.size(report.resolve(f)) > 0, f);
        }
        assertTrue(Files.isRegularFile(out.resolve("store/v000001/manifest.json")));
        assertTrue(Files.isRegularFile(out.resolve("store/v000002/manifest.json")));
        assertTrue(Files.readString(out.resolve("learner/trainer-state.json")).contains("\"step\": 2"));
        assertTrue(r.err().contains("now rolls out with policy v1"), r.err());
        assertTrue(r.err().contains("step 2/2"), r.err());
        assertEquals("[48]", j.get("compare_budgets").toString());

        // schedule = calibrate: the offline calibration runs first, the controller starts from it,
        // and the end-of-run timing compares against it
        Path cal = tmp.resolve("run-cal");
        CliBadInputTest.Run rc = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + cal,
                "--set", "tailguard.train.steps=1", "--set", "tailguard.train.eval-n=0", "--set", "tailguard.train.context-min=64",
                "--set", "tailguard.train.context-max=96", "--set", "tailguard.rollout.group-size=4",
                "--set", "tailguard.learner.groups-per-step=1", "--set", "tailguard.controller.window=1s",
                "--set", "tailguard.controller.schedule=calibrate", "--set", "tailguard.metrics.port=0",
                "--set", "tailguard.admin.port=0", "--set", "tailguard.rollout.speedup-every=0", "--json");
        assertEquals(0, rc.code(), rc.err());
        String[] calLines = rc.out().strip().split("\n");
        JsonObject cj = JsonParser.parseString(calLines[calLines.length - 1]).getAsJsonObject();
        Path calFile = cal.resolve("calibrated.conf");
        assertTrue(Files.isRegularFile(calFile));
        assertEquals(calFile.toString(), cj.get("compare_schedule").getAsString());
        assertEquals(java.util.Arrays.toString(io.tailguard.rollout.sparse.Schedule.parse(calFile).budgets()).replace(" ", ""),
                cj.get("compare_budgets").toString());
        assertTrue(rc.err().contains("calibration: budgets"), rc.err());
        // no lease measured the speedup (speedup-every = 0): it is timed at the end, and says so
        assertEquals("end-of-run", cj.get("rollout_speedup_source").getAsString());
        assertEquals(0, cj.get("speedup_measurements").getAsInt());

        // The run directory belongs to its warm start: another checkpoint over it is refused.
        Path other = tmp.resolve("other");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--seed", "5", "--out", other.toString()).code());
        // the same run again: its steps are done, so it is refused and its record left as it was
        byte[] record = Files.readAllBytes(out.resolve(RunRecord.FILE_NAME));
        CliBadInputTest.Run rerun = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.steps=2", "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0");
        assertEquals(2, rerun.code(), rerun.err());
        assertTrue(rerun.err().contains("holds a finished run of 2 steps") && rerun.err().contains("tailguard.train.out"), rerun.err());
        org.junit.jupiter.api.Assertions.assertArrayEquals(record, Files.readAllBytes(out.resolve(RunRecord.FILE_NAME)));
        CliBadInputTest.Run again = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + other,
                "--set", "tailguard.train.out=" + out, "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0");
        assertEquals(2, again.code(), again.err());
        assertTrue(again.err().contains("warm-start.json"), again.err());
        // a compare schedule that is not there: exit 2 naming it, before anything runs
        CliBadInputTest.Run missing = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init,
                "--set", "tailguard.train.out=" + tmp.resolve("run2"), "--set", "tailguard.train.compare-schedule=" + tmp.resolve("nope.conf"));
        assertEquals(2, missing.code(), missing.err());
        assertTrue(missing.err().contains("nope.conf"), missing.err());
        assertTrue(Files.notExists(tmp.resolve("run2")));
    }

    /**
     * The main job with compressed rollouts on: every published version is quantized (4-bit RTN),
     * the controller offers it, and the run's JSON names the option in use at the end (the chosen
     * combination of format and schedule) with its predicted and measured speed.
     */
    @Test
    void withCompressedRolloutsTheRunReportsTheChosenCombination(@TempDir Path tmp) throws Exception {
        Path init = tmp.resolve("init");
        assertEquals(0, CliBadInputTest.cli("init-model", "--preset", "tiny", "--out", init.toString()).code());
        Path out = tmp.resolve("run");
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.checkpoint=" + init, "--set", "tailguard.train.out=" + out,
                "--set", "tailguard.train.steps=4", "--set", "tailguard.train.eval-n=0", "--set", "tailguard.train.context-min=64",
                "--set", "tailguard.train.context-max=96", "--set", "tailguard.rollout.group-size=4",
                "--set", "tailguard.learner.groups-per-step=2", "--set", "tailguard.controller.window=500ms",
                "--set", "tailguard.controller.min-tokens=20", "--set", "tailguard.rollout.speedup-every=0",
                "--set", "tailguard.metrics.port=0", "--set", "tailguard.admin.port=0",
                "--set", "tailguard.compression.every=1", "--set", "tailguard.compression.method=rtn",
                "--set", "tailguard.compression.bits=4", "--set", "tailguard.compression.calibration=2",
                "--set", "tailguard.compression.held-out=1", "--set", "tailguard.compression.rollout=on",
                "--set", "tailguard.compression.probe-share=0.5", "--json");
        assertEquals(0, r.code(), r.err());
        String[] lines = r.out().strip().split("\n");
        JsonObject j = JsonParser.parseString(lines[lines.length - 1]).getAsJsonObject();
        // a window closes every 500 ms: the run's windows saw v1 offered unless the run ended first
        if (!j.get("compressed_rollout").isJsonObject()) {
            assertEquals("no compressed version was offered", j.get("compressed_rollout").getAsString());
            return;
        }
        JsonObject c = j.getAsJsonObject("compressed_rollout");
        String inUse = c.get("in_use").getAsString();
        assertTrue(inUse.equals("plain") || inUse.equals("rtn4"), c.toString());
        assertEquals(inUse.equals("plain") ? -1 : c.get("versions").getAsJsonArray().asList().stream()
                .mapToLong(com.google.gson.JsonElement::getAsLong).max().orElseThrow(), c.get("in_use_version").getAsLong(), c.toString());
        int previous = 0;
        for (com.google.gson.JsonElement b : c.getAsJsonArray("in_use_budgets")) {
            assertTrue(b.getAsInt() >= previous && b.getAsInt() >= 48, c.toString());
            previous = b.getAsInt();
        }
        assertTrue(c.get("in_use_predicted_speedup").getAsDouble() > 0, c.toString());
        int windows = 0;
        for (var e : c.getAsJsonObject("windows_in_use_by_format").entrySet()) {
            assertTrue(e.getKey().equals("plain") || e.getKey().equals("rtn4"), c.toString());
            windows += e.getValue().getAsInt();
        }
        assertTrue(windows >= c.get("windows_offered").getAsInt(), c.toString());
        assertTrue(c.has("measured_speedup_vs_plain") && c.has("in_use_tokens_per_s") && c.has("plain_tokens_per_s"), c.toString());
    }

    @Test
    void aNegativeSpeedupEveryIsOneLineNamingTheKey(@TempDir Path tmp) {
        CliBadInputTest.Run r = CliBadInputTest.cli("train", "--set", "tailguard.train.out=" + tmp.resolve("run"),
                "--set", "tailguard.rollout.speedup-every=-1");
        assertEquals(2, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("tailguard.rollout.speedup-every: must be >= 0, got -1"), r.err());
        assertTrue(Files.notExists(tmp.resolve("run")));
    }
}
