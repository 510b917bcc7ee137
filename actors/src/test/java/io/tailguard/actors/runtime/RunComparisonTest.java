package io.tailguard.actors.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** compare-runs' figures on hand-made records; every expected number is worked out in the comments. */
class RunComparisonTest {
    static final double NaN = Double.NaN;

    static RunRecord.StepRow step(int step, double seconds, double rolloutSeconds, double tis) {
        return new RunRecord.StepRow(step, seconds, 0.5, 0.5, 100, NaN, rolloutSeconds, 1.0, tis, 0.0, 0);
    }

    static RunRecord.WindowRow window(double seconds, int[] budgets, double... alpha) {
        return new RunRecord.WindowRow(seconds, 1, budgets, alpha, new long[budgets.length], 0.86, 1.0);
    }

    static RunRecord record(double seed, double calibration, double end, List<RunRecord.StepRow> steps, List<RunRecord.WindowRow> windows,
                            List<RunRecord.EvalRow> evals) {
        Map<String, Object> settings = new java.util.LinkedHashMap<>();
        settings.put("seed", seed);
        settings.put("calibration_seconds", Double.isNaN(calibration) ? null : calibration);
        return new RunRecord(0, end, settings, Map.of(), steps, windows, evals);
    }

    /** The same with train's time split: rollout_worker_seconds by phase and learner_seconds, as the record stores them. */
    static RunRecord withTimes(RunRecord r, double generation, double reference, double scoring, double shadow, double learner) {
        Map<String, Object> worker = new java.util.LinkedHashMap<>();
        worker.put("generation", generation);
        worker.put("dense_reference", reference);
        worker.put("scoring", scoring);
        worker.put("shadow", shadow);
        Map<String, Object> summary = new java.util.LinkedHashMap<>();
        summary.put("rollout_worker_seconds", worker);
        summary.put("learner_seconds", learner);
        return new RunRecord(r.startMillis(), r.endSeconds(), r.settings(), summary, r.steps(), r.windows(), r.evaluations());
    }

    /** Dense, seed 1: pass@1 0.2 → 0.4 → 0.5, each evaluation 5 s; ends at 210 s. */
    static RunRecord dense() {
        return record(1, NaN, 210, List.of(step(10, 95, 4.0, NaN), step(20, 195, 6.0, 0.0)),
                List.of(window(50, new int[] {1024, 1024}, 0.95, NaN), window(150, new int[] {1024, 1024}, 0.97, 0.99)),
                List.of(new RunRecord.EvalRow(0, 10, 0.2, 5), new RunRecord.EvalRow(10, 100, 0.4, 5), new RunRecord.EvalRow(20, 200, 0.5, 5)));
    }

    /** Guarded, seed 1: calibrated for 30 s; pass@1 0.2 → 0.45 → 0.55; ends at 130 s. */
    static RunRecord guarded() {
        return record(1, 30, 130, List.of(step(10, 75, 2.0, 0.01), step(20, 115, 3.0, 0.03)),
                List.of(window(60, new int[] {64, 128}, 0.84, 0.88), window(100, new int[] {64, 160}, 0.87, NaN)),
                List.of(new RunRecord.EvalRow(0, 40, 0.2, 5), new RunRecord.EvalRow(10, 80, 0.45, 5), new RunRecord.EvalRow(20, 120, 0.55, 5)));
    }

    /** Unguarded, seed 2 (no dense run of that seed): pass@1 0.2 → 0.3; ends at 70 s. */
    static RunRecord unguarded() {
        return record(2, NaN, 70, List.of(step(20, 55, 1.0, 0.2)), List.of(window(30, new int[] {48, 48}, 0.5, 0.6)),
                List.of(new RunRecord.EvalRow(0, 10, 0.2, 5), new RunRecord.EvalRow(20, 60, 0.3, 5)));
    }

