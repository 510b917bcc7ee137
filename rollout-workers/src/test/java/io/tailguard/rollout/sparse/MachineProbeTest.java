package io.tailguard.rollout.sparse;

import ai.djl.Device;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertTrue;

class MachineProbeTest {

    @Test
    void measuresPlausibleCpuConstantsQuickly() {
        long t0 = System.nanoTime();
        CostModel.Machine m = MachineProbe.measure(Device.cpu(), Duration.ofMillis(1200));
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("measured %.3g FLOP/s, %.3g B/s in %.1f s%n", m.flopsPerSecond(), m.bytesPerSecond(), seconds);
        // any machine that runs the tests does more than 0.1 GFLOP/s and 0.1 GB/s, and no CPU does 100 PFLOP/s
        assertTrue(m.flopsPerSecond() > 1e8 && m.flopsPerSecond() < 1e17, "flops " + m.flopsPerSecond());
        assertTrue(m.bytesPerSecond() > 1e8 && m.bytesPerSecond() < 1e14, "bytes " + m.bytesPerSecond());
        assertTrue(seconds < 10, "took " + seconds + " s");
    }
}
