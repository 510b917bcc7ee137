package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CopyTaskTest {

    /** A hand-built prompt: a span of two chunks of 8; the right completion is "abcdefghABCDEFGH]". */
    static final Prompt HAND = new Prompt("hand", "copy\nxy\n[abcdefghABCDEFGH]\nzw\n[", null);

    static Task exact() {
        return Tasks.builtin("copy", 256, 2, false);
    }

    static Task graded() {
        return Tasks.builtin("copy", 256, 2, true);
    }

    @Test
    void theSpanAndTheBracketScoreOneUnderBothRules() {
        for (Task t : List.of(exact(), graded())) {
            assertEquals(1.0, t.verify(HAND, "abcdefghABCDEFGH]").reward());
            assertEquals(1.0, t.verify(HAND, "abcdefghABCDEFGH]\n").reward(), "whitespace after the bracket is tolerated");
        }
        assertEquals("abcdefghABCDEFGH]", exact().solution(HAND).orElseThrow());
    }

    @Test
    void aPartlyRightCopyScoresItsShareOfChunksWhenGradedAndZeroOtherwise() {
        Verdict half = graded().verify(HAND, "abcdefghABCDEFGX]");
        assertEquals(0.5, half.reward());
        assertEquals("wrong step 2 of 2: got ABCDEFGX, expected ABCDEFGH", half.reason());
        assertEquals(0.0, exact().verify(HAND, "abcdefghABCDEFGX]").reward());
        assertEquals(0.5, graded().verify(HAND, "abcdefgh]").reward(), "a missing chunk is a wrong chunk");
        assertEquals("wrong step 2 of 2: got nothing, expected ABCDEFGH", graded().verify(HAND, "abcdefgh]").reason());
        // one symbol dropped shifts everything after it: no chunk after the slip is in its place
        assertEquals(0.0, graded().verify(HAND, "bcdefghABCDEFGH]").reward());
    }

    @Test
    void everyChunkRightButTheEndWrongIsNeverOne() {
        Verdict noBracket = graded().verify(HAND, "abcdefghABCDEFGH");
        assertEquals(0.5, noBracket.reward(), "all chunks right without the bracket: one step short of exact");
        assertEquals("no closing \"]\"", noBracket.reason());
        assertEquals(0.0, exact().verify(HAND, "abcdefghABCDEFGH").reward());
        Verdict after = graded().verify(HAND, "abcdefghABCDEFGH]zw");
        assertEquals(0.5, after.reward());
        assertEquals("text after \"]\": zw", after.reason());
        // more symbols than the span: the chunks written count, so padding never pays
        Verdict longer = graded().verify(HAND, "abcdefghABCDEFGHzwzwzwzw]");
        assertEquals(1.0 / 3.0, longer.reward(), 1e-12);
        assertEquals("extra symbols: 24 written, 16 in the span", longer.reason());
        assertEquals(0.0, graded().verify(HAND, "").reward());
        assertEquals(0.0, exact().verify(HAND, "]").reward());
    }

    @Test
    void promptsHaveTheContextsLengthASpanOfTheStepsAtVaryingPlacesAndNoRepeatedBigram() {
        assertEquals(16, ((CopyTask) Tasks.builtin("copy", 1024, 0, false)).steps(), "16 chunks by default");
        // 64 - 11 = 53 symbols hold 6 chunks; three quarters of them is less than 16
        assertEquals(4, ((CopyTask) Tasks.builtin("copy", 64, 0, false)).steps());
        CopyTask t = (CopyTask) Tasks.builtin("copy", 512, 46, false);
        // stream of 512 - 5 (header) - 4 ("\n[" and "]\n") - 2 ("\n[") = 501 symbols; 62 chunks fit
        assertEquals(46, t.steps());
        assertEquals(2, t.order());
        assertEquals(39, t.alphabet());                    // 38^2 = 1444 < 1503 <= 1521 = 39^2
        Set<Integer> starts = new HashSet<>();
        for (int i = 0; i < 20; i++) {
            Prompt p = t.prompt(7, i);
            String text = p.text();
            assertEquals(512, text.length(), "one token per character");
            assertTrue(text.startsWith("copy\n") && text.endsWith("\n["), text);
            String span = CopyTask.span(text);
            assertEquals(46 * 8, span.length());
            assertEquals(span + "]", t.solution(p).orElseThrow());
            assertEquals(1.0, t.verify(p, span + "]").reward());
            starts.add(text.indexOf('['));
            String stream = text.substring(5, text.length() - 2).replace("\n[", "").replace("]\n", "");
            Set<String> bigrams = new HashSet<>();
            for (int j = 0; j + 2 <= stream.length(); j++) {
                assertTrue(bigrams.add(stream.substring(j, j + 2)), "bigram " + stream.substring(j, j + 2) + " twice in " + p.id());
            }
        }
        assertTrue(starts.size() > 5, "the span moves from prompt to prompt: " + starts);
        Set<Character> symbols = new HashSet<>();
        for (char c : CopyTask.span(t.prompt(7, 0).text()).toCharArray()) {
            symbols.add(c);
        }
        assertTrue(symbols.size() <= 39 && symbols.size() > 30, "a prompt draws from 39 symbols: " + symbols.size());
        assertEquals(t.prompt(7, 3), t.prompt(7, 3), "a prompt is a function of seed and index");
    }

    @Test
    void theOrderGrowsWithTheStreamSoThatNGramsStayDistinct() {
        assertEquals(2, CopyTask.orderFor(1000));      // 62^2 = 3844 >= 3 * 1000
        assertEquals(3, CopyTask.orderFor(2000));      // 3844 < 6000 <= 62^3
        assertEquals(13, CopyTask.alphabetSize(55, 2));   // 12^2 = 144 < 165 <= 169 = 13^2
        assertEquals(62, CopyTask.alphabetSize(1280, 2)); // 61^2 = 3721 < 3840 <= 3844
        assertEquals(6, CopyTask.alphabetSize(10, 2));    // 5^2 = 25 < 30 <= 36 = 6^2
        assertEquals(4, CopyTask.alphabetSize(2, 2));     // never fewer than 4
        String s = CopyTask.distinctStream(new SplittableRandom(1), CopyTask.SYMBOLS, 3000, 3);
        Set<String> grams = new HashSet<>();
        for (int j = 0; j + 3 <= s.length(); j++) {
            assertTrue(grams.add(s.substring(j, j + 3)));
        }
    }

    @Test
    void practiceIsAShorterSpanWithItsCopyAsTheDrill() {
        CopyTask t = (CopyTask) Tasks.builtin("copy", 256, 0, false);
        for (int i = 0; i < 10; i++) {
            Practice p = t.practice(3, i).orElseThrow();
            String span = CopyTask.span(p.context());
            assertEquals(span + "]", p.drill());
            assertTrue(span.length() % 8 == 0 && span.length() >= 8 && span.length() <= t.steps() * 8, span);
        }
    }

    @Test
    void tooManyStepsForTheContextAreRefusedNamingBoth() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.builtin("copy", 128, 64, false));
        assertEquals("copy: context 128 holds a span of 14 steps of 8 symbols, fewer than the 64 asked (a longer context or fewer steps)",
                e.getMessage());
    }
}
