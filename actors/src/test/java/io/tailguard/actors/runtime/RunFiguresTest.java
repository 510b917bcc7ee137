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
        assertTrue(Double.isNaN(RunFigures.tailInBandFraction(r, 1, 10)), "one window: nothing after the first");
        r.on(window(new int[] {64, 64}, new double[] {0.84, 0.20}, new long[] {100, 5})); // bin 1: too few tokens
        r.on(window(new int[] {64}, new double[] {0.92}, new long[] {100}));
        r.on(window(new int[] {64}, new double[] {0.80}, new long[] {100}));
        r.on(window(new int[] {64}, new double[] {0.90}, new long[] {100}));
        // judged: 0.84 in, 0.92 out, 0.80 out, 0.90 in
        assertEquals(0.5, RunFigures.tailInBandFraction(r, 5, 10), 1e-12);
        // ten windows: the first two are not judged
        for (int k = 0; k < 5; k++) {
            r.on(window(new int[] {64}, new double[] {0.86}, new long[] {100}));
        }
        // judged: 0.92 out, 0.80 out, 0.90 in, five times 0.86 in
        assertEquals(6 / 8.0, RunFigures.tailInBandFraction(r, 10, 10), 1e-12);
    }
}
