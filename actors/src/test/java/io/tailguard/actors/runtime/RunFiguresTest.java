package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import java.io.PrintStream;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The end-of-run rules of `train`, on windows made by hand. */
class RunFiguresTest {
    static RunObserver.Window window(int[] budgets, double[] alphaP5, long[] tokens) {
        return new RunObserver.Window(0, 2, budgets, alphaP5, tokens, 0.86, 1.5, new String[0], null);
    }

    @Test
    void theFinalScheduleIsTheLastWindowsWithTheStartSchedulesDenseLayers() {
        assertEquals(Schedule.dense(), RunFigures.finalSchedule(null, 64, Set.of(0, 3)));
        Schedule last = RunFigures.finalSchedule(window(new int[] {64, 128}, new double[] {0.9, 0.9}, new long[] {1, 1}), 64,
                Set.of(0, 3));
        assertArrayEquals(new int[] {64, 128}, last.budgets());
        assertEquals(64, last.binWidth());
        assertEquals(List.of(0, 3), List.copyOf(last.denseLayers()));
    }

    @Test
    void tailsInBandCountAfterTheFirstFifthOfTheWindows() {
        RunRecorder r = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        // τ = 0.86, band [0.83, 0.91]; 5 windows: the first one is not judged
        r.on(window(new int[] {64}, new double[] {0.50}, new long[] {100}));
        assertTrue(Double.isNaN(RunFigures.tailInBandFraction(r, 1, 10, 48, false)), "one window: nothing after the first");
        r.on(window(new int[] {64, 64}, new double[] {0.84, 0.20}, new long[] {100, 5})); // bin 1: too few tokens
        r.on(window(new int[] {64}, new double[] {0.92}, new long[] {100}));
        r.on(window(new int[] {64}, new double[] {0.80}, new long[] {100}));
        r.on(window(new int[] {64}, new double[] {0.90}, new long[] {100}));
        // judged: 0.84 in, 0.92 out, 0.80 out, 0.90 in
        assertEquals(0.5, RunFigures.tailInBandFraction(r, 5, 10, 48, false), 1e-12);
        // ten windows: the first two are not judged
        for (int k = 0; k < 5; k++) {
            r.on(window(new int[] {64}, new double[] {0.86}, new long[] {100}));
        }
        // judged: 0.92 out, 0.80 out, 0.90 in, five times 0.86 in
        assertEquals(6 / 8.0, RunFigures.tailInBandFraction(r, 10, 10, 48, false), 1e-12);
    }

    @Test
    void aBinIsJudgedOnTheEvidenceTheControllerJudgedItOn() {
        RunRecorder r = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        // τ = 0.86, band [0.83, 0.91]; the first window is not judged. Window tails of 40 tokens are too
        // few alone (min-tokens 200), the controller's kept windows merged hold 160 and then 240
        r.on(new RunObserver.Window(0, 2, new int[] {64}, new double[] {0.5}, new long[] {40}, 0.86, 1.5, new String[0], null,
                new double[] {0.5}, new long[] {40}));
        r.on(new RunObserver.Window(0, 2, new int[] {64}, new double[] {0.2}, new long[] {40}, 0.86, 1.5, new String[0], null,
                new double[] {0.85}, new long[] {160}));
        assertTrue(Double.isNaN(RunFigures.tailInBandFraction(r, 2, 200, 48, false)), "160 merged tokens: not judged");
        r.on(new RunObserver.Window(0, 2, new int[] {64}, new double[] {0.99}, new long[] {40}, 0.86, 1.5, new String[0], null,
                new double[] {0.88}, new long[] {240}));
        // the window's own 0.99 over 40 tokens is neither counted nor read: the merged 0.88 is in band
        assertEquals(1.0, RunFigures.tailInBandFraction(r, 2, 200, 48, false), 1e-12);
        r.on(new RunObserver.Window(0, 2, new int[] {64}, new double[] {0.86}, new long[] {400}, 0.86, 1.5, new String[0], null,
                new double[] {0.70}, new long[] {640}));
        assertEquals(0.5, RunFigures.tailInBandFraction(r, 2, 200, 48, false), 1e-12, "merged 0.70: below the band");
    }

