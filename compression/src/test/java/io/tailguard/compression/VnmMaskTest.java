package io.tailguard.compression;

import org.junit.jupiter.api.Test;

import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VnmMaskTest {

    /** A mask from rows of 0/1 digits, e.g. "11000", "00110". */
    private static boolean[] mask(String... rows) {
        int cols = rows[0].length();
        boolean[] m = new boolean[rows.length * cols];
        for (int r = 0; r < rows.length; r++) {
            for (int c = 0; c < cols; c++) {
                m[r * cols + c] = rows[r].charAt(c) == '1';
            }
        }
        return m;
    }

    private static Optional<String> check(VnmPattern p, String... rows) {
        return VnmChecker.violation(mask(rows), rows.length, rows[0].length(), p);
    }

    @Test
    void checkerAcceptsHandMadeMasksThatFitAndNamesEveryKindOfViolation() {
        VnmPattern p225 = new VnmPattern(2, 2, 5);
        // Two rows share the columns {0, 1, 3, 4}: fine; block 2 is the narrow 3-column tail.
        assertEquals(Optional.empty(), check(p225, "11000" + "10010" + "110", "00011" + "01001" + "011"));
        // A row keeping 3 of its block.
        assertTrue(check(p225, "11100" + "11000" + "110", "11000" + "11000" + "110").orElseThrow().contains("row 0, columns 0..4: keeps 3"));
        // A row keeping 1.
        assertTrue(check(p225, "11000" + "11000" + "110", "11000" + "01000" + "110").orElseThrow().contains("row 1, columns 5..9: keeps 1"));
        // The two rows together use 5 distinct columns of one block: no single choice of 4 covers them.
        VnmPattern p325 = new VnmPattern(3, 2, 5);
        assertTrue(check(p325, "11000", "00110", "10001").orElseThrow().contains("use 5 distinct columns"));
        // The narrow tail (2 columns): each row must keep both.
        VnmPattern p125 = new VnmPattern(1, 2, 5);
        assertTrue(check(p125, "1100010").orElseThrow().contains("columns 5..6: keeps 1, pattern 1:2:5 needs exactly 2"));
        // 2:4: exactly 2 of every 4 consecutive entries.
        assertEquals(Optional.empty(), check(VnmPattern.TWO_FOUR, "10010110", "01101001"));
        assertTrue(check(VnmPattern.TWO_FOUR, "10010111").orElseThrow().contains("columns 4..7: keeps 3"));
        assertTrue(check(VnmPattern.TWO_FOUR, "00000110").orElseThrow().contains("columns 0..3: keeps 0"));
        // Shapes the pattern cannot tile.
        assertTrue(check(p225, "11000", "11000", "11000").orElseThrow().contains("not a multiple of V = 2"));
        assertTrue(VnmChecker.violation(new boolean[3], 1, 4, VnmPattern.TWO_FOUR).orElseThrow().contains("entries"));
    }

    @Test
    void selectedMasksSatisfyTheirPatternExactly() {
        SplittableRandom rng = new SplittableRandom(5);
        int[][] shapes = {{128, 384}, {64, 128}, {32, 100}, {16, 9}, {8, 33}};
        VnmPattern[] patterns = {new VnmPattern(64, 2, 5), new VnmPattern(16, 2, 8), new VnmPattern(8, 2, 7),
                VnmPattern.TWO_FOUR, new VnmPattern(4, 2, 4), new VnmPattern(8, 2, 6)};
        int checked = 0;
        for (int[] s : shapes) {
            for (VnmPattern p : patterns) {
                if (p.misfit(s[0], s[1]).isPresent()) {
                    continue;
                }
                float[] score = new float[s[0] * s[1]];
                for (int i = 0; i < score.length; i++) {
                    score[i] = rng.nextInt(10) == 0 ? 0f : (float) rng.nextDouble(); // ties at zero too
                }
                VnmMask m = VnmSelector.select(score, s[0], s[1], p);
                assertEquals(Optional.empty(), VnmChecker.violation(m.toBooleans(), s[0], s[1], p), p + " on " + s[0] + "x" + s[1]);
                checked++;
            }
        }
        assertTrue(checked >= 20, "checked " + checked);
    }

    @Test
    void eachBlockGetsTheBestMaskItsPatternAllows() {
        // Brute force, independent of the selector: every 0/1 mask of the block that the checker
        // accepts, best by kept score.
        SplittableRandom rng = new SplittableRandom(11);
        VnmPattern p = new VnmPattern(3, 2, 5);
        for (int trial = 0; trial < 30; trial++) {
            float[] score = new float[15];
            for (int i = 0; i < score.length; i++) {
                score[i] = (float) rng.nextInt(20); // small integers: plenty of ties
            }
            double best = -1;
            for (int bits = 0; bits < 1 << 15; bits++) {
                if (Integer.bitCount(bits) != 6) {
                    continue;
                }
                boolean[] m = new boolean[15];
                double kept = 0;
                for (int i = 0; i < 15; i++) {
                    m[i] = (bits >> i & 1) == 1;
                    kept += m[i] ? score[i] : 0;
                }
                if (kept > best && VnmChecker.violation(m, 3, 5, p).isEmpty()) {
                    best = kept;
                }
            }
            assertEquals(best, VnmSelector.select(score, 3, 5, p).retained(score), 0.0, "trial " + trial);
        }
    }

    @Test
    void theBestChoiceOfColumnsIsNotTheFourLargestColumnSums() {
        // Rows (10, 10, 6, 0, 0) and (0, 0, 6, 10, 10): column sums 10, 10, 12, 10, 10. The four
        // largest sums include column 2, e.g. {0, 1, 2, 3}, which keeps 10+10 and 10+6 = 36; dropping
        // column 2, {0, 1, 3, 4}, keeps 10+10 and 10+10 = 40, the best of the block.
        float[] score = {10, 10, 6, 0, 0, 0, 0, 6, 10, 10};
        VnmMask m = VnmSelector.select(score, 2, 5, new VnmPattern(2, 2, 5));
        assertEquals(40.0, m.retained(score), 0.0);
        assertFalse(m.toBooleans()[2] || m.toBooleans()[7], "column 2 is dropped for the block");
    }

    @Test
    void maskRecordsRefuseOutOfRangeOrUnorderedEntries() {
        VnmPattern p = new VnmPattern(1, 2, 5);
        assertThrows(IllegalArgumentException.class, () -> new VnmMask(p, 1, 5, new byte[] {0, 1, 2, 5}, new byte[] {0, 1}));
        assertThrows(IllegalArgumentException.class, () -> new VnmMask(p, 1, 5, new byte[] {0, 2, 1, 3}, new byte[] {0, 1}));
        assertThrows(IllegalArgumentException.class, () -> new VnmMask(p, 1, 5, new byte[] {0, 1, 2, 3}, new byte[] {1, 1}));
        assertThrows(IllegalArgumentException.class, () -> new VnmMask(p, 1, 5, new byte[] {0, 1, 2, 3}, new byte[] {0, 4}));
    }

    @Test
    void patternsParseAndSayWhyTheyDoNotFit() {
        assertEquals(new VnmPattern(64, 2, 5), VnmPattern.parse("64:2:5"));
        assertEquals(VnmPattern.TWO_FOUR, VnmPattern.parse("2:4"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPattern.parse("64:3:5")).getMessage().contains("N must be 2"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPattern.parse("64:2:3")).getMessage().contains("M must be"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPattern.parse("2:8")).getMessage().contains("2:4"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VnmPattern.parse("sixty")).getMessage().contains("not V:N:M"));
        assertEquals("96 rows are not a multiple of V = 64", new VnmPattern(64, 2, 5).misfit(96, 128).orElseThrow());
        assertTrue(new VnmPattern(128, 2, 5).misfit(TinyModels.CONFIG).orElseThrow()
                .startsWith("pattern 128:2:5 does not fit model.layers.0.self_attn.q_proj.weight [64, 64]"));
        assertEquals(Optional.empty(), new VnmPattern(32, 2, 5).misfit(TinyModels.CONFIG));
    }
}
