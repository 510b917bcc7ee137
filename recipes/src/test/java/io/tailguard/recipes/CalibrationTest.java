package io.tailguard.recipes;

import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CalibrationTest {
    /** One table per budget: 20 tokens at the given p5 in each bin (NaN: no tokens). */
    static List<TailStats> tables(double[][] p5, int binWidth) {
        List<TailStats> tables = new ArrayList<>();
        for (double[] row : p5) {
            TailStats t = new TailStats(binWidth);
            for (int bin = 0; bin < row.length; bin++) {
                if (!Double.isNaN(row[bin])) {
                    for (int k = 0; k < 20; k++) {
                        t.add(bin * binWidth + k, row[bin]);
                    }
                }
            }
            tables.add(t);
        }
        return tables;
    }

    @Test
    void picksTheCheapestBudgetMeetingTauPerBin() {
        int[] budgets = {48, 96, 160};
        double[][] p5 = { // [budget][bin]; NaN: no tokens
                {1.0, 0.5, Double.NaN, 0.95, 0.1},
                {1.0, 0.9, Double.NaN, 0.5, 0.2},
                {1.0, 0.99, Double.NaN, 0.9, 0.3}};
        // bin 0: 48; bin 1: 96; bin 2 unreached: inherits 96; bin 3: 160 (48 meets tau but 96 fails:
        // from 160 down the run of budgets meeting tau stops at 96); bin 4: nothing meets tau: dense
        // within the bin, its end 5 * 64 = 320.
        assertArrayEquals(new int[] {48, 96, 96, 160, 320}, Calibration.choose(budgets, tables(p5, 64), 0.86, 64));
    }

    @Test
    void aHighTailUnderABudgetThatALargerOneFailsIsNotTaken() {
        // the calibration of copy with one dense layer (p5 of the bins at 768 and 896, rounded): budget
        // 48 derails the copy early, and the derailed text reads α near 1; 64 to 176 fail; from 224 / 288 up all hold
        int[] budgets = {48, 64, 112, 176, 224, 288, 352, 448};
        double[][] p5 = {{0.96, 0.98}, {0.001, 0.001}, {0.008, 0.003}, {0.75, 0.14}, {0.91, 0.73}, {0.97, 0.88},
                {0.98, 0.90}, {0.99, 0.96}};
        assertArrayEquals(new int[] {224, 288}, Calibration.choose(budgets, tables(p5, 128), 0.86, 128));
        // a bin whose largest measured budget fails is dense within it, whatever smaller ones read
        assertArrayEquals(new int[] {128}, Calibration.choose(new int[] {48, 96}, tables(new double[][] {{0.95}, {0.5}}, 128), 0.86, 128));
    }

    @Test
    void leadingUnreachedBinsTakeTheFirstReachedBinsBudget() {
        // long prompts: no decoded token below position 128
        double nan = Double.NaN;
        double[][] p5 = {{nan, nan, 0.5, 0.95}, {nan, nan, 0.9, 0.95}};
        assertArrayEquals(new int[] {96, 96, 96, 96}, Calibration.choose(new int[] {48, 96}, tables(p5, 64), 0.86, 64));
        // a failing first bin is dense within it, at least the smallest budget
        assertArrayEquals(new int[] {48, 64}, Calibration.choose(new int[] {64}, tables(new double[][] {{0.1, 1.0}}, 32), 0.86, 32));
    }

    /** One table per budget: 10 trajectories, each with 100 tokens in bin 2 at alpha[budget][0] and 100 in bin 3 at alpha[budget][1]. */
    static List<TailStats> trajectoryTables(double[][] alpha) {
        List<TailStats> tables = new ArrayList<>();
        for (double[] a : alpha) {
            TailStats t = new TailStats(128);
            for (int j = 0; j < 10; j++) {
                for (int k = 0; k < 100; k++) {
                    t.add(2 * 128 + k, a[0]);
                    t.add(3 * 128 + k, a[1]);
                }
                t.addSequence();
            }
            tables.add(t);
        }
        return tables;
    }

    @Test
    void theSequenceGuardRaisesTheBinWithTheLargestShareUntilTheSequenceAlphaHolds() {
        // every p5 holds τ at every budget, so p5 alone picks 48 everywhere; disagreements per trajectory
        // (100 tokens a bin, Σ 1 − α) and the sequence α e^−Σ:
        //   48: 0.5 + 1.0, e^−1.5 ≈ 0.223;  bins 2, 3 at 128: 0.1 + 0.3, e^−0.4 ≈ 0.670
        //   bin 2 at 128 and bin 3 at 256: 0.1 + 0.1, e^−0.2 ≈ 0.819
        int[] budgets = {48, 128, 256};
        List<TailStats> t = trajectoryTables(new double[][] {{0.995, 0.99}, {0.999, 0.997}, {0.9995, 0.999}});
        assertArrayEquals(new int[] {48, 48, 48, 48}, Calibration.choose(budgets, t, 0.86, 0, 128));
        // 0.5: bin 3 (the larger share) to 128 reads e^−(0.5 + 0.3) ≈ 0.449, still below; then bin 2 to 128: 0.670
        assertTrue(Math.exp(-0.8) < 0.5 && Math.exp(-0.4) >= 0.5);
        assertArrayEquals(new int[] {128, 128, 128, 128}, Calibration.choose(budgets, t, 0.86, 0.5, 128));
        // 0.8: then bin 3, the larger share at 128, to 256: 0.819 (the unreached bins 0 and 1 follow bin 2)
        assertTrue(Math.exp(-0.2) >= 0.8 && Math.exp(-0.4) < 0.8);
        assertArrayEquals(new int[] {128, 128, 128, 256}, Calibration.choose(budgets, t, 0.86, 0.8, 128));
        // beyond what the largest candidate gives, a bin goes dense within it (its end), where it costs nothing
        assertArrayEquals(new int[] {384, 384, 384, 512}, Calibration.choose(budgets, t, 0.86, 0.99, 128));
    }

    @Test
    void noProbedTokenIsAnError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Calibration.choose(new int[] {48}, tables(new double[][] {{}}, 64), 0.86, 64));
        assertEquals("calibration produced no probed tokens; nothing to calibrate on", e.getMessage());
    }

    @Test
    void badParametersAreNamed() {
        List<Calibration.Group> none = List.of();
        Set<Integer> dense = Set.of(0, 1);
        assertEquals("tau: must be in (0, 1], got 1.5", assertThrows(IllegalArgumentException.class, () -> Calibration.calibrate(
                null, null, none, new int[] {64}, 1.5, 64, dense, 0, 1, 1, null, Calibration.Listener.SILENT)).getMessage());
        assertEquals("bin-width: must be a positive multiple of 16, got 100", assertThrows(IllegalArgumentException.class,
                () -> Calibration.calibrate(null, null, none, new int[] {64}, 0.86, 100, dense, 0, 1, 1, null,
                        Calibration.Listener.SILENT)).getMessage());
        assertEquals("candidates: budget 40 is below 48 (the sink page and the 2 most recent pages are always kept)",
                assertThrows(IllegalArgumentException.class, () -> Calibration.calibrate(null, null, none, new int[] {40}, 0.86,
                        64, dense, 0, 1, 1, null, Calibration.Listener.SILENT)).getMessage());
        assertEquals("candidates: must be ascending and distinct, got 64 after 96", assertThrows(IllegalArgumentException.class,
                () -> Calibration.calibrate(null, null, none, new int[] {96, 64}, 0.86, 64, dense, 0, 1, 1, null,
                        Calibration.Listener.SILENT)).getMessage());
        assertEquals("groups: at least one group of prompts is needed", assertThrows(IllegalArgumentException.class,
                () -> Calibration.calibrate(null, null, none, new int[] {64}, 0.86, 64, dense, 0, 1, 1, null,
                        Calibration.Listener.SILENT)).getMessage());
    }

    @Test
    void aRunCalibratesOnTheControllersRungsUpToContextMaxRoundedToThePage() {
        // ladder from 64 by ratio 2 under the bin end 96 (= 90 rounded up to the page): 64, then 96 itself
        BudgetController.Settings ctl = new BudgetController.Settings(0.86, 0.02, 0.01, 100, 4, 64, 4096, 2.0, 256, 1024);
        assertArrayEquals(new int[] {64, 96}, Calibration.runCandidates(ctl, 90));
        // 64, 128, 256, 512 under 1000 → end 1008
        assertArrayEquals(new int[] {64, 128, 256, 512, 1008}, Calibration.runCandidates(ctl, 1000));
    }

    @Test
    void defaultCandidatesAre256Steps() {
        assertArrayEquals(new int[] {256, 512, 768}, Calibration.defaultBudgets(1000));
        assertArrayEquals(new int[] {256}, Calibration.defaultBudgets(100));
    }

    @Test
    void defaultCandidatesReachTheLargestContextGiven() {
        assertArrayEquals(new int[] {256, 512, 768, 1024}, Calibration.defaultCandidates(null, List.of(), new int[] {600, 1024}));
    }

    @Test
    void aBuiltInTaskCalibratesOnOneGroupPerContext() {
        List<Calibration.Group> groups = Calibration.groups(ctx -> Tasks.builtin("kv-recall", ctx), new int[] {64, 96}, 3, 5);
        assertEquals(List.of("context 64", "context 96"), groups.stream().map(Calibration.Group::label).toList());
        assertEquals(List.of(3, 3), groups.stream().map(g -> g.prompts().size()).toList());
        List<Calibration.Group> again = Calibration.groups(ctx -> Tasks.builtin("kv-recall", ctx), new int[] {64, 96}, 3, 5);
        assertEquals(groups.get(1).prompts(), again.get(1).prompts(), "the same seed draws the same prompts");
    }

    @Test
    void aCalibratedScheduleIsWrittenUnderItsProvenanceAndParsesBack(@TempDir Path tmp) throws Exception {
        Schedule schedule = Schedule.ofBins(64, new int[] {64, 128});
        Path file = tmp.resolve("calibrated.conf");
        Calibration.write(file, "Written by a test from ckpt\nsparse actor with the LoRA l",
                new Calibration.Result(schedule, new int[] {64, 128}, List.of()));
        String text = Files.readString(file);
        assertTrue(text.startsWith("# Written by a test from ckpt\n# sparse actor with the LoRA l\n"
                + "# candidate budgets [64, 128], bin width 64; format: config/schedules/README.md\n"), text);
        assertEquals(schedule, Schedule.parse(file));
    }
}
