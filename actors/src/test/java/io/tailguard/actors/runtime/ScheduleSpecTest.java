package io.tailguard.actors.runtime;

import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** A schedule survives the trip through a message field, its dense layers included. */
class ScheduleSpecTest {
    @Test
    void schedulesRoundTripWithTheirDenseLayers() {
        for (Schedule s : new Schedule[] {Schedule.dense(), Schedule.fixed(64).withVersion(3),
                Schedule.ofBins(256, new int[] {64, 128}).withVersion(5).withDenseLayers(Set.of(0, 3)),
                Schedule.fixed(96).withDenseLayers(Set.of())}) {
            assertEquals(s, ScheduleSpec.of(s).toSchedule(), s.toString());
        }
        assertNull(ScheduleSpec.of(Schedule.fixed(64)).denseLayers(), "the default travels as null");
        assertEquals(Schedule.fixed(48), new ScheduleSpec("FIXED", 1, 0, new int[] {48}).toSchedule());
    }
}
