package io.tailguard.compression;

import io.tailguard.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VnmHeuristicTest {
    /** The tiny preset's shapes: hidden 128, 4 heads and 2 KV heads of 32, intermediate 384. */
    private static final ModelConfig TINY = new ModelConfig(99, 128, 384, 4, 4, 2, 32, 1e-6, 1e6, 32768, true, 2);

    @Test
    void predictedSpeedupIsDenseOverSparseBytes() {
        // 2:4: 4V·2 bytes dense over 2V·2 values + 2V·2 bits of indices = 8/4.5.
        assertEquals(8 / 4.5, VnmHeuristic.predictedSpeedup(64, 4), 1e-12);
        // 64:2:5: 640 bytes over 256 + 32 + 4·3 bits = 289.5.
        assertEquals(640 / 289.5, VnmHeuristic.predictedSpeedup(64, 5), 1e-12);
        // 32:2:8: 512 over 128 + 16 + 4·3 bits = 145.5.
        assertEquals(512 / 145.5, VnmHeuristic.predictedSpeedup(32, 8), 1e-12);
    }

    @Test
    void choosesTheSmallestMThenTheSmallestVThatMeetTheTarget() {
        // 16:2:5 predicts 160 / 73.5 = 2.18 (>= 2), the smallest M with any V that reaches 2.
        assertEquals(Optional.of(new VnmPattern(16, 2, 5)), VnmHeuristic.choose(TINY, 2.0));
        // 2.2: 16:2:5 (2.177) and 32:2:5 (320 / 145.5 = 2.199) fall short, 64:2:5 (2.211) meets it.
        assertEquals(Optional.of(new VnmPattern(64, 2, 5)), VnmHeuristic.choose(TINY, 2.2));
        // 3.5: M = 8 with V = 16 predicts 256 / 73.5 = 3.48, V = 32 3.52.
        assertEquals(Optional.of(new VnmPattern(32, 2, 8)), VnmHeuristic.choose(TINY, 3.5));
        // V = 128 does not divide the KV projections' 64 rows: with a speedup table where only V = 128
        // reaches the target, nothing fits.
        assertEquals(Optional.empty(), VnmHeuristic.choose(TINY, 2.0, (v, m) -> v == 128 ? 9 : 1));
        // Far beyond what M <= 32 predicts.
        assertEquals(Optional.empty(), VnmHeuristic.choose(TINY, 50));
        // Below 2:4's 1.78 the most diverse pattern of all, M = 4 with V = 16, wins.
        assertEquals(4, VnmHeuristic.choose(TINY, 1.0).orElseThrow().m());
    }

    @Test
    void diversityPerEntryFallsWithMAndWithV() {
        assertTrue(VnmHeuristic.logDiversityPerEntry(16, 5) > VnmHeuristic.logDiversityPerEntry(64, 5));
        assertTrue(VnmHeuristic.logDiversityPerEntry(128, 5) > VnmHeuristic.logDiversityPerEntry(16, 6));
        // (ln C(5,4) + 64 ln 6) / 320
        assertEquals((Math.log(5) + 64 * Math.log(6)) / 320, VnmHeuristic.logDiversityPerEntry(64, 5), 1e-12);
    }
}
