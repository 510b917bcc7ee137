package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static io.tailguard.rollout.sparse.Budgets.NONE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BudgetsTest {
    @Test
    void aBudgetIsAPageMultipleOfAtLeastThreePages() {
        assertEquals(48, Budgets.MIN_BUDGET);
        assertEquals("a multiple of 16 and at least 48", Budgets.RULE);
        assertTrue(Budgets.valid(48));
        assertTrue(Budgets.valid(4096));
        assertFalse(Budgets.valid(32), "two pages");
        assertFalse(Budgets.valid(50));
        assertFalse(Budgets.valid(0));
        assertNull(Budgets.problem(64));
        assertEquals("is below 48 (the sink page and the 2 most recent pages are always kept)", Budgets.problem(40));
        assertEquals("is not a multiple of the page size 16", Budgets.problem(100));
        assertEquals(64, Budgets.check("x", 64));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Budgets.check("min", 20));
        assertEquals("min: budget 20 is below 48 (the sink page and the 2 most recent pages are always kept)", e.getMessage());
    }

    @Test
    void binWidthsAndPageRounding() {
        assertTrue(Budgets.validBinWidth(16));
        assertTrue(Budgets.validBinWidth(2048));
        assertFalse(Budgets.validBinWidth(0));
        assertFalse(Budgets.validBinWidth(-16));
        assertFalse(Budgets.validBinWidth(100));
        assertEquals("a positive multiple of 16", Budgets.BIN_WIDTH_RULE);
        assertEquals(96, io.tailguard.model.KvCache.ceilToPage(90));
        assertEquals(96, io.tailguard.model.KvCache.ceilToPage(96));
        assertEquals(0, io.tailguard.model.KvCache.ceilToPage(0));
        assertEquals(64, Budgets.roundToPage(70));   // 70/16 = 4.375 → 4 pages
        assertEquals(80, Budgets.roundToPage(72));   // 4.5 → 5 pages
        assertEquals(2_147_483_632, Budgets.LARGEST);
    }

    @Test
    void reachedBinsAreARunningMax() {
        assertArrayEquals(new int[] {96, 96, 128}, Budgets.makeNonDecreasing(new int[] {96, 48, 128}, new boolean[] {true, true, true}));
    }

    @Test
    void anUnreachedBinWithoutABudgetTakesThePreviousBinsLeadingOnesTheFirstReached() {
        // the calibration case: bin 0 and 2 unreached; bin 3's 48 is raised to 96 by the running max
        assertArrayEquals(new int[] {96, 96, 96, 96, 320},
                Budgets.makeNonDecreasing(new int[] {NONE, 96, NONE, 48, 320}, new boolean[] {false, true, false, true, true}));
        // the cheapest that never decreasing allows: the previous bin's, not the next one's
        assertArrayEquals(new int[] {48, 48, 96}, Budgets.makeNonDecreasing(new int[] {48, NONE, 96}, new boolean[] {true, false, true}));
    }

    @Test
    void anUnreachedBinWithABudgetFollowsTheNextBinDownButStaysAtOrAboveThePrevious() {
        // the controller's case: an idle bin above the next one follows it down
        assertArrayEquals(new int[] {128, 128, 512}, Budgets.makeNonDecreasing(new int[] {256, 128, 512}, new boolean[] {false, true, true}));
        // an idle bin between its neighbours keeps its budget
        assertArrayEquals(new int[] {128, 256, 512}, Budgets.makeNonDecreasing(new int[] {128, 256, 512}, new boolean[] {true, false, true}));
        // down to the next bin, then up to the previous one: budgets never decrease
        assertArrayEquals(new int[] {256, 256, 256}, Budgets.makeNonDecreasing(new int[] {256, 512, 128}, new boolean[] {true, false, true}));
        // a run of idle bins follows down the chain
        assertArrayEquals(new int[] {64, 64, 64}, Budgets.makeNonDecreasing(new int[] {512, 256, 64}, new boolean[] {false, false, true}));
        // a reached bin is never lowered
        assertArrayEquals(new int[] {256, 256}, Budgets.makeNonDecreasing(new int[] {256, 128}, new boolean[] {true, true}));
    }

    @Test
    void movesGoThroughTheBinsLowersFirstThenRaisesInPositionOrder() {
        int[] b = {256, 512, 128};
        List<String> moves = new ArrayList<>();
        Budgets.makeNonDecreasing(new Budgets.Bins() {
            public int count() {
                return b.length;
            }

            public boolean reached(int bin) {
                return bin != 1;
            }

            public int budget(int bin) {
                return b[bin];
            }

            public void lower(int bin, int cap, int next) {
                moves.add("lower " + bin + " to " + cap + " after " + next);
                b[bin] = cap;
            }

            public void raise(int bin, int floor, int from) {
                moves.add("raise " + bin + " to " + floor + " from " + from);
                b[bin] = floor;
            }
        });
        assertEquals(List.of("lower 1 to 128 after 2", "raise 1 to 256 from 0", "raise 2 to 256 from 1"), moves);
    }

    /** The offline calibration's repair as it was written before the one repair: fill, then a running max. */
    static int[] calibrationReference(Integer[] pick) {
        Integer first = null;
        for (Integer p : pick) {
            if (p != null) {
                first = p;
                break;
            }
        }
        int[] out = new int[pick.length];
        int previous = first;
        for (int i = 0; i < pick.length; i++) {
            int b = pick[i] != null ? pick[i] : previous;
            out[i] = Math.max(b, i > 0 ? out[i - 1] : b);
            previous = out[i];
        }
        return out;
    }

    /** The controller's repair as it was written before (on plain values): idle bins follow down, then a carry. */
    static int[] controllerReference(int[] budgets, boolean[] idle) {
        int[] b = budgets.clone();
        for (int i = b.length - 2; i >= 0; i--) {
            if (b[i] > b[i + 1] && idle[i]) {
                b[i] = b[i + 1];
            }
        }
        for (int i = 1; i < b.length; i++) {
            b[i] = Math.max(b[i], b[i - 1]);
        }
        return b;
    }

    @Test
    void givesWhatTheTwoRepairsItReplacesGaveOnRandomBins() {
        java.util.Random r = new java.util.Random(7);
        for (int trial = 0; trial < 20_000; trial++) {
            int n = 1 + r.nextInt(8);
            int[] budgets = new int[n];
            boolean[] reached = new boolean[n];
            Integer[] pick = new Integer[n];
            boolean any = false;
            for (int i = 0; i < n; i++) {
                budgets[i] = 16 * (3 + r.nextInt(20));
                reached[i] = r.nextInt(3) > 0;
                pick[i] = reached[i] ? budgets[i] : null;
                any |= reached[i];
            }
            // the controller: every bin has a budget, unreached = idle
            assertArrayEquals(controllerReference(budgets, invert(reached)), Budgets.makeNonDecreasing(budgets, reached),
                    java.util.Arrays.toString(budgets) + " " + java.util.Arrays.toString(reached));
            // calibration: unreached bins have none
            if (any) {
                int[] none = budgets.clone();
                for (int i = 0; i < n; i++) {
                    none[i] = reached[i] ? budgets[i] : NONE;
                }
                assertArrayEquals(calibrationReference(pick), Budgets.makeNonDecreasing(none, reached),
                        java.util.Arrays.toString(none));
            }
        }
    }

    private static boolean[] invert(boolean[] b) {
        boolean[] out = new boolean[b.length];
        for (int i = 0; i < b.length; i++) {
            out[i] = !b[i];
        }
        return out;
    }

    @Test
    void refusesBinsWithNoBudgetAtAllAndReachedBinsWithout() {
        assertThrows(IllegalArgumentException.class, () -> Budgets.makeNonDecreasing(new int[] {NONE, NONE}, new boolean[] {false, false}));
        assertThrows(IllegalArgumentException.class, () -> Budgets.makeNonDecreasing(new int[] {NONE, 64}, new boolean[] {true, true}));
        assertThrows(IllegalArgumentException.class, () -> Budgets.makeNonDecreasing(new int[] {64}, new boolean[] {true, true}));
    }
}
