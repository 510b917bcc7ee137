package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BudgetControllerTest {
    // Bins of 256 up to 1024: ladders 64, 128 (ratio 2), then the bin's end (dense within it).
    // bin 0: [64, 128, 256]; bin 1: [64, 128, 256, 512]; bin 2: [.., 512, 768]; bin 3: [.., 512, 1024]
    static BudgetController.Settings settings(double tau) {
        return new BudgetController.Settings(tau, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 256, 1024);
    }

    /** n tokens in one bin: a share `low` of them at α = lo, the rest at α = 1. */
    static TailStats tail(int bin, int n, double lowShare, double lo) {
        TailStats t = new TailStats(256);
        for (int i = 0; i < n; i++) {
            t.add(bin * 256 + 5, i < lowShare * n ? lo : 1.0);
        }
        return t;
    }

    @Test
    void startsDenseOnTheTopRungAndMapsACalibratedScheduleUpward() {
        BudgetController dense = new BudgetController(settings(0.86), Schedule.dense());
        assertArrayEquals(new int[] {256, 512, 768, 1024}, dense.schedule().budgets());
        BudgetController cal = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {96, 96, 400, 400}));
        // 96 → the cheapest rung ≥ 96 is 128; 400 → 512
        assertArrayEquals(new int[] {128, 128, 512, 512}, cal.schedule().budgets());
        assertArrayEquals(new int[] {64, 64, 256, 256}, cal.shadowSchedule().budgets());
    }

    @Test
    void raisesABinWhoseTailFallsBelowTauMinusMarginAndCarriesTheRaiseForward() {
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        long v = c.schedule().version();
        // 10 % of bin 1's tokens at α 0.5: p5 = 0.5 < 0.84
        c.report(c.schedule(), tail(1, 200, 0.10, 0.5), null, null);
        BudgetController.Decision d = c.tick();
        assertTrue(d.changed());
        assertArrayEquals(new int[] {128, 256, 256, 256}, d.schedule().budgets());
        assertEquals(v + 1, d.schedule().version());
        assertEquals(1, d.changes().get(0).bin());
        assertTrue(d.changes().get(0).reason().contains("p5"), d.changes().get(0).reason());
    }

    @Test
    void observeReportsTheWindowsTailsButHoldsTheSchedule() {
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        long v = c.schedule().version();
        // the tail tick() raises on (p5 0.5 < 0.84), and a shadow tail it would lower on
        c.report(c.schedule(), tail(1, 200, 0.10, 0.5), c.shadowSchedule(), tail(2, 200, 0, 1));
        BudgetController.Decision d = c.observe();
        assertFalse(d.changed());
        assertArrayEquals(new int[] {128, 128, 128, 128}, d.schedule().budgets());
        assertEquals(v, d.schedule().version());
        assertEquals(1, d.window().size());
        assertEquals(1, d.window().get(0).bin());
        assertEquals(128, d.window().get(0).budget());
        assertEquals(200, d.window().get(0).tokens());
        assertEquals(0.5, d.window().get(0).p5(), 1e-9);
    }

    @Test
    void doesNotActOnFewerThanMinTokens() {
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        c.report(c.schedule(), tail(1, 50, 0.5, 0.1), null, null);
        BudgetController.Decision d = c.tick();
        assertFalse(d.changed());
        assertEquals(c.schedule().version(), d.schedule().version());
        // the window is kept: 60 more tokens cross min-tokens together
        c.report(c.schedule(), tail(1, 60, 0.5, 0.1), null, null);
        assertTrue(c.tick().changed());
    }

    @Test
    void lowersOnlyOnAShadowTailThatHoldsTauAndNeverBelowThePreviousBin() {
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 256, 256, 256}));
        Schedule shadow = c.shadowSchedule(); // {64, 128, 128, 128}
        // Bin 1's shadow at 128 holds (all α = 1); bin 0's shadow at 64 holds too.
        c.report(null, null, shadow, tail(1, 200, 0, 1));
        c.report(null, null, shadow, tail(0, 200, 0, 1));
        BudgetController.Decision d = c.tick();
        assertArrayEquals(new int[] {64, 128, 256, 256}, d.schedule().budgets());
        // a shadow tail below τ + hysteresis does not lower
        BudgetController c2 = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 256, 256, 256}));
        c2.report(null, null, c2.shadowSchedule(), tail(1, 200, 0.10, 0.86)); // p5 0.86 < 0.87
        assertFalse(c2.tick().changed());
        // lowering bin 1 below the budget of bin 0, which has rollout tokens, is refused
        BudgetController c3 = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {256, 256, 512, 512}));
        c3.report(c3.schedule(), tail(0, 200, 0, 1), null, null);
        c3.report(null, null, c3.shadowSchedule(), tail(1, 200, 0, 1));
        assertFalse(c3.tick().changed());
    }

    @Test
    void anIdleBinFollowsTheNextBinDownInsteadOfPinningIt() {
        // Long prompts: rollout tokens only from bin 1 on; bin 0 (top rung 256) never sees any.
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {256, 256, 512, 512}));
        // the shadow replays bin 1 one rung lower, at 128, although bin 0 sits at 256
        assertEquals(128, c.shadowSchedule().budgetAt(256));
        c.report(c.schedule(), tail(1, 200, 0, 1), c.shadowSchedule(), tail(1, 200, 0, 1));
        BudgetController.Decision d = c.tick();
        assertArrayEquals(new int[] {128, 128, 512, 512}, d.schedule().budgets());
        assertTrue(d.changes().stream().anyMatch(ch -> ch.bin() == 0 && ch.to() == 128 && ch.reason().contains("followed bin 1")),
                d.changes().toString());
        // once bin 0 gets tokens with a bad tail it is raised again, and the raise carries over
        c.report(c.schedule(), tail(0, 200, 0.10, 0.5), null, null);
        assertArrayEquals(new int[] {256, 256, 512, 512}, c.tick().schedule().budgets());
    }

    @Test
    void everyScheduleKeepsTheStartSchedulesDenseLayers() {
        Schedule start = Schedule.ofBins(256, new int[] {128, 128, 128, 128}).withDenseLayers(java.util.Set.of(0, 2));
        BudgetController c = new BudgetController(settings(0.86), start);
        assertEquals(start.denseLayers(), c.schedule().denseLayers());
        assertEquals(start.denseLayers(), c.shadowSchedule().denseLayers());
        c.report(c.schedule(), tail(1, 200, 0.10, 0.5), null, null);
        BudgetController.Decision d = c.tick();
        assertTrue(d.changed());
        assertEquals(start.denseLayers(), d.schedule().denseLayers());
        assertEquals(start.denseLayers(), c.retune(new BudgetController.Settings(0.9, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 256, 1024)).denseLayers());
        assertEquals(Schedule.DEFAULT_DENSE_LAYERS, new BudgetController(settings(0.86), Schedule.dense()).schedule().denseLayers());
    }

    @Test
    void settingsStateTheBudgetRule() {
        IllegalArgumentException min = assertThrows(IllegalArgumentException.class,
                () -> new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 40, 4096, 2.0, 256, 1024));
        assertEquals("min-budget: must be a multiple of 16 and >= 48, got 40", min.getMessage());
        IllegalArgumentException max = assertThrows(IllegalArgumentException.class,
                () -> new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 64, 100, 2.0, 256, 1024));
        assertEquals("max-budget: must be a multiple of 16 and >= min-budget 64, got 100", max.getMessage());
        IllegalArgumentException bin = assertThrows(IllegalArgumentException.class,
                () -> new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 8, 1024));
        assertEquals("bin-width: must be a positive multiple of 16, got 8", bin.getMessage());
    }

    @Test
    void oldWindowsAgeOut() {
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        c.report(c.schedule(), tail(2, 80, 0.5, 0.1), null, null);
        for (int i = 0; i < 4; i++) {
            c.tick(); // keep-windows 4: the 80 bad tokens drop out after the 4th empty window
        }
        c.report(c.schedule(), tail(2, 80, 0, 1.0), null, null);
        assertFalse(c.tick().changed());
    }

    @Test
    void retuneValidatesAndRemapsTheLadder() {
        assertThrows(IllegalArgumentException.class, () -> settings(2));
        BudgetController c = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {64, 64, 64, 64}));
        long v = c.schedule().version();
        Schedule after = c.retune(new BudgetController.Settings(0.9, 0.02, 0.01, 100, 4, 128, 4096, 2.0, 256, 1024));
        assertArrayEquals(new int[] {128, 128, 128, 128}, after.budgets());
        assertEquals(v + 1, after.version());
        Schedule tau = c.retune(new BudgetController.Settings(0.8, 0.02, 0.01, 100, 4, 128, 4096, 2.0, 256, 1024));
        assertEquals(v + 2, tau.version());
        assertArrayEquals(new int[] {128, 128, 128, 128}, tau.budgets());
        assertEquals(0.8, c.settings().tau());
        Schedule same = c.retune(new BudgetController.Settings(0.8, 0.02, 0.01, 100, 4, 128, 4096, 2.0, 256, 1024));
        assertEquals(v + 2, same.version());
    }

    // ---------------------------------------------------------------- the sequence guard

    /** The settings above with the sequence guard at sequence-τ, judged on 10 trajectories or more. */
    static BudgetController.Settings sequenceSettings(double sequenceTau) {
        return new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 256, 1024, sequenceTau, 10);
    }

    /**
     * `trajectories` trajectories, each with `perBin[k]` tokens in bin `bins[k]` at α = alphas[k]
     * (its α jittered by i·1e-9, for t-digest), each counted once.
     */
    static TailStats trajectories(int trajectories, int[] bins, int[] perBin, double[] alphas) {
        TailStats t = new TailStats(256);
        for (int j = 0; j < trajectories; j++) {
            for (int k = 0; k < bins.length; k++) {
                for (int i = 0; i < perBin[k]; i++) {
                    t.add(bins[k] * 256 + 3, alphas[k] - i * 1e-9);
                }
            }
            t.addSequence();
        }
        return t;
    }

    @Test
    void theSequenceGuardRaisesTheBinWithTheLargestShareWhereEveryBinsTailHolds() {
        // per trajectory 100 tokens at α 0.999 in bin 1 and 100 at 0.998 in bin 2: every p5 ≥ 0.998, yet
        // a trajectory holds 100 · 0.001 + 100 · 0.002 = 0.3 disagreements: sequence α e^−0.3 ≈ 0.741 < 0.88
        double expected = Math.exp(-(100 * 0.001 + 100 * 0.002));
        TailStats report = trajectories(10, new int[] {1, 2}, new int[] {100, 100}, new double[] {0.999, 0.998});
        BudgetController off = new BudgetController(settings(0.86), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        off.report(off.schedule(), report, null, null);
        BudgetController.Decision held = off.tick();
        assertFalse(held.changed(), held.changes().toString());

        BudgetController c = new BudgetController(sequenceSettings(0.9), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        c.report(c.schedule(), report, null, null);
        BudgetController.Decision d = c.tick();
        assertEquals(expected, d.sequenceAlpha(), 1e-4); // the α jitter moves it by about 1e-5
        // bin 2 holds the larger share (0.2 disagreements against 0.1); bin 3 follows it up
        assertArrayEquals(new int[] {128, 128, 256, 256}, d.schedule().budgets());
        assertEquals(2, d.changes().get(0).bin());
        assertTrue(d.changes().get(0).reason().contains("sequence α"), d.changes().get(0).reason());
    }

    @Test
    void theSequenceGuardIsNotJudgedOnTooFewTokensOrWithoutTrajectoriesAtABinsBudget() {
        BudgetController c = new BudgetController(sequenceSettings(0.9), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        // 12 trajectories of 5 tokens: 60 < min-tokens 100, whatever their disagreements
        c.report(c.schedule(), trajectories(12, new int[] {1}, new int[] {5}, new double[] {0.5}), null, null);
        BudgetController.Decision d = c.tick();
        assertTrue(Double.isNaN(d.sequenceAlpha()));
        assertFalse(d.changes().stream().anyMatch(ch -> ch.reason().contains("sequence")), d.changes().toString());
        // 5 trajectories of 40 tokens: 200 tokens, but 5 < min-sequences 10
        BudgetController few = new BudgetController(sequenceSettings(0.9), Schedule.ofBins(256, new int[] {128, 128, 128, 128}));
        few.report(few.schedule(), trajectories(5, new int[] {1}, new int[] {40}, new double[] {0.99}), null, null);
        assertTrue(Double.isNaN(few.tick().sequenceAlpha()));
        // 10 of them: judged, e^−(40 · 0.01) ≈ 0.670 < 0.88, and raised
        few.report(few.schedule(), trajectories(5, new int[] {1}, new int[] {40}, new double[] {0.99}), null, null);
        BudgetController.Decision judged = few.tick();
        assertEquals(Math.exp(-0.4), judged.sequenceAlpha(), 1e-4);
        assertTrue(judged.changed());
    }

    @Test
    void aLoweringMustKeepThePredictedSequenceAlphaAboveSequenceTauPlusHysteresis() {
        Schedule start = Schedule.ofBins(256, new int[] {128, 256, 256, 256});
        // at the schedule's budgets every α is 1 (sequence α 1); the shadow replays at 128 in bin 1
        TailStats actual = trajectories(10, new int[] {1}, new int[] {100}, new double[] {1.0});
        // shadow: 100 tokens at 0.999 per trajectory, p5 0.999 ≥ τ + hysteresis, 0.1 disagreements: e^−0.1 ≈ 0.905 < 0.91
        TailStats costly = trajectories(10, new int[] {1}, new int[] {100}, new double[] {0.999});
        assertTrue(Math.exp(-0.1) < 0.91);
        BudgetController off = new BudgetController(settings(0.86), start);
        off.report(off.schedule(), actual, off.shadowSchedule(), costly);
        assertArrayEquals(new int[] {128, 128, 256, 256}, off.tick().schedule().budgets());

        BudgetController blocked = new BudgetController(sequenceSettings(0.9), start);
        blocked.report(blocked.schedule(), actual, blocked.shadowSchedule(), costly);
        BudgetController.Decision d = blocked.tick();
        assertEquals(1.0, d.sequenceAlpha(), 1e-4);
        assertFalse(d.changed(), d.changes().toString());

        // 100 tokens at 0.9995: e^−0.05 ≈ 0.951 ≥ 0.91, the lowering goes ahead
        assertTrue(Math.exp(-0.05) >= 0.91);
        BudgetController ok = new BudgetController(sequenceSettings(0.9), start);
        ok.report(ok.schedule(), actual, ok.shadowSchedule(), trajectories(10, new int[] {1}, new int[] {100}, new double[] {0.9995}));
        BudgetController.Decision lowered = ok.tick();
        assertArrayEquals(new int[] {128, 128, 256, 256}, lowered.schedule().budgets());
        assertTrue(lowered.changes().get(0).reason().contains("sequence α"), lowered.changes().get(0).reason());
        // the next window, before any rollout at the new budget: judged on the shadow replays there
        assertEquals(Math.exp(-0.05), ok.tick().sequenceAlpha(), 1e-4);
    }

    @Test
    void inABreachOfTheSequenceGuardNothingIsLoweredAndTheLargestShareIsRaised() {
        Schedule start = Schedule.ofBins(256, new int[] {128, 256, 256, 256});
        BudgetController c = new BudgetController(sequenceSettings(0.9), start);
        // rolled out: 100 tokens at α 0.99 a trajectory, 1.0 disagreement, e^−1 ≈ 0.37 < 0.88 (every p5 holds);
        // the shadow at 128 reads α 1.0, which alone would predict 1.0 and lower bin 1
        c.report(c.schedule(), trajectories(10, new int[] {1}, new int[] {100}, new double[] {0.99}), c.shadowSchedule(),
                trajectories(10, new int[] {1}, new int[] {100}, new double[] {1.0}));
        BudgetController.Decision d = c.tick();
        assertEquals(Math.exp(-1), d.sequenceAlpha(), 1e-4);
        assertArrayEquals(new int[] {128, 512, 512, 512}, d.schedule().budgets());
        assertFalse(d.changes().stream().anyMatch(ch -> ch.reason().contains("shadow")), d.changes().toString());
    }

    @Test
    void sequenceTauOutsideItsRangeIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> sequenceSettings(0.995));
        assertTrue(e.getMessage().startsWith("sequence-tau"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> sequenceSettings(-0.1));
        assertThrows(IllegalArgumentException.class, () -> sequenceSettings(0.01));
        assertFalse(sequenceSettings(0).sequenceGuard());
        IllegalArgumentException m = assertThrows(IllegalArgumentException.class,
                () -> new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 256, 1024, 0.5, 0));
        assertTrue(m.getMessage().startsWith("min-sequences"), m.getMessage());
    }
}