    static List<RunComparison.Run> runs() {
        return List.of(new RunComparison.Run("dense", Path.of("runs/dense-s1"), withTimes(dense(), 170, 0, 0, 0, 80)),
                new RunComparison.Run("guarded", Path.of("runs/guarded-s1"), withTimes(guarded(), 120, 10.5, 13, 6, 85.5)),
                new RunComparison.Run("unguarded", Path.of("runs/unguarded-s2"), unguarded()));
    }

    @Test
    void trainSecondsLeaveOutTheHeldOutEvaluationsBeforeThem() {
        RunRecord d = dense();
        // at 210: three evaluations of 5 s each began before → 210 − 15
        assertEquals(195.0, RunComparison.trainSeconds(d, 210));
        // at 200 (the third evaluation's start): the first two → 200 − 10
        assertEquals(190.0, RunComparison.trainSeconds(d, 200));
        // at 12, the first evaluation (10..15) is still running: 2 s of it → 10
        assertEquals(10.0, RunComparison.trainSeconds(d, 12));
    }

    @Test
    void eachRunIsTimedToTheFinalPassAt1OfTheReferenceRunWithItsSeed() {
        List<RunComparison.Row> rows = RunComparison.rows(runs(), "dense");
        RunComparison.Row d = rows.get(0);
        assertEquals(20, d.steps());
        assertEquals(210.0, d.wallSeconds());
        assertEquals(195.0, d.trainSeconds());
        assertEquals(15.0, d.evalSeconds());
        assertEquals(0.2, d.passStart());
        assertEquals(0.5, d.passEnd());
        assertEquals(5.0, d.meanRolloutSeconds()); // (4 + 6) / 2
        assertEquals(0.0, d.meanTisTruncated()); // the step without an update does not count
        assertArrayEquals(new double[] {0.95, 0.99}, d.minAlphaP5());
        assertArrayEquals(new double[] {0.97, 0.99}, d.lastAlphaP5());
        // its own final 0.5, first reached at the evaluation that began at 200 s: 190 train seconds
        assertEquals(0.5, d.target());
        assertEquals(190.0, d.secondsToTarget());
        assertEquals(1.0, d.ratioToReference());

        RunComparison.Row g = rows.get(1);
        assertEquals(30.0, g.calibrationSeconds());
        assertEquals(115.0, g.trainSeconds()); // 130 − 3 × 5
        assertEquals(2.5, g.meanRolloutSeconds());
        assertEquals(0.02, g.meanTisTruncated(), 1e-12);
        assertArrayEquals(new double[] {0.84, 0.88}, g.minAlphaP5());
        assertArrayEquals(new double[] {0.87, 0.88}, g.lastAlphaP5());
        // dense seed 1's 0.5, reached by pass@1 0.55 at 120 s less two evaluations: 110; 110 / 190
        assertEquals(110.0, g.secondsToTarget());
        assertEquals(190.0, g.referenceSeconds());
        assertEquals(110.0 / 190.0, g.ratioToReference(), 1e-12);
        // and over dense seed 1's whole train seconds (195: it finished after it reached its final value)
        assertEquals(195.0, g.referenceTrainSeconds());
        assertEquals(110.0 / 195.0, g.ratioToReferenceRun(), 1e-12);
        // the time split: 120 + 10.5 + 13 + 6 in all, of which 29.5 the guard's; the learner's 85.5
        assertEquals(149.5, g.workerSeconds(), 1e-12);
        assertEquals(29.5, g.guardSeconds(), 1e-12);
        assertEquals(85.5, g.learnerSeconds());
        assertEquals(0.0, d.guardSeconds());
        assertEquals(170.0, d.workerSeconds());

        // no dense run of seed 2: the mean of dense's finals (0.5) and of their times to it (190); never reached
        RunComparison.Row u = rows.get(2);
        assertEquals(0.5, u.target());
        assertEquals(190.0, u.referenceSeconds());
        assertTrue(Double.isNaN(u.secondsToTarget()));
        assertEquals(0.3, u.passEnd());
        assertArrayEquals(new double[] {0.5, 0.6}, u.minAlphaP5());
        assertTrue(Double.isNaN(u.workerSeconds()) && Double.isNaN(u.learnerSeconds()), "a record without the split");
    }

