package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.ApproximationBudget;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rollout options' accounting around the approximation budget, without an actor system. */
class OptionBookTest {
    static final BudgetController.Settings CTL = new BudgetController.Settings(0.86, 0.02, 0.01, 200, 4, 48, 512, 1.25, 256, 1024);
    static final Schedule SCHED = Schedule.ofBins(256, new int[] {128, 128, 256, 256});
    /** SCHED on the controller's ladder (48 · 1.25^k, to pages): each bin's cheapest rung at least as large. */
    static final Schedule PLACED = new BudgetController(CTL, SCHED).schedule();
    /** Options priced by their weight format alone: plain 4, every compressed format 1. */
    static final ApproximationBudget.Pricing BY_FORMAT = (f, s) -> f.isPlain() ? 4 : 1;

    static CompressedPublished version(long v) {
        return new CompressedPublished(v, "file:///tmp/store/compressed/v" + v + "/", "ab".repeat(32), "rtn", 4, 0.01);
    }

    static OptionBook book(boolean on, double share, int maxLag, long nowNanos) {
        return new OptionBook(new BudgetController(CTL, SCHED), new ApproximationBudget.Settings(on, share, maxLag), BY_FORMAT, nowNanos);
    }

    /** A lease's report: n tokens in bin 1 at α 0.95 under PLACED, by compressed version v (−1: the policy). */
    static Controller.TailReport report(long v, int n) {
        TailStats t = new TailStats(256);
        for (int i = 0; i < n; i++) {
            t.add(300, 0.95 + i * 1e-7);
        }
        return new Controller.TailReport("w", ScheduleSpec.of(PLACED), t.toBytes(), null, null, n, 1.0, v, v < 0 ? "" : "rtn4");
    }

    @Test
    void tokensPerOptionWindowRateAndShare() {
        OptionBook book = book(false, 0.25, 50, 1_000_000_000L);
        book.offer(version(3));
        assertTrue(book.report(report(3, 300)), "a compressed lease");
        assertFalse(book.report(report(-1, 100)), "a plain lease");
        OptionBook.Window w = book.tick(3_000_000_000L, 0, true); // a 2 s window
        assertEquals(100, w.plainTokens());
        assertEquals(300, w.compressedTokens());
        assertEquals(200.0, book.rate(), 1e-9); // 400 tokens / 2 s
        assertEquals(0.75, book.view(0).tokenShare(), 1e-12); // 300 of 400 over the run
        book.report(report(-1, 600));
        w = book.tick(4_000_000_000L, 0, true);
        assertEquals(600, w.plainTokens());
        assertEquals(0, w.compressedTokens(), "a window starts empty");
        assertEquals(600.0, book.rate(), 1e-9);
        assertEquals(0.3, book.view(0).tokenShare(), 1e-12); // 300 of 1000
    }

    @Test
    void eachLeasesTailsGoToTheOptionThatRolledOutAndTheStatusShowsTheChosenCombination() {
        OptionBook book = book(true, 0.25, 50, 0);
        book.offer(version(3));
        book.report(report(3, 300));
        book.report(report(-1, 100)); // under min-tokens 200: the plain policy judges nothing
        OptionBook.Window w = book.tick(1_000_000_000L, 3, true);
        assertEquals("rtn4", w.decision().inUse(), w.decision().reason());
        assertEquals(300, w.decision().chosen().tokens()[1]);
        assertEquals(100, w.decision().plain().tokens()[1], "the plain lease's tails are the plain budget controller's");
        ControllerStatus.Approximation a = book.approximation(3, (f, s) -> f.isPlain() ? 1.0 : 4.0);
        assertEquals("rtn4", a.inUse());
        assertEquals(3.0, a.measuredSpeedupVsPlain(), 1e-12, "300 tokens/s over 100 tokens/s");
        assertEquals(2, a.options().length);
        assertEquals("plain", a.options()[0].label());
        assertTrue(a.options()[1].inUse());
        assertEquals(4.0, a.options()[1].predictedSpeedup());
        assertEquals(PLACED.budgets()[1], a.options()[1].budgets()[1]);
        assertTrue(book.view(3).inUse());
        assertEquals(3, book.view(3).version());
    }