    @Test
    void aTailAboveTheBandCountsAsHeldOnlyWhereItsBinIsAtTheLeastBudget() {
        RunRecorder r = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        // τ = 0.86, band [0.83, 0.91], min-budget 48; the first window is not judged
        r.on(window(new int[] {48}, new double[] {0.99}, new long[] {100}));
        r.on(window(new int[] {48, 64}, new double[] {0.99, 0.99}, new long[] {100, 100})); // held at the floor; 64 could go lower
        r.on(window(new int[] {48, 48}, new double[] {0.80, 0.95}, new long[] {100, 100})); // below the band even at 48; held
        r.on(window(new int[] {48, 96}, new double[] {0.88, 0.97}, new long[] {100, 100})); // in band; above it at 96
        r.on(window(new int[] {48, 48}, new double[] {0.99, 0.99}, new long[] {100, 5}));   // held; too few tokens to judge
        // judged: 0.99@48 in, 0.99@64 out, 0.80@48 out, 0.95@48 in, 0.88@48 in, 0.97@96 out, 0.99@48 in
        assertEquals(4 / 7.0, RunFigures.tailInBandFraction(r, 5, 10, 48, false), 1e-12);
        // above the band at the floor: 0.99, 0.95, 0.99
        assertEquals(3 / 7.0, RunFigures.tailInBandFraction(r, 5, 10, 48, true), 1e-12);
        // with a floor of 64, the 64 bin above the band counts too
        assertEquals(5 / 7.0, RunFigures.tailInBandFraction(r, 5, 10, 64, false), 1e-12);
    }

    @Test
    void withAnotherOptionInUseItsTailIsJudgedAtItsOwnBudgets() {
        RunRecorder r = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        // the plain policy's schedule at 96, the option in use (plain+kv16) at the floor 48: its 0.99 is held there
        RunObserver.OptionWindow kv16 = new RunObserver.OptionWindow(-1, false, new double[0], 10, 0, null, "plain+kv16", -1, 3,
                new int[] {48}, 1.8, 100, 90);
        for (int k = 0; k < 2; k++) {
            r.on(new RunObserver.Window(0, 2, new int[] {96}, new double[] {0.99}, new long[] {100}, 0.86, 1.5, new String[0], kv16,
                    new double[] {0.99}, new long[] {100}));
        }
        assertEquals(1.0, RunFigures.tailInBandFraction(r, 2, 10, 48, false), 1e-12);
        assertEquals(1.0, RunFigures.tailInBandFraction(r, 2, 10, 48, true), 1e-12);
        // judged at the plain schedule's 96 it would be out of band
        RunRecorder plain = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        for (int k = 0; k < 2; k++) {
            plain.on(new RunObserver.Window(0, 2, new int[] {96}, new double[] {0.99}, new long[] {100}, 0.86, 1.5, new String[0], null,
                    new double[] {0.99}, new long[] {100}));
        }
        assertEquals(0.0, RunFigures.tailInBandFraction(plain, 2, 10, 48, false), 1e-12);
        // the progress line names the option in use with its judged tail at its budgets
        RunObserver.Window w = new RunObserver.Window(0, 2, new int[] {96}, new double[] {0.99}, new long[] {100}, 0.86, 1.5,
                new String[0], kv16, new double[] {0.97}, new long[] {100});
        assertTrue(RunRecorder.tails(w).endsWith("  option plain+kv16 b0:0.97/48"), RunRecorder.tails(w));
    }

    static RunObserver.Rollout lease(double prefill, double decode, boolean measured, double live, double dense, double densePrefill,
                                     double predictedLive, double predictedDense) {
        return new RunObserver.Rollout(0, "w", 1, 1, 8, 10, prefill, decode, measured, live, dense, densePrefill, predictedLive,
                predictedDense, RunObserver.Rollout.PLAIN, prefill + decode + (measured ? densePrefill + dense : 0), 0.25, 0.125);
    }

    @Test
    void theInRunSpeedupIsDenseOverLiveDecodeSecondsSummedOverTheMeasuredLeases() {
        double nan = Double.NaN;
        RolloutTimes t = RolloutTimes.of(List.of(
                lease(1.0, 3.0, false, nan, nan, nan, nan, nan),
                // measured: live steps 2 s of its 3 s decode loop (1 s sampling); dense steps 4 s, dense prefill 1 s
                lease(1.0, 3.0, true, 2.0, 4.0, 1.0, 0.5, 1.0),
                // measured: live steps 1 s of 1.5 s (0.5 s sampling); dense steps 3 s, dense prefill 0.5 s
                lease(0.5, 1.5, true, 1.0, 3.0, 0.5, 0.25, 1.0)));
        assertEquals(2, t.measurements());
        assertEquals((4.0 + 3.0) / (2.0 + 1.0), t.speedup(), 1e-12);
        // wall: the mean of the two prefills + each mode's steps + the lease's sampling (decode loop less live steps)
        assertEquals((1.0 + 4.0 + 1.0 + 0.5 + 3.0 + 0.5) / (1.0 + 2.0 + 1.0 + 0.5 + 1.0 + 0.5), t.wallSpeedup(), 1e-12);
        RolloutTimes coldFirst = RolloutTimes.of(List.of(lease(2.0, 3.0, true, 2.0, 4.0, 1.0, 0.5, 1.0)));
        assertEquals((1.5 + 4.0 + 1.0) / (1.5 + 2.0 + 1.0), coldFirst.wallSpeedup(), 1e-12);
        assertEquals((1.0 + 1.0) / (0.5 + 0.25), t.predictedSpeedup(), 1e-12);
        // every lease: decode over prefill + decode
        assertEquals((3.0 + 3.0 + 1.5) / (1.0 + 3.0 + 1.0 + 3.0 + 0.5 + 1.5), t.decodeFraction(), 1e-12);
        // worker seconds by phase: each lease generated its prefill + decode (4, 4, 2 s) and the measured
        // ones also their dense reference (1 + 4, 0.5 + 3 s); each scored 0.25 s and replayed 0.125 s
        assertEquals(4.0 + 4.0 + 2.0, t.generationSeconds(), 1e-12);
        assertEquals(5.0 + 3.5, t.referenceSeconds(), 1e-12);
        assertEquals(3 * 0.25, t.scoringSeconds(), 1e-12);
        assertEquals(3 * 0.125, t.shadowSeconds(), 1e-12);

        RolloutTimes none = RolloutTimes.of(List.of(lease(1.0, 1.0, false, nan, nan, nan, nan, nan)));
        assertEquals(0, none.measurements());
        assertTrue(Double.isNaN(none.speedup()) && Double.isNaN(none.wallSpeedup()) && Double.isNaN(none.predictedSpeedup()));
        assertEquals(0.5, none.decodeFraction(), 1e-12);
        assertTrue(Double.isNaN(RolloutTimes.of(List.of()).decodeFraction()));
    }

