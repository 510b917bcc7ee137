package io.tailguard.rollout.sparse;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ScheduleTest {
    private static final Path SCHEDULES = findSchedules();

    private static Path findSchedules() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isDirectory(dir.resolve("config/schedules"))) {
            dir = dir.getParent();
        }
        if (dir == null) {
            throw new IllegalStateException("config/schedules not found above " + Path.of("").toAbsolutePath());
        }
        return dir.resolve("config/schedules");
    }

    @Test
    void publishedScheduleFileHasThePublishedBudgetsBy2kBin() {
        Schedule s = Schedule.parse(SCHEDULES.resolve("qwen3-1.7b-tau0.86.conf"));
        assertEquals(2048, s.binWidth());
        assertEquals(1, s.version());
        assertArrayEquals(new int[] {512, 1024, 1536, 1536, 2048, 2560, 3072, 3584, 3584, 4096}, s.budgets());
        assertEquals(512, s.budgetAt(0));
        assertEquals(512, s.budgetAt(2047));
        assertEquals(1024, s.budgetAt(2048));
        assertEquals(3584, s.budgetAt(18431));
        assertEquals(4096, s.budgetAt(18432));
        assertEquals(4096, s.budgetAt(1_000_000), "beyond the last bin: the last bin's budget");
        assertFalse(s.isDense());
    }

    @Test
    void denseAndFixedFilesParse() {
        Schedule dense = Schedule.parse(SCHEDULES.resolve("dense.conf"));
        assertTrue(dense.isDense());
        assertEquals(Integer.MAX_VALUE, dense.budgetAt(100_000));
        assertEquals(Schedule.dense(), dense);
        Schedule fixed = Schedule.parse(SCHEDULES.resolve("fixed-1024.conf"));
        assertEquals(Schedule.fixed(1024), fixed);
        assertEquals(1024, fixed.budgetAt(0));
        assertEquals(1024, fixed.budgetAt(50_000));
        assertTrue(fixed.isDenseAt(1024));
        assertFalse(fixed.isDenseAt(1025));
    }

    @Test
    void toHoconRoundTrips(@TempDir Path tmp) throws Exception {
        for (Schedule s : new Schedule[] {Schedule.dense(), Schedule.fixed(256).withVersion(7),
                Schedule.ofBins(1024, new int[] {48, 64, 64, 4096}).withVersion(3)}) {
            assertEquals(s, Schedule.parseString(s.toHocon(), "round-trip"));
            Path f = tmp.resolve("s.conf");
            Files.writeString(f, s.toHocon());
            assertEquals(s, Schedule.parse(f));
        }
    }

    @Test
    void aBinMaySpanSeveralWidthsAndTheLastMayBeClosed() {
        Schedule s = Schedule.parseString("tailguard.schedule { version = 2, kind = bins, bin-width = 1024, bins = ["
                + "{ start = 0, end = 3072, budget = 256 }, { start = 3072, end = 4096, budget = 512 } ] }", "t");
        assertArrayEquals(new int[] {256, 256, 256, 512}, s.budgets());
        assertEquals(512, s.budgetAt(10_000));
        assertEquals(2, s.version());
    }

    @Test
    void theLastBinMayBeOpenWithEndNull() {
        Schedule s = Schedule.parseString(bins("{ start = 0, end = 2048, budget = 512 }, { start = 2048, end = null, budget = 1024 }"), "t");
        assertArrayEquals(new int[] {512, 1024}, s.budgets());
        assertEquals(1024, s.budgetAt(1 << 30));
    }

    @Test
    void defaultBinWidthIs2048() {
        Schedule s = Schedule.parseString("tailguard.schedule { version = 1, kind = bins, bins = [ { start = 0, budget = 64 } ] }", "t");
        assertEquals(2048, s.binWidth());
        assertEquals(2048, Schedule.dense().binWidth());
    }

    private static String bins(String bins) {
        return "tailguard.schedule {\n version = 1\n kind = bins\n bin-width = 2048\n bins = [ " + bins + " ]\n}\n";
    }

    private static String error(String hocon) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Schedule.parseString(hocon, "bad.conf"));
        String msg = e.getMessage();
        assertFalse(msg.contains("\n"), "one line: " + msg);
        assertTrue(msg.startsWith("bad.conf"), "names the file: " + msg);
        assertFalse(msg.contains("Exception"), "no exception names: " + msg);
        return msg;
    }

    @Test
    void budgetNotAMultipleOf16IsRefusedNamingTheKey() {
        String msg = error(bins("{ start = 0, end = 2048, budget = 512 }, { start = 2048, budget = 1000 }"));
        assertTrue(msg.contains("tailguard.schedule.bins[1].budget") && msg.contains("multiple of"), msg);
    }

    @Test
    void budgetBelowTheAlwaysKeptPagesIsRefused() {
        String msg = error(bins("{ start = 0, budget = 32 }"));
        assertTrue(msg.contains("bins[0].budget") && msg.contains("48"), msg);
    }

    @Test
    void decreasingBudgetsAreRefused() {
        String msg = error(bins("{ start = 0, end = 2048, budget = 1024 }, { start = 2048, budget = 512 }"));
        assertTrue(msg.contains("bins[1].budget") && msg.contains("decrease"), msg);
        assertThrows(IllegalArgumentException.class, () -> Schedule.ofBins(2048, new int[] {1024, 512}));
    }

    @Test
    void gapsAndOverlapsAreRefused() {
        String gap = error(bins("{ start = 0, end = 2048, budget = 512 }, { start = 4096, budget = 1024 }"));
        assertTrue(gap.contains("bins[1].start") && gap.contains("gap"), gap);
        String overlap = error(bins("{ start = 0, end = 4096, budget = 512 }, { start = 2048, budget = 1024 }"));
        assertTrue(overlap.contains("bins[1].start") && overlap.contains("overlap"), overlap);
        String first = error(bins("{ start = 2048, budget = 512 }"));
        assertTrue(first.contains("bins[0].start"), first);
        String width = error(bins("{ start = 0, end = 1000, budget = 512 }, { start = 1000, budget = 1024 }"));
        assertTrue(width.contains("bins[0].end") && width.contains("bin-width"), width);
        String open = error(bins("{ start = 0, budget = 512 }, { start = 2048, budget = 1024 }"));
        assertTrue(open.contains("bins[0].end") && open.contains("last"), open);
    }

    @Test
    void unknownKeysAreRefusedAtEveryLevel() {
        String top = error("tailguard.schedule { version = 1, kind = dense }\nfoo = 1\n");
        assertTrue(top.contains("foo") && top.contains("unknown key"), top);
        String inner = error("tailguard.schedule { version = 1, kind = fixed, budget = 64, budgets = 64 }");
        assertTrue(inner.contains("tailguard.schedule.budgets") && inner.contains("unknown key"), inner);
        String wrongKind = error("tailguard.schedule { version = 1, kind = dense, budget = 64 }");
        assertTrue(wrongKind.contains("tailguard.schedule.budget") && wrongKind.contains("unknown key"), wrongKind);
        String bin = error(bins("{ start = 0, budget = 64, budegt = 64 }"));
        assertTrue(bin.contains("bins[0].budegt"), bin);
    }

    @Test
    void versionMustBePresentAndAPositiveInteger() {
        assertTrue(error("tailguard.schedule { kind = dense }").contains("tailguard.schedule.version"));
        assertTrue(error("tailguard.schedule { version = 0, kind = dense }").contains("positive"));
        assertTrue(error("tailguard.schedule { version = 1.5, kind = dense }").contains("tailguard.schedule.version"));
        assertTrue(error("tailguard.schedule { version = one, kind = dense }").contains("tailguard.schedule.version"));
    }

    @Test
    void binWidthMustBeAPositiveMultipleOf16() {
        assertTrue(error("tailguard.schedule { version = 1, kind = dense, bin-width = 1000 }").contains("tailguard.schedule.bin-width"));
        assertTrue(error("tailguard.schedule { version = 1, kind = dense, bin-width = 0 }").contains("tailguard.schedule.bin-width"));
        assertThrows(IllegalArgumentException.class, () -> Schedule.ofBins(100, new int[] {64}));
    }

    @Test
    void syntaxErrorsAndMissingPiecesAreOneLine() {
        error("tailguard.schedule { version = 1, kind = ");
        assertTrue(error("something.else = 1").contains("tailguard"));
        assertTrue(error("tailguard.schedule { version = 1, kind = sparse }").contains("tailguard.schedule.kind"));
        assertTrue(error("tailguard.schedule { version = 1, kind = fixed }").contains("tailguard.schedule.budget"));
        assertTrue(error("tailguard.schedule { version = 1, kind = bins }").contains("tailguard.schedule.bins"));
        assertTrue(error("tailguard.schedule { version = 1, kind = bins, bins = [] }").contains("tailguard.schedule.bins"));
    }

    @Test
    void unreadableFileNamesTheFile(@TempDir Path tmp) {
        Path missing = tmp.resolve("nope.conf");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Schedule.parse(missing));
        assertTrue(e.getMessage().startsWith(missing.toString()), e.getMessage());
    }

    @Test
    void denseLayersParseRoundTripAndAreWrittenOnlyWhenNotTheDefault() {
        Schedule s = Schedule.parseString("tailguard.schedule { version = 3, kind = fixed, budget = 64, dense-layers = [2, 0] }", "x.conf");
        assertEquals(java.util.List.of(0, 2), java.util.List.copyOf(s.denseLayers()), "ascending");
        assertTrue(s.toHocon().contains("dense-layers = [0, 2]"), s.toHocon());
        assertEquals(s, Schedule.parseString(s.toHocon(), "again"));
        assertEquals(java.util.List.of(0, 1), java.util.List.copyOf(Schedule.fixed(64).denseLayers()), "default: layers 0 and 1");
        assertFalse(Schedule.fixed(64).toHocon().contains("dense-layers"), "the default is not written");
        assertEquals(Schedule.fixed(64), Schedule.parseString(
                "tailguard.schedule { version = 1, kind = fixed, budget = 64, dense-layers = [1, 0] }", "x"), "explicit default");
        Schedule none = Schedule.parseString("tailguard.schedule { version = 1, kind = bins, dense-layers = [], bins = [{ start = 0, budget = 64 }] }", "x");
        assertTrue(none.denseLayers().isEmpty());
        assertEquals(none, Schedule.parseString(none.toHocon(), "again"));
        assertTrue(Schedule.parseString("tailguard.schedule { version = 1, kind = dense, dense-layers = [3] }", "x").isDense());
        // the kind, bin width, budgets and version stay; equality sees the dense layers
        Schedule moved = Schedule.ofBins(256, new int[] {64, 128}).withVersion(4).withDenseLayers(java.util.Set.of(5));
        assertArrayEquals(new int[] {64, 128}, moved.budgets());
        assertEquals(4, moved.withVersion(4).version());
        assertEquals(java.util.Set.of(5), moved.withVersion(9).denseLayers());
        assertFalse(moved.equals(Schedule.ofBins(256, new int[] {64, 128}).withVersion(4)));
        assertTrue(moved.toString().contains("dense layers [5]"), moved.toString());
        assertEquals("Schedule[fixed 64, v1]", Schedule.fixed(64).toString());
    }

    @Test
    void badDenseLayersAreRefusedNamingTheKey() {
        String neg = error("tailguard.schedule { version = 1, kind = fixed, budget = 64, dense-layers = [0, -1] }");
        assertTrue(neg.contains("tailguard.schedule.dense-layers[1]") && neg.contains(">= 0"), neg);
        String twice = error("tailguard.schedule { version = 1, kind = fixed, budget = 64, dense-layers = [1, 1] }");
        assertTrue(twice.contains("tailguard.schedule.dense-layers[1]") && twice.contains("twice"), twice);
        String notList = error("tailguard.schedule { version = 1, kind = fixed, budget = 64, dense-layers = 1 }");
        assertTrue(notList.contains("tailguard.schedule.dense-layers") && notList.contains("list"), notList);
        String notInt = error("tailguard.schedule { version = 1, kind = fixed, budget = 64, dense-layers = [a] }");
        assertTrue(notInt.contains("tailguard.schedule.dense-layers[0]"), notInt);
        assertThrows(IllegalArgumentException.class, () -> Schedule.fixed(64).withDenseLayers(java.util.Set.of(-2)));
    }

    @Test
    void budgetMessagesStateTheRuleWithThePageAndTheSmallestBudget() {
        assertEquals("bad.conf: tailguard.schedule.bins[0].budget: budget 1000 is not a multiple of the page size 16",
                error(bins("{ start = 0, budget = 1000 }")));
        assertEquals("bad.conf: tailguard.schedule.bins[0].budget: budget 32 is below 48 (the sink page and the 2 most "
                + "recent pages are always kept)", error(bins("{ start = 0, budget = 32 }")));
        assertEquals("bad.conf: tailguard.schedule.bin-width: must be a positive multiple of 16, got 1000",
                error("tailguard.schedule { version = 1, kind = dense, bin-width = 1000 }"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Schedule.fixed(100));
        assertEquals("budget: budget 100 is not a multiple of the page size 16", e.getMessage());
    }

    @Test
    void fixedAndOfBinsValidateBudgets() {
        assertThrows(IllegalArgumentException.class, () -> Schedule.fixed(100));
        assertThrows(IllegalArgumentException.class, () -> Schedule.fixed(32));
        assertThrows(IllegalArgumentException.class, () -> Schedule.ofBins(2048, new int[0]));
        assertThrows(IllegalArgumentException.class, () -> Schedule.dense().budgetAt(-1));
        int[] budgets = {64, 128};
        Schedule s = Schedule.ofBins(2048, budgets);
        budgets[0] = 128;
        assertEquals(64, s.budgetAt(0), "immutable: the caller's array is copied");
        s.budgets()[0] = 999;
        assertEquals(64, s.budgetAt(0));
    }

    @Test
    void denseLayersGivenAsAListAreDistinctIndicesAtLeastZero() {
        assertTrue(Schedule.denseLayerSet(1, 0) == Schedule.DEFAULT_DENSE_LAYERS);
        assertEquals(java.util.List.of(0, 3), java.util.List.copyOf(Schedule.denseLayerSet(3, 0)));
        assertTrue(Schedule.denseLayerSet().isEmpty());
        assertEquals("dense-layers: layer indices must be distinct and >= 0, got [0, -1]",
                assertThrows(IllegalArgumentException.class, () -> Schedule.denseLayerSet(0, -1)).getMessage());
        assertEquals("dense-layers: layer indices must be distinct and >= 0, got [2, 2]",
                assertThrows(IllegalArgumentException.class, () -> Schedule.denseLayerSet(2, 2)).getMessage());
    }
}
