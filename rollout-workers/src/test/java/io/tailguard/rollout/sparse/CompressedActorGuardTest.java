package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The compressed rollout option's choice, driven by hand-made tail reports (τ 0.86, margin 0.02, hysteresis 0.01). */
class CompressedActorGuardTest {
    static final BudgetController.Settings CTL = BudgetControllerTest.settings(0.86); // min-tokens 100, keep 4 windows, bins of 256
    static final Schedule SCHED = Schedule.ofBins(256, new int[] {128, 128, 256, 256});

    static CompressedActorGuard guard(double share, int maxLag) {
        return new CompressedActorGuard(CTL, new CompressedActorGuard.Settings(true, share, maxLag));
    }

    /**
     * n tokens in one bin at α = a + i·1e-7 (so its p5 is a within 1e-4). Not all equal: t-digest
     * 3.3 trips its own assertion (tdunning/t-digest#219) when an end centroid weighs more than 1.
     */
    static TailStats flat(int bin, int n, double a) {
        TailStats t = new TailStats(256);
        for (int i = 0; i < n; i++) {
            t.add(bin * 256 + 7, a + i * 1e-7);
        }
        return t;
    }

    /** Of n leases, how many the guard sends to the compressed option. */
    static int compressedOf(CompressedActorGuard g, long policyVersion, int n) {
        int c = 0;
        for (int i = 0; i < n; i++) {
            c += g.choose(policyVersion) == CompressedActorGuard.Option.COMPRESSED ? 1 : 0;
        }
        return c;
    }

    @Test
    void aNewVersionIsProbedWithItsShareAndUsedOnceEveryJudgedBinClearsTauPlusHysteresis() {
        CompressedActorGuard g = guard(0.25, 4);
        assertEquals(0, compressedOf(g, 10, 8), "nothing offered: plain only");
        assertTrue(g.offer(10));
        assertEquals(10, compressedOf(g, 10, 40), "probing: a quarter of 40 leases");
        // bins 0 and 1 at their budgets (128): p5 0.95 and 0.88 ≥ 0.87
        g.report(10, SCHED, flat(0, 150, 0.95));
        g.report(10, SCHED, flat(1, 150, 0.88));
        CompressedActorGuard.Decision d = g.tick(11, SCHED);
        assertTrue(d.inUse() && d.changed(), d.reason());
        assertEquals(0.88, d.p5()[1], 1e-4);
        assertEquals(150, d.tokens()[0]);
        assertTrue(Double.isNaN(d.p5()[2]));
        assertEquals(30, compressedOf(g, 11, 40), "in use: all but a quarter");
    }

    @Test
    void staysOnPlainWhileAJudgedBinIsBelowTauPlusHysteresisOrTooFewTokensCame() {
        CompressedActorGuard g = guard(0.25, 4);
        g.offer(10);
        g.report(10, SCHED, flat(0, 150, 0.95));
        g.report(10, SCHED, flat(1, 150, 0.865)); // ≥ τ but < τ + hysteresis
        CompressedActorGuard.Decision d = g.tick(10, SCHED);
        assertFalse(d.inUse(), d.reason());
        assertTrue(d.reason().contains("bin 1"), d.reason());

        CompressedActorGuard few = guard(0.25, 4);
        few.offer(10);
        few.report(10, SCHED, flat(0, 60, 0.99)); // below min-tokens 100: not judged
        assertFalse(few.tick(10, SCHED).inUse());
        few.report(10, SCHED, flat(0, 60, 0.99)); // 120 over the kept windows
        assertTrue(few.tick(10, SCHED).inUse());
    }

