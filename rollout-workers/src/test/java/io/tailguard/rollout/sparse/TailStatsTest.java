package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TailStatsTest {

    /** The exact 5th percentile of a sample: the order statistic at rank ceil(0.05·n) (nearest rank). */
    private static double exactP5(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(0.05 * sorted.length);
        return sorted[rank - 1];
    }

    @Test
    void mergedSplitsGiveTheP5OfAllDataAndOfTheSortedArray() {
        Random rnd = new Random(42);
        int n = 10_000;
        double[] alphas = new double[n];
        int[] positions = new int[n];
        TailStats all = new TailStats();
        TailStats[] parts = {new TailStats(), new TailStats(), new TailStats(), new TailStats()};
        for (int i = 0; i < n; i++) {
            alphas[i] = rnd.nextDouble();
            positions[i] = rnd.nextInt(2048); // all in bin 0
            all.add(positions[i], alphas[i]);
            parts[i % parts.length].add(positions[i], alphas[i]);
        }
        TailStats merged = new TailStats();
        for (TailStats p : parts) {
            merged.merge(p);
        }
        double exact = exactP5(alphas); // ≈ 0.05 on uniform data
        assertEquals(exact, all.p5(0), 0.01);
        assertEquals(exact, merged.p5(0), 0.01);
        assertEquals(all.p5(0), merged.p5(0), 0.01);
        assertEquals(n, merged.count(0));
        assertEquals(Arrays.stream(alphas).average().orElseThrow(), merged.mean(0), 1e-9);
    }

    @Test
    void tailNearOneIsResolvedLikeRealAlphas() {
        // most tokens α > 0.999, a 10 % tail spread over [0.7, 0.95]
        Random rnd = new Random(9);
        int n = 20_000;
        double[] alphas = new double[n];
        TailStats stats = new TailStats();
        TailStats a = new TailStats();
        TailStats b = new TailStats();
        for (int i = 0; i < n; i++) {
            alphas[i] = rnd.nextDouble() < 0.1 ? 0.7 + 0.25 * rnd.nextDouble() : 0.999 + 0.001 * rnd.nextDouble();
            stats.add(5000, alphas[i]);
            (i < n / 3 ? a : b).add(5000, alphas[i]);
        }
        a.merge(b);
        double exact = exactP5(alphas);
        assertEquals(exact, stats.p5(2), 0.01);
        assertEquals(exact, a.p5(2), 0.01);
    }

    @Test
    void positionsFallIntoBinsOfTheConfiguredWidth() {
        TailStats s = new TailStats(1024);
        s.add(0, 0.5);
        s.add(1023, 0.7);
        s.add(1024, 0.9);
        s.add(5000, 1.0);
        assertEquals(2, s.count(0));
        assertEquals(1, s.count(1));
        assertEquals(0, s.count(2));
        assertEquals(1, s.count(4));
        assertEquals(0, s.count(99));
        assertEquals(0.6, s.mean(0), 1e-12);
        assertTrue(Double.isNaN(s.p5(2)));
        assertTrue(Double.isNaN(s.mean(99)));
        List<TailStats.BinSummary> rows = s.summary();
        assertEquals(3, rows.size(), "only bins with tokens");
        assertEquals(new TailStats.BinSummary(1024, 2048, 1, 0.9, 0.9), rows.get(1));
        assertEquals(4096, rows.get(2).start());
        assertEquals(5120, rows.get(2).end());
        assertEquals(4, s.totalCount());
    }

    @Test
    void bytesRoundTrip() {
        Random rnd = new Random(1);
        TailStats s = new TailStats(512);
        for (int i = 0; i < 5000; i++) {
            s.add(rnd.nextInt(4000), 1 - Math.pow(rnd.nextDouble(), 4));
        }
        byte[] bytes = s.toBytes();
        TailStats back = TailStats.fromBytes(bytes);
        assertEquals(512, back.binWidth());
        assertEquals(s.binCount(), back.binCount());
        for (int bin = 0; bin < s.binCount(); bin++) {
            assertEquals(s.count(bin), back.count(bin));
            assertEquals(s.mean(bin), back.mean(bin), 0);
            assertEquals(s.p5(bin), back.p5(bin), 1e-6);
            assertEquals(s.quantile(bin, 0.5), back.quantile(bin, 0.5), 1e-6);
        }
        // compact: a few KB for 8 bins of ~600 tokens, well under 8 bytes a token
        assertTrue(bytes.length < 5000 * 8, "size " + bytes.length);
        // the decoded form merges and re-encodes
        back.merge(TailStats.fromBytes(bytes));
        assertEquals(2 * s.totalCount(), back.totalCount());
        assertEquals(s.p5(3), TailStats.fromBytes(back.toBytes()).p5(3), 0.01);
    }

    @Test
    void emptyStatsRoundTrip() {
        TailStats back = TailStats.fromBytes(new TailStats().toBytes());
        assertEquals(0, back.totalCount());
        assertEquals(TailStats.DEFAULT_BIN_WIDTH, back.binWidth());
    }

    @Test
    void mismatchedBinWidthsAreRefused() {
        TailStats a = new TailStats(2048);
        TailStats b = new TailStats(1024);
        b.add(0, 0.9);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.merge(b));
        assertTrue(e.getMessage().contains("1024") && e.getMessage().contains("2048"), e.getMessage());
        assertEquals(0, a.totalCount(), "a refused merge changes nothing");
    }

    @Test
    void mergingWithItselfDoublesTheCounts() {
        TailStats a = new TailStats();
        a.add(10, 0.5);
        a.add(10, 0.75);
        a.merge(a);
        assertEquals(4, a.count(0));
        assertEquals(0.625, a.mean(0), 1e-12);
    }

    @Test
    void badInputIsRefused() {
        TailStats s = new TailStats();
        assertThrows(IllegalArgumentException.class, () -> s.add(0, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> s.add(0, 1.5));
        assertThrows(IllegalArgumentException.class, () -> s.add(-1, 0.5));
        assertThrows(IllegalArgumentException.class, () -> s.quantile(0, 1.5));
        assertThrows(IllegalArgumentException.class, () -> new TailStats(0));
        s.add(0, 1 + 1e-7); // float rounding above 1 is clamped
        assertEquals(1.0, s.mean(0), 0);
        byte[] good = s.toBytes();
        assertThrows(IllegalArgumentException.class, () -> TailStats.fromBytes(Arrays.copyOf(good, good.length - 3)));
        assertThrows(IllegalArgumentException.class, () -> TailStats.fromBytes(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}));
        byte[] trailing = Arrays.copyOf(good, good.length + 1);
        assertThrows(IllegalArgumentException.class, () -> TailStats.fromBytes(trailing));
    }

    @Test
    void theSequenceAlphaIsExpOfMinusTheMeanDisagreementsPerTrajectory() {
        TailStats t = new TailStats(2);
        // trajectory 1: α 0.5 and 1.0 in bin 0, 0.8 in bin 1 (disagreements 0.5 + 0 + 0.2); trajectory 2: 0.9 in bin 1 (0.1)
        t.add(0, 0.5);
        t.add(1, 1.0);
        t.add(2, 0.8);
        t.addSequence();
        t.add(3, 0.9);
        t.addSequence();
        assertEquals(2, t.sequences());
        assertEquals(0.5, t.disagreements(0), 1e-12);
        assertEquals(0.3, t.disagreements(1), 1e-12);
        assertEquals(Math.exp(-(0.7 + 0.1) / 2), t.sequenceAlpha(), 1e-12);
        // each bin's share of the mean disagreements per trajectory
        assertEquals(0.25, t.sequenceDisagreements(0), 1e-12);
        assertEquals(0.15, t.sequenceDisagreements(1), 1e-12);
        // the wire form, a one-bin copy and a merge keep the trajectories
        TailStats back = TailStats.fromBytes(t.toBytes());
        assertEquals(2, back.sequences());
        assertEquals(t.sequenceAlpha(), back.sequenceAlpha(), 1e-12);
        TailStats one = t.onlyBin(1);
        assertEquals(2, one.sequences());
        assertEquals(0, one.count(0));
        assertEquals(Math.exp(-0.15), one.sequenceAlpha(), 1e-12);
        back.merge(one);
        assertEquals(4, back.sequences());
        assertEquals(Math.exp(-(0.8 + 0.3) / 4), back.sequenceAlpha(), 1e-12);
        // a token at α 0 is one whole disagreement
        TailStats zero = new TailStats(2);
        zero.add(0, 0.0);
        zero.addSequence();
        assertEquals(Math.exp(-1), zero.sequenceAlpha(), 1e-15);
        assertTrue(Double.isNaN(new TailStats(2).sequenceAlpha()));
    }

    @Test
    void anAlphaSumOutsideZeroToTheTokenCountIsRefused() {
        TailStats t = new TailStats(2);
        t.add(0, 0.5);
        t.addSequence();
        byte[] good = t.toBytes();
        // header: magic, version, bin width (4 each), compression, trajectories (8 each), bins (4);
        // then the bin: count (8), α sum (8)
        for (double bad : new double[] {Double.NaN, 2.0, -0.5}) {
            byte[] b = good.clone();
            java.nio.ByteBuffer.wrap(b).putDouble(4 + 4 + 4 + 8 + 8 + 4 + 8, bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TailStats.fromBytes(b));
            assertTrue(e.getMessage().contains("α sum"), e.getMessage());
        }
        assertEquals(0.5, TailStats.fromBytes(good).mean(0), 1e-12);
    }
}