    @Test
    void eachRolloutOptionGetsItsOwnSpeedupAndTheRunsSpeedupCountsThemAll() {
        double nan = Double.NaN;
        RunObserver.Rollout plain = lease(1.0, 3.0, true, 2.0, 4.0, 1.0, 0.5, 1.0);
        RunObserver.Rollout plainUnmeasured = lease(1.0, 2.0, false, nan, nan, nan, nan, nan);
        RunObserver.Rollout q4 = new RunObserver.Rollout(0, "w", 2, 1, 8, 10, 0.5, 1.5, true, 1.0, 3.0, 0.5, 0.25, 1.0, "rtn4",
                5.5, 0.25, 0);
        java.util.Map<String, RolloutTimes> by = RolloutTimes.byOption(List.of(plain, q4, plainUnmeasured));
        assertEquals(List.of(RunObserver.Rollout.PLAIN, "rtn4"), List.copyOf(by.keySet()));
        assertEquals(1, by.get(RunObserver.Rollout.PLAIN).measurements());
        assertEquals(4.0 / 2.0, by.get(RunObserver.Rollout.PLAIN).speedup(), 1e-12);
        assertEquals((3.0 + 2.0) / (1.0 + 3.0 + 1.0 + 2.0), by.get(RunObserver.Rollout.PLAIN).decodeFraction(), 1e-12);
        assertEquals(3.0 / 1.0, by.get("rtn4").speedup(), 1e-12);
        assertEquals(1.0 / 0.25, by.get("rtn4").predictedSpeedup(), 1e-12);
        assertEquals((4.0 + 3.0) / (2.0 + 1.0), RolloutTimes.of(List.of(plain, q4, plainUnmeasured)).speedup(), 1e-12);
    }

    @Test
    void aBinAboveTheBandCountsAsHeldWhereTheSequenceGuardBinds() {
        RunRecorder r = new RunRecorder(new PrintStream(PrintStream.nullOutputStream()), 1);
        // τ = 0.86 (band [0.83, 0.91]); sequence-τ 0.5 (band [0.47, 0.55]); budget 96 above the floor 48
        java.util.function.DoubleFunction<RunObserver.Window> w = seq -> new RunObserver.Window(0, 2, new int[] {96},
                new double[] {0.99}, new long[] {100}, 0.86, 1.5, new String[0], null, new double[] {0.99}, new long[] {100}, seq);
        r.on(w.apply(0.5));       // the first window is not judged
        r.on(w.apply(0.52));      // held: the sequence α in its band
        r.on(w.apply(0.80));      // not held: the sequence α far above its band, the bin could go lower
        r.on(w.apply(Double.NaN)); // not held: the sequence α not judged
        r.on(w.apply(0.47));      // held
        assertEquals(0.5, r.inBandFraction(1, 0.03, 0.05, 10, 48, 0.5, RunRecorder.Held.ALL), 1e-12);
        assertEquals(0.5, r.inBandFraction(1, 0.03, 0.05, 10, 48, 0.5, RunRecorder.Held.BY_SEQUENCE), 1e-12);
        assertEquals(0.0, r.inBandFraction(1, 0.03, 0.05, 10, 48, 0.5, RunRecorder.Held.AT_FLOOR), 1e-12);
        // without the guard none of them is held
        assertEquals(0.0, r.inBandFraction(1, 0.03, 0.05, 10, 48, 0, RunRecorder.Held.ALL), 1e-12);
    }
}