    @Test
    void runsAreComparedAtTheStepsTheirReferenceRunEvaluated() {
        List<RunComparison.Row> rows = RunComparison.rows(runs(), "dense");
        // guarded seed 1 against dense seed 1: 0.55 at dense's last step (20); gaps +0.05 at 10 and +0.05 at 20
        assertEquals(0.55, rows.get(1).passAtReferenceEnd());
        assertEquals(0.05, rows.get(1).meanGapAtEqualSteps(), 1e-12);
        assertEquals(0.5, rows.get(0).passAtReferenceEnd());
        assertEquals(0.0, rows.get(0).meanGapAtEqualSteps());
        // no dense run of seed 2: nothing to compare at equal steps
        assertTrue(Double.isNaN(rows.get(2).passAtReferenceEnd()) && Double.isNaN(rows.get(2).meanGapAtEqualSteps()));

        // a guarded run of 30 steps: compared on steps 10 and 20, which dense evaluated; its step 30 does not enter
        RunRecord longer = record(1, NaN, 160, List.of(step(30, 150, 2.0, 0.0)), List.of(),
                List.of(new RunRecord.EvalRow(0, 5, 0.2, 5), new RunRecord.EvalRow(10, 50, 0.35, 5),
                        new RunRecord.EvalRow(20, 100, 0.45, 5), new RunRecord.EvalRow(30, 150, 0.6, 5)));
        // one that evaluated at 15 and 30 only: no step in common after the start
        RunRecord offGrid = record(1, NaN, 160, List.of(step(30, 150, 2.0, 0.0)), List.of(),
                List.of(new RunRecord.EvalRow(0, 5, 0.2, 5), new RunRecord.EvalRow(15, 80, 0.4, 5), new RunRecord.EvalRow(30, 150, 0.6, 5)));
        List<RunComparison.Row> r2 = RunComparison.rows(List.of(new RunComparison.Run("dense", Path.of("d"), dense()),
                new RunComparison.Run("guarded", Path.of("g"), longer), new RunComparison.Run("guarded", Path.of("o"), offGrid)), "dense");
        assertEquals(0.45, r2.get(1).passAtReferenceEnd());
        assertEquals(-0.05, r2.get(1).meanGapAtEqualSteps(), 1e-12); // (0.35 − 0.4 + 0.45 − 0.5) / 2
        assertEquals(0.6, r2.get(1).passEnd());
        assertTrue(Double.isNaN(r2.get(2).passAtReferenceEnd()) && Double.isNaN(r2.get(2).meanGapAtEqualSteps()));
        assertEquals("−0.050", RunComparison.signed(r2.get(1).meanGapAtEqualSteps()));
        assertEquals("+0.050", RunComparison.signed(0.05));
    }

