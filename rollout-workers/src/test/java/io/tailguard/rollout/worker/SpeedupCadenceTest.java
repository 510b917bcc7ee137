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
    void plainDenseLeasesAreNeitherMeasuredNorCountedAndCompressedOnesAre() {
        SpeedupCadence c = new SpeedupCadence(2);
        StringBuilder seen = new StringBuilder();
        seen.append(c.next(SPARSE, true) ? 'M' : '.');           // 1st measurable
        seen.append(c.next(Schedule.dense(), true) ? 'M' : '.');  // plain dense: not counted
        seen.append(c.next(SPARSE, false) ? 'M' : '.');          // 2nd: sparse with a compressed actor
        seen.append(c.next(Schedule.dense(), false) ? 'M' : '.'); // 3rd: dense with a compressed actor
        seen.append(c.next(SPARSE, true) ? 'M' : '.');           // 4th
        seen.append(c.next(Schedule.dense(), true) ? 'M' : '.');  // not counted
        assertEquals("..M.M.", seen.toString());
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
