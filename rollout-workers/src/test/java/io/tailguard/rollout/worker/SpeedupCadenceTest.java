package io.tailguard.rollout.worker;

import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SpeedupCadenceTest {
    private static final Schedule SPARSE = Schedule.fixed(48);

    @Test
    void everyNthMeasurableLeaseIsMeasured() {
        SpeedupCadence c = new SpeedupCadence(3);
        StringBuilder seen = new StringBuilder();
        for (int i = 0; i < 7; i++) {
            seen.append(c.next(SPARSE, true) ? 'M' : '.');
        }
        assertEquals("..M..M.", seen.toString());
    }

    @Test
    void denseAndCompressedLeasesAreNeitherMeasuredNorCounted() {
        SpeedupCadence c = new SpeedupCadence(2);
        StringBuilder seen = new StringBuilder();
        seen.append(c.next(SPARSE, true) ? 'M' : '.');          // 1st measurable
        seen.append(c.next(Schedule.dense(), true) ? 'M' : '.'); // not counted
        seen.append(c.next(SPARSE, false) ? 'M' : '.');         // a compressed actor: not counted
        seen.append(c.next(SPARSE, true) ? 'M' : '.');          // 2nd measurable
        seen.append(c.next(SPARSE, true) ? 'M' : '.');
        seen.append(c.next(SPARSE, true) ? 'M' : '.');
        assertEquals("...M.M", seen.toString());
    }

    @Test
    void zeroNeverMeasuresAndOneMeasuresEverySparseLease() {
        SpeedupCadence never = new SpeedupCadence(0);
        SpeedupCadence always = new SpeedupCadence(1);
        for (int i = 0; i < 5; i++) {
            assertFalse(never.next(SPARSE, true));
            assertEquals(true, always.next(SPARSE, true));
        }
        assertFalse(always.next(Schedule.dense(), true));
        assertThrows(IllegalArgumentException.class, () -> new SpeedupCadence(-1));
    }
}