    @Test
    void replicatesOfTheReferenceAtOneSeedCountByTheirMean() {
        // a second dense run of seed 1 (another sampling seed): pass@1 0.2 → 0.3 → 0.4, ends at 230 s
        // (215 train seconds), its last evaluation at step 20 as dense's
        RunRecord replicate = record(1, NaN, 230, List.of(step(20, 195, 6.0, 0.0)), List.of(),
                List.of(new RunRecord.EvalRow(0, 10, 0.2, 5), new RunRecord.EvalRow(10, 100, 0.3, 5), new RunRecord.EvalRow(20, 200, 0.4, 5)));
        List<RunComparison.Row> rows = RunComparison.rows(List.of(new RunComparison.Run("dense", Path.of("d"), dense()),
                new RunComparison.Run("dense", Path.of("d-r2"), replicate), new RunComparison.Run("guarded", Path.of("g"), guarded())), "dense");
        RunComparison.Row g = rows.get(2);
        // the target: the replicates' mean final (0.5 + 0.4) / 2
        assertEquals(0.45, g.target(), 1e-12);
        // dense reached 0.45 at its last evaluation (190 train seconds); the replicate never did and
        // counts with its whole 215
        assertEquals(202.5, g.referenceSeconds(), 1e-12);
        assertEquals(205.0, g.referenceTrainSeconds(), 1e-12); // (195 + 215) / 2
        // guarded's 0.45 at the evaluation that began at 80 s, less the one before it: 75
        assertEquals(75.0, g.secondsToTarget());
        // gaps against each replicate: (0.05 + 0.05) / 2 and (0.15 + 0.15) / 2, then their mean
        assertEquals(0.10, g.meanGapAtEqualSteps(), 1e-12);
        assertEquals(0.55, g.passAtReferenceEnd());
        // each reference replicate against their mean: its own gap ±0.05, and the one below the mean never reaches it
        assertEquals(0.05, rows.get(0).meanGapAtEqualSteps(), 1e-12);
        assertEquals(-0.05, rows.get(1).meanGapAtEqualSteps(), 1e-12);
        assertEquals(190.0, rows.get(0).secondsToTarget());
        assertTrue(Double.isNaN(rows.get(1).secondsToTarget()));
        assertEquals(0.45, rows.get(1).target(), 1e-12);

        // a run of a seed no dense run has: the mean over dense's seeds, each seed once. With dense seed 3
        // (0.2 → 0.7, reached at train second 95 of 100), the target is (0.45 + 0.7) / 2, not the mean of
        // the three runs' finals (0.533); seed 1's replicates never reached 0.575 (195 and 215 s), seed 3
        // did at 95: reference seconds ((195 + 215) / 2 + 95) / 2; train seconds (205 + 100) / 2
        RunRecord seed3 = record(3, NaN, 110, List.of(step(20, 95, 6.0, 0.0)), List.of(),
                List.of(new RunRecord.EvalRow(0, 5, 0.2, 5), new RunRecord.EvalRow(20, 100, 0.7, 5)));
        RunComparison.Row u = RunComparison.rows(List.of(new RunComparison.Run("dense", Path.of("d"), dense()),
                new RunComparison.Run("dense", Path.of("d-r2"), replicate), new RunComparison.Run("dense", Path.of("d3"), seed3),
                new RunComparison.Run("unguarded", Path.of("u"), unguarded())), "dense").get(3);
        assertEquals(0.575, u.target(), 1e-12);
        assertEquals(150.0, u.referenceSeconds(), 1e-12);
        assertEquals(152.5, u.referenceTrainSeconds(), 1e-12);
        assertTrue(Double.isNaN(u.meanGapAtEqualSteps()), "no dense run of its seed: nothing at equal steps");
    }

    @Test
    void writesTheTableAndThePlots(@TempDir Path tmp) throws Exception {
        List<RunComparison.Run> runs = new java.util.ArrayList<>(runs());
        // a second guarded seed makes a mean row: seed 2 has no dense run, so its target is 0.5 at 190 s
        runs.add(new RunComparison.Run("guarded", Path.of("runs/guarded-s2"), record(2, 20, 100, List.of(step(20, 90, 1.0, 0.05)),
                List.of(), List.of(new RunRecord.EvalRow(0, 30, 0.3, 5), new RunRecord.EvalRow(20, 80, 0.6, 5)))));
        RunComparison.Result r = RunComparison.compare(runs, "dense", tmp.resolve("cmp"));
        String table = Files.readString(r.table());
        assertTrue(table.contains("| dense | 1 | runs/dense-s1 | 20 | 210.0 | 195.0 | 15.0 | – | 0.200 | 0.500 | 5.000 | 170.0 (0.0) | 80.0 | 0.0000 "
                + "| 0.95 0.99 | 0.97 0.99 | 0.500 | 190.0 | 1.00 |"), table);
        assertTrue(table.contains("| guarded | 1 | runs/guarded-s1 | 20 | 130.0 | 115.0 | 15.0 | 30.0 | 0.200 | 0.550 | 2.500 | 149.5 (29.5) | 85.5 | 0.0200 "
                + "| 0.84 0.88 | 0.87 0.88 | 0.500 | 110.0 | 0.58 | 0.56 | 0.550 | +0.050 |"), table);
        assertTrue(table.contains("| unguarded | 2 | runs/unguarded-s2 | 20 | 70.0 | 60.0 | 10.0 | – | 0.200 | 0.300 | 1.000 | – (–) | – | 0.2000 "
                + "| 0.50 0.60 | 0.50 0.60 | 0.500 | – | – |"), table);
        // guarded seed 2: 0.6 at 80 s less one evaluation = 75; mean of 110 and 75 = 92.5; of 130 and 100 wall = 115
        assertTrue(table.contains("| guarded | mean of 2 |  | 20.0 | 115.0 | 102.5 | 12.5 | 25.0 | 0.250 | 0.575 | 1.750 | 149.5 (29.5) | 85.5 | 0.0350 "
                + "|  |  | 0.500 | 92.5 | 0.49 |"), table);
        for (String png : new String[] {"pass_at_1_steps.png", "pass_at_1_seconds.png", "reward.png", "rollout_seconds.png",
                "tis_truncation.png", "alpha_min.png", "alpha-1-dense.png", "alpha-2-guarded-seed-1.png", "alpha-4-guarded-seed-2.png"}) {
            assertTrue(Files.size(tmp.resolve("cmp").resolve(png)) > 0, png);
            assertTrue(table.contains("(" + png + ")"), png);
        }
        String json = r.summary().toString();
        assertTrue(json.contains("\"seconds_to_target\":null"), json);
        assertTrue(json.contains("\"rollout_worker_seconds\":149.5,\"guard_seconds\":29.5,\"learner_seconds\":85.5"), json);
    }

