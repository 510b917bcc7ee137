package io.tailguard.rollout.worker;

import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import static io.tailguard.rollout.worker.SpeedupCadence.POLICY;
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
            seen.append(c.next(SPARSE, POLICY) ? 'M' : '.');
        }
        assertEquals("..M..M.", seen.toString());
    }

    @Test
    void plainDenseLeasesAreNeitherMeasuredNorCountedAndCompressedOnesAre() {
        SpeedupCadence c = new SpeedupCadence(2);
        StringBuilder seen = new StringBuilder();
        seen.append(c.next(SPARSE, POLICY) ? 'M' : '.');           // policy: 1st
        seen.append(c.next(Schedule.dense(), POLICY) ? 'M' : '.');  // plain dense: not counted
        seen.append(c.next(SPARSE, "rtn4") ? 'M' : '.');           // rtn4: 1st, sparse
        seen.append(c.next(Schedule.dense(), "rtn4") ? 'M' : '.');  // rtn4: 2nd, dense
        seen.append(c.next(SPARSE, POLICY) ? 'M' : '.');           // policy: 2nd
        seen.append(c.next(Schedule.dense(), POLICY) ? 'M' : '.');  // not counted
        assertEquals("...MM.", seen.toString());
    }

    @Test
    void eachOptionCountsItsOwnLeasesSoARegularProbePatternIsStillMeasured() {
        // the controller's probe share 0.25: every 4th lease goes to the probed option; with every = 4
        // a single count would measure the probes only
        SpeedupCadence c = new SpeedupCadence(4);
        int policy = 0;
        int bulk = 0;
        for (int lease = 1; lease <= 32; lease++) {
            boolean probe = lease % 4 == 0;
            if (c.next(SPARSE, probe ? POLICY : "rtn4")) {
                if (probe) {
                    policy++;
                } else {
                    bulk++;
                }
            }
        }
        assertEquals(2, policy, "8 policy leases: the 4th and 8th");
        assertEquals(6, bulk, "24 rtn4 leases: every 4th");
    }

    @Test
    void zeroNeverMeasuresAndOneMeasuresEverySparseLease() {
        SpeedupCadence never = new SpeedupCadence(0);
        SpeedupCadence always = new SpeedupCadence(1);
        for (int i = 0; i < 5; i++) {
            assertFalse(never.next(SPARSE, POLICY));
            assertEquals(true, always.next(SPARSE, POLICY));
        }
        assertFalse(always.next(Schedule.dense(), POLICY));
        assertThrows(IllegalArgumentException.class, () -> new SpeedupCadence(-1));
    }
}