    @Test
    void fallsBackWhenTheTailDropsBelowTauMinusMargin() {
        CompressedActorGuard g = guard(0.25, 4);
        g.offer(10);
        g.report(10, SCHED, flat(1, 200, 0.95));
        assertTrue(g.tick(10, SCHED).inUse());
        // the policy moved: 80 of 400 more tokens at α 0.5, so 80 of the kept windows' 600 (13 %): p5 0.5
        TailStats worse = new TailStats(256);
        for (int i = 0; i < 400; i++) {
            worse.add(256 + 3, (i < 80 ? 0.5 : 0.95) + i * 1e-7);
        }
        g.report(10, SCHED, worse);
        CompressedActorGuard.Decision d = g.tick(12, SCHED);
        assertFalse(d.inUse());
        assertTrue(d.changed());
        assertTrue(d.reason().contains("back to the plain policy"), d.reason());
        assertEquals(0.5, d.p5()[1], 1e-4);
        assertEquals(10, compressedOf(g, 12, 40), "probing again: a quarter");
        // a p5 between τ − margin and τ + hysteresis keeps it in use once in use (hysteresis)
        CompressedActorGuard h = guard(0.25, 4);
        h.offer(10);
        h.report(10, SCHED, flat(1, 200, 0.95));
        assertTrue(h.tick(10, SCHED).inUse());
        h.report(10, SCHED, flat(1, 2000, 0.845)); // the merged p5 is about 0.845 ≥ 0.84
        CompressedActorGuard.Decision k = h.tick(10, SCHED);
        assertTrue(k.inUse(), k.reason());
        assertFalse(k.changed());
    }

    @Test
    void aVersionMoreThanMaxLagBehindThePolicyIsNotLeasedAtAll() {
        CompressedActorGuard g = guard(0.25, 4);
        g.offer(10);
        g.report(10, SCHED, flat(0, 200, 0.99));
        assertTrue(g.tick(14, SCHED).inUse()); // 4 behind: allowed
        assertEquals(0, compressedOf(g, 15, 20), "5 behind: plain only, no probing either");
        CompressedActorGuard.Decision d = g.tick(15, SCHED);
        assertFalse(d.inUse());
        assertTrue(d.reason().contains("5 versions behind"), d.reason());
        // a newer version replaces it and is probed (the stale one had lost its use)
        assertTrue(g.offer(15));
        assertFalse(g.offer(12));
        assertEquals(15, g.version());
        assertFalse(g.inUse());
        assertEquals(5, compressedOf(g, 15, 20));
    }

    @Test
    void aNewerVersionKeepsTheOptionsTailsAndUseAndLateReportsOfTheOldOneCount() {
        CompressedActorGuard g = guard(0.25, 4);
        g.offer(10);
        g.report(10, SCHED, flat(0, 200, 0.95));
        assertTrue(g.tick(11, SCHED).inUse());
        assertTrue(g.offer(12));
        assertTrue(g.inUse(), "a version compressed from a newer policy stays in use");
        assertTrue(g.reason().contains("replaces v10"), g.reason());
        g.report(10, SCHED, flat(0, 100, 0.95)); // a late lease of v10
        g.report(12, SCHED, flat(0, 100, 0.95));
        g.report(13, SCHED, flat(0, 100, 0.10)); // a version never offered: ignored
        CompressedActorGuard.Decision d = g.tick(12, SCHED);
        assertTrue(d.inUse());
        assertEquals(400, d.tokens()[0], "200 kept from the first window, 100 + 100 in this one");
    }

    @Test
    void judgesEachBinAtTheCurrentBudgetOnly() {
        CompressedActorGuard g = guard(0.25, 4);
        g.offer(3);
        g.report(3, SCHED, flat(1, 300, 0.99)); // measured at budget 128 in bin 1
        Schedule lowered = Schedule.ofBins(256, new int[] {64, 64, 256, 256});
        CompressedActorGuard.Decision d = g.tick(3, lowered);
        assertFalse(d.inUse(), "no evidence at budget 64: " + d.reason());
        assertEquals(0, d.tokens()[1]);
        assertTrue(guard(0.25, 4).tick(0, SCHED).reason().contains("no compressed version"));
    }

    @Test
    void offSendsEveryLeaseToThePlainPolicyAndSettingsAreChecked() {
        CompressedActorGuard g = new CompressedActorGuard(CTL, new CompressedActorGuard.Settings(false, 0.25, 4));
        g.offer(2);
        g.report(2, SCHED, flat(0, 500, 0.99));
        assertFalse(g.tick(2, SCHED).inUse());
        assertEquals(0, compressedOf(g, 2, 20));
        g.retune(CTL, new CompressedActorGuard.Settings(true, 0.5, 4));
        assertEquals(10, compressedOf(g, 2, 20));
        assertThrows(IllegalArgumentException.class, () -> new CompressedActorGuard.Settings(true, 0, 4));
        assertThrows(IllegalArgumentException.class, () -> new CompressedActorGuard.Settings(true, 0.6, 4));
        assertThrows(IllegalArgumentException.class, () -> new CompressedActorGuard.Settings(true, 0.2, -1));
    }
}