    @Test
    void aMeanRowHasNoTimeToTargetWhereARunNeverReachedIt(@TempDir Path tmp) throws Exception {
        List<RunComparison.Run> runs = new java.util.ArrayList<>(runs());
        // a second guarded seed that ends at 0.45, below the target 0.5: the mean row's time to target
        // and its ratios are unknown, not seed 1's 110 s alone
        runs.add(new RunComparison.Run("guarded", Path.of("runs/guarded-s2"), record(2, 20, 100, List.of(step(20, 90, 1.0, 0.05)),
                List.of(), List.of(new RunRecord.EvalRow(0, 30, 0.3, 5), new RunRecord.EvalRow(20, 80, 0.45, 5)))));
        String table = Files.readString(RunComparison.compare(runs, "dense", tmp.resolve("cmp")).table());
        assertTrue(table.contains("| guarded | mean of 2 |  | 20.0 | 115.0 | 102.5 | 12.5 | 25.0 | 0.250 | 0.500 | 1.750 | 149.5 (29.5) | 85.5 | 0.0350 "
                + "|  |  | 0.500 | – | – | – |"), table);
    }

    @Test
    void aBinsP5CountsOnlyInWindowsWithMinTokensTokens() {
        Map<String, Object> settings = Map.of("seed", 1.0, "min_tokens", 100.0);
        RunRecord r = new RunRecord(0, 10, settings, Map.of(), List.of(), List.of(
                new RunRecord.WindowRow(1, 1, new int[] {48, 48}, new double[] {0.2, 0.9}, new long[] {50, 300}, 0.86, 1),
                new RunRecord.WindowRow(2, 1, new int[] {48, 48}, new double[] {0.8, 0.95}, new long[] {300, 300}, 0.86, 1),
                new RunRecord.WindowRow(3, 1, new int[] {48, 48}, new double[] {0.1, NaN}, new long[] {99, 0}, 0.86, 1)), List.of());
        // bin 0: 0.2 over 50 tokens and 0.1 over 99 do not count; bin 1: 0.9 and 0.95
        assertArrayEquals(new double[] {0.8, 0.9}, RunComparison.minAlpha(r));
        assertArrayEquals(new double[] {0.8, 0.95}, RunComparison.lastAlpha(r));
    }

    @Test
    void anUnknownReferenceIsRefused(@TempDir Path tmp) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RunComparison.compare(runs(), "sparse", tmp.resolve("cmp")));
        assertEquals("--reference: no run is labelled \"sparse\"", e.getMessage());
    }
}
