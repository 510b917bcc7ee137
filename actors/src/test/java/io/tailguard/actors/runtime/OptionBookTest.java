package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.ApproximationBudget;
import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rollout options' accounting around the compressed-actor guard, without an actor system. */
class OptionBookTest {
    static final BudgetController.Settings CTL = new BudgetController.Settings(0.86, 0.02, 0.01, 200, 4, 48, 512, 1.25, 256, 1024);
    static final Schedule SCHED = Schedule.ofBins(256, new int[] {128, 128, 256, 256});

    static CompressedPublished version(long v) {
        return new CompressedPublished(v, "file:///tmp/store/compressed/v" + v + "/", "ab".repeat(32), "rtn", 4, 0.01);
    }

    @Test
    void tokensPerOptionWindowRateAndShare() {
        OptionBook book = new OptionBook(CTL, new ApproximationBudget.Settings(false, 0.25, 50), 1_000_000_000L);
        assertTrue(book.report(3, null, null, 300), "a compressed lease's tails are the guard's");
        assertFalse(book.report(-1, null, null, 100), "a plain lease's tails are the budget controller's");
        OptionBook.Window w = book.tick(3_000_000_000L, 0, SCHED); // a 2 s window
        assertEquals(100, w.plainTokens());
        assertEquals(300, w.compressedTokens());
        assertEquals(200.0, book.rate(), 1e-9); // 400 tokens / 2 s
        assertEquals(0.75, book.view().tokenShare(), 1e-12); // 300 of 400 over the run
        book.report(-1, null, null, 600);
        w = book.tick(4_000_000_000L, 0, SCHED);
        assertEquals(600, w.plainTokens());
        assertEquals(0, w.compressedTokens(), "a window starts empty");
        assertEquals(600.0, book.rate(), 1e-9);
        assertEquals(0.3, book.view().tokenShare(), 1e-12); // 300 of 1000
    }

    @Test
    void theNewestVersionIsOfferedAndTheProbeShareOfLeasesGetsIt() {
        OptionBook book = new OptionBook(CTL, new ApproximationBudget.Settings(true, 0.5, 10), 0);
        assertEquals(-1, book.view().version());
        assertNull(book.choose(0), "nothing offered: the policy");
        CompressedPublished v3 = version(3);
        assertTrue(book.offer(v3));
        assertFalse(book.offer(version(2)), "an older version is no offer");
        assertEquals(3, book.view().version());
        assertEquals(v3.describe(), book.view().describe());
        // not in use: every second lease (probe share 0.5) goes to the compressed version
        assertNull(book.choose(3));
        assertSame(v3, book.choose(3));
        assertNull(book.choose(3));
        assertSame(v3, book.choose(3));
        // more than max-lag versions behind the policy: no lease at all
        assertNull(book.choose(14));
        assertNull(book.choose(14));
        // tuned off: the policy only
        book.retune(CTL, new ApproximationBudget.Settings(false, 0.5, 10));
        assertFalse(book.view().on());
        assertNull(book.choose(3));
        assertNull(book.choose(3));
    }
}
