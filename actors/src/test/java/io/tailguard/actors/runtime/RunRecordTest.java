package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The run record: what a train run saw, written when it ends and read back by compare-runs. */
class RunRecordTest {
    static final long T0 = 1_700_000_000_000L;

    @Test
    void heldOutEvaluationsFallEveryKStepsBesidesTheStartAndTheEnd() {
        // eval-every 20: steps 20, 40, ...; the start (step 0) and the last step are evaluated apart
        assertFalse(Learner.evaluatesAt(0, 20));
        assertFalse(Learner.evaluatesAt(19, 20));
        assertTrue(Learner.evaluatesAt(20, 20));
        assertFalse(Learner.evaluatesAt(30, 20));
        assertTrue(Learner.evaluatesAt(40, 20));
        assertTrue(Learner.evaluatesAt(1, 1));
        // 0: the start and the end only
        assertFalse(Learner.evaluatesAt(20, 0));
    }

    @Test
    void aRecordRoundTripsWithNaNAsNullAndTimesSinceTheStart(@TempDir Path tmp) throws Exception {
        RunRecorder rec = new RunRecorder(new PrintStream(OutputStream.nullOutputStream()), 2);
        rec.on(new RunObserver.Evaluated(0, 0.25, T0 + 2_000, 1.5));
        rec.on(new RunObserver.Window(T0 + 4_000, 3, new int[] {64, 128}, new double[] {0.91, Double.NaN}, new long[] {310, 0}, 0.86,
                1.7, new String[0], null, new double[] {0.9, 0.95}, new long[] {1200, 240}));
        rec.on(new RunObserver.Step(1, 0, 0.5, 0.25, 4, 0, 0, 0, -0.01, 0.1, 0.02, 1e-3, 0.8, 512, 256.0, T0 + 5_000, 5e-5));
        rec.on(new RunObserver.Step(2, 1, 0.75, 0.5, 4, 0, 0, 1, Double.NaN, Double.NaN, Double.NaN, Double.NaN, 0.7, 300, 0.0,
                T0 + 9_000, 1e-4));
        rec.on(new RunObserver.Evaluated(2, 0.5, T0 + 9_500, 1.0));
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("seed", 7L);
        settings.put("tau", 0.86);
        settings.put("calibration_seconds", Double.NaN);
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("steps", 2);
        summary.put("final_budgets", new int[] {64, 128});
        RunRecord r = RunRecord.of(rec, T0, T0 + 11_000, settings, summary);
        Path dir = tmp.resolve("run");
        r.write(dir.resolve(RunRecord.FILE_NAME));
        assertTrue(Files.readString(dir.resolve(RunRecord.FILE_NAME)).contains("\"calibration_seconds\": null"));

        RunRecord back = RunRecord.read(dir);
        assertEquals(T0, back.startMillis());
        assertEquals(11.0, back.endSeconds());
        assertEquals(7.0, back.settings().get("seed"));
        assertNull(back.settings().get("calibration_seconds"));
        assertEquals(List.of(64.0, 128.0), back.summary().get("final_budgets"));
        assertEquals(2, back.steps().size());
        RunRecord.StepRow s1 = back.steps().get(0);
        assertEquals(new RunRecord.StepRow(1, 5.0, 0.5, 0.25, 512, 256.0, 2.0, 0.8, 0.02, -0.01, 0), s1); // 512 tokens at 256/s
        RunRecord.StepRow s2 = back.steps().get(1);
        assertEquals(9.0, s2.seconds());
        assertTrue(Double.isNaN(s2.tisTruncated()));
        assertTrue(Double.isNaN(s2.rolloutSeconds())); // no rate, no seconds
        assertEquals(1, back.windows().size());
        RunRecord.WindowRow w = back.windows().get(0);
        assertEquals(4.0, w.seconds());
        assertEquals(3, w.scheduleVersion());
        assertArrayEquals(new int[] {64, 128}, w.budgets());
        assertArrayEquals(new double[] {0.91, Double.NaN}, w.alphaP5());
        assertArrayEquals(new long[] {310, 0}, w.tokens());
        assertArrayEquals(new double[] {0.9, 0.95}, w.judgedP5());
        assertArrayEquals(new long[] {1200, 240}, w.judgedTokens());
        assertEquals(0.86, w.tau());

        // a record written before judged_p5 existed: the window's own tails stand for the judged ones
        String text = Files.readString(dir.resolve(RunRecord.FILE_NAME));
        String older = text.replaceAll("\"judged_p5\": \\[[^\\]]*\\],?\\s*", "").replaceAll("\"judged_tokens\": \\[[^\\]]*\\],?\\s*", "");
        assertFalse(older.contains("judged"), older);
        Files.writeString(dir.resolve(RunRecord.FILE_NAME), older);
        RunRecord.WindowRow old = RunRecord.read(dir).windows().get(0);
        assertArrayEquals(new double[] {0.91, Double.NaN}, old.judgedP5());
        assertArrayEquals(new long[] {310, 0}, old.judgedTokens());
        assertEquals(List.of(new RunRecord.EvalRow(0, 2.0, 0.25, 1.5), new RunRecord.EvalRow(2, 9.5, 0.5, 1.0)), back.evaluations());
        assertEquals(List.of(List.of(0, 2.0, 0.25), List.of(2, 9.5, 0.5)), RunRecord.curve(rec.evaluations(), T0));
    }

    @Test
    void aMissingOrMalformedRecordIsRefusedNamingTheFileAndTheField(@TempDir Path tmp) throws Exception {
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> RunRecord.read(tmp));
        assertTrue(none.getMessage().startsWith(tmp.resolve(RunRecord.FILE_NAME) + ": no run record"), none.getMessage());
        Path f = tmp.resolve(RunRecord.FILE_NAME);
        Files.writeString(f, "{\"format\":1,\"start_millis\":0,\"end_seconds\":1,\"settings\":{},\"summary\":{},\"windows\":[],"
                + "\"evaluations\":[]}");
        IllegalArgumentException steps = assertThrows(IllegalArgumentException.class, () -> RunRecord.read(f));
        assertEquals(f + ": steps: missing", steps.getMessage());
        Files.writeString(f, "{\"format\":1,\"start_millis\":0,\"end_seconds\":1,\"settings\":{},\"summary\":{},\"steps\":[],\"windows\":[],"
                + "\"evaluations\":[{\"step\":0,\"seconds\":1,\"eval_seconds\":1}]}");
        IllegalArgumentException pass = assertThrows(IllegalArgumentException.class, () -> RunRecord.read(f));
        assertEquals(f + ": evaluations[0].pass_at_1: missing", pass.getMessage());
        Files.writeString(f, "{\"format\":2}");
        IllegalArgumentException format = assertThrows(IllegalArgumentException.class, () -> RunRecord.read(f));
        assertEquals(f + ": format: 2, this version reads 1", format.getMessage());
        Files.writeString(f, "not json {");
        IllegalArgumentException garbage = assertThrows(IllegalArgumentException.class, () -> RunRecord.read(f));
        assertTrue(garbage.getMessage().startsWith(f + ": "), garbage.getMessage());
    }

    @Test
    void theSettingsNameTheRunSeedAndTheSamplingSeed() {
        RunSettings s = TuningBookTest.settings("tailguard.train.seed = 11\ntailguard.train.sampling-seed = 11002");
        Map<String, Object> m = RunRecord.settingsOf(s, "", io.tailguard.rollout.sparse.Schedule.dense(), Double.NaN);
        assertEquals(11L, m.get("seed"));
        assertEquals(11002L, m.get("sampling_seed"));
    }
}