    @Test
    void theNewestVersionIsOfferedAndTheProbeShareOfLeasesGetsIt() {
        OptionBook book = book(true, 0.5, 10, 0);
        assertEquals(-1, book.view(0).version());
        assertNull(book.choose(0).compressed(), "nothing offered: the policy");
        CompressedPublished v3 = version(3);
        assertTrue(book.offer(v3));
        assertFalse(book.offer(version(2)), "an older version is no offer");
        assertEquals(3, book.view(3).version());
        assertEquals(v3.describe(), book.view(3).describe());
        // not in use: every second lease (probe share 0.5) goes to the compressed version, with its own shadow schedule
        assertNull(book.choose(3).compressed());
        OptionBook.Pick probe = book.choose(3);
        assertSame(v3, probe.compressed());
        assertEquals(PLACED, probe.schedule(), "a new format starts on the schedule of the option in use");
        assertNull(book.choose(3).compressed());
        assertSame(v3, book.choose(3).compressed());
        // more than max-lag versions behind the policy: no lease at all
        assertNull(book.choose(14).compressed());
        assertNull(book.choose(14).compressed());
        // tuned off: the policy only
        book.retune(CTL, new ApproximationBudget.Settings(false, 0.5, 10));
        assertFalse(book.view(3).on());
        assertNull(book.choose(3).compressed());
        assertNull(book.choose(3).compressed());
    }

    @Test
    void aFloat16CacheOptionIsLeasedWithItsWeightsVersionAndItsTailsGoToIt() {
        // priced: plain 4, plain+kv16 3, rtn4 2, rtn4+kv16 1
        ApproximationBudget.Pricing price = (f, s) -> (f.ownWeights() ? 3 : 1) + (f.cacheBits() == 16 ? 0 : 1);
        OptionBook book = new OptionBook(new BudgetController(CTL, SCHED), new ApproximationBudget.Settings(true, 0.25, 50), price,
                true, 0);
        book.offer(version(3));
        TailStats t = new TailStats(256);
        for (int i = 0; i < 300; i++) {
            t.add(300, 0.95 + i * 1e-7);
        }
        // a lease of the policy on a float16 cache reports its own label with version −1; 4-bit on float16, version 3
        book.report(new Controller.TailReport("w", ScheduleSpec.of(PLACED), t.toBytes(), null, null, 300, 1.0, -1, "plain+kv16"));
        book.report(new Controller.TailReport("w", ScheduleSpec.of(PLACED), t.toBytes(), null, null, 300, 1.0, 3, "rtn4+kv16"));
        OptionBook.Window w = book.tick(1_000_000_000L, 3, true);
        assertEquals(0, w.decision().plain().tokens()[1], "not the plain policy's tails");
        assertEquals(300, w.decision().options().get(1).tokens()[1], "plain+kv16's own");
        // both meet τ; the cheaper, the combination, is in use, and its leases carry version 3 on a float16 cache
        assertEquals("rtn4+kv16", w.decision().inUse(), w.decision().reason());
        OptionBook.Pick p = book.choose(3);
        assertTrue(p.halfCache(), "the lease rolls out on a float16 cache");
        assertEquals(3, p.compressed().version());
        assertEquals("rtn4", p.compressed().format().label());
        // its probes go to its neighbour in price, 4-bit on a float32 cache: weights version 3, no float16 cache
        OptionBook.Pick probe = book.choose(3);
        for (int i = 0; i < 8 && probe.halfCache(); i++) {
            probe = book.choose(3);
        }
        assertFalse(probe.halfCache());
        assertEquals(3, probe.compressed().version());
        // the run record judges the tail of the option in use: its p5 in bin 1, where the plain policy had no tokens
        RunObserver.Window rw = RunObserver.window(0, w.decision().plain(), 0.86, 1.0, 3, w, 2.0);
        assertEquals(0.95, rw.judgedP5()[1], 1e-3);
        assertEquals(300, rw.judgedTokens()[1]);
        assertEquals("rtn4+kv16", rw.option().inUse());
        assertEquals(300, w.plainTokens(), "the policy's float16 lease counts as the policy's tokens");
        assertEquals(300, w.compressedTokens());
    }
}
