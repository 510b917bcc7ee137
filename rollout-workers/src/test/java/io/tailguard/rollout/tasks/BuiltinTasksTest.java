package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BuiltinTasksTest {

    private static Prompt hand(String text) {
        return new Prompt("hand", text, null);
    }

    // ---- hand-written prompts: expected values worked out by hand ----

    @Test
    void kvRecallAcceptsTheQueriedValueAndIgnoresTextAfterTheNewline() {
        Task t = Tasks.builtin("kv-recall", 256);
        Prompt p = hand("kv-recall\na123\nc456\nC789\n?c");
        assertEquals(Verdict.correct(), t.verify(p, "456\n"));
        assertEquals(Verdict.correct(), t.verify(p, "456\na123 trailing garbage"));
        assertEquals(Verdict.correct(), t.verify(p, "456"));     // stopped at <eos> without a newline
        assertEquals("456\n", t.solution(p).orElseThrow());
    }

    @Test
    void kvRecallRejectsAnotherKeysValueWithAReason() {
        Task t = Tasks.builtin("kv-recall", 256);
        Prompt p = hand("kv-recall\na123\nc456\nC789\n?c");
        assertEquals(Verdict.wrong("wrong answer: got 123, expected 456"), t.verify(p, "123\n456\n"));
        assertEquals(Verdict.wrong("wrong answer: got 45, expected 456"), t.verify(p, "45\n"));
        assertEquals(Verdict.wrong("no answer found"), t.verify(p, "\n456"));
        assertEquals(Verdict.wrong("no answer found"), t.verify(p, ""));
    }

    @Test
    void kvRecallKeysAreCaseSensitiveAndMatchWholeLabels() {
        Task t = Tasks.builtin("kv-recall", 256);
        assertEquals("789\n", t.solution(hand("kv-recall\na123\nc456\nC789\n?C")).orElseThrow());
        // multi-letter labels (long contexts): "a" is not the line of "ab"
        assertEquals("111\n", t.solution(hand("kv-recall\nab222\na111\n?a")).orElseThrow());
        assertEquals("222\n", t.solution(hand("kv-recall\nab222\na111\n?ab")).orElseThrow());
        assertThrows(IllegalArgumentException.class, () -> t.solution(hand("kv-recall\na123\n?b")));
    }

    @Test
    void kvRecallUsesSingleLetterKeysUpToContext272AndLabelsBeyond() {
        for (int ctx : new int[] {64, 128, 256, 272, 280, 1024}) {
            String text = Tasks.builtin("kv-recall", ctx).prompt(0, 0).text();
            String key = text.substring(text.lastIndexOf("\n?") + 2);
            assertEquals(ctx <= 272 ? 1 : 2, key.length(), "context " + ctx + ": key " + key);
            String[] lines = text.split("\n");
            Set<String> keys = new HashSet<>();
            for (int i = 1; i < lines.length - 1; i++) {
                assertTrue(lines[i].matches("[a-zA-Z]{" + key.length() + "}\\d{3}"), lines[i]);
                assertTrue(keys.add(lines[i].substring(0, key.length())), "distinct keys: " + lines[i]);
            }
        }
    }

    @Test
    void pointerChaseAcceptsTheFullChainThenTheEndNode() {
        Task t = Tasks.builtin("pointer-chase", 256);
        Prompt p = hand("pointer-chase\ncd>ef\nab>cd\ngh>ab\nef>gh\ngo ab 3\n");
        String good = "ab>cd\ncd>ef\nef>gh\n=gh\n";
        assertEquals(good, t.solution(p).orElseThrow());
        assertEquals(Verdict.correct(), t.verify(p, good));
        assertEquals(Verdict.correct(), t.verify(p, good + "=ab\nmore garbage"));
    }

    @Test
    void pointerChaseRejectsWrongEndsWrongHopsAndMissingAnswers() {
        Task t = Tasks.builtin("pointer-chase", 256);
        Prompt p = hand("pointer-chase\ncd>ef\nab>cd\ngh>ab\nef>gh\ngo ab 3\n");
        assertEquals(Verdict.wrong("wrong answer: got ef, expected gh"), t.verify(p, "ab>cd\ncd>ef\n=ef\n"));
        // the right end node guessed without the right chain is still wrong
        assertEquals(Verdict.wrong("wrong chain: 1 hops, expected 3"), t.verify(p, "ab>gh\n=gh\n"));
        assertEquals(Verdict.wrong("wrong chain: hop 2 got cd>ab, expected cd>ef"),
                t.verify(p, "ab>cd\ncd>ab\nef>gh\n=gh\n"));
        assertEquals(Verdict.wrong("no answer found"), t.verify(p, "ab>cd\ncd>ef\nef>gh\n"));
    }

    @Test
    void markedSumAcceptsRunningSumsModHundredThenTheTotal() {
        Task t = Tasks.builtin("marked-sum", 256);
        Prompt p = hand("marked-sum\n*17\n 41\n*92\n 08\n*05\nsum?\n");
        // 17, 17+92=109 -> 09, 09+05=14
        String good = "+17=17\n+92=09\n+05=14\n=14\n";
        assertEquals(good, t.solution(p).orElseThrow());
        assertEquals(Verdict.correct(), t.verify(p, good));
        assertEquals(Verdict.correct(), t.verify(p, good + "+41=55\n"));
    }

    @Test
    void markedSumRejectsUnmarkedNumbersAndWrongTotals() {
        Task t = Tasks.builtin("marked-sum", 256);
        Prompt p = hand("marked-sum\n*17\n 41\n*92\n 08\n*05\nsum?\n");
        assertEquals(Verdict.wrong("wrong answer: got 114, expected 14"), t.verify(p, "+17=17\n+92=109\n+05=114\n=114\n"));
        assertEquals(Verdict.wrong("wrong answer: got 63, expected 14"), t.verify(p, "+17=17\n+41=58\n+05=63\n=63\n"));
        assertEquals(Verdict.wrong("wrong chain: step 2 got +41=58, expected +92=09"),
                t.verify(p, "+17=17\n+41=58\n+05=14\n=14\n"));
        assertEquals(Verdict.wrong("no answer found"), t.verify(p, "+17=17\n+92=09\n"));
    }

    // ---- generated prompts ----

    @ParameterizedTest
    @ValueSource(strings = {"kv-recall", "pointer-chase", "marked-sum"})
    void solutionsOfManySeededPromptsVerifyAsCorrect(String name) {
        for (int ctx : new int[]{64, 300, 1024, 4096}) {
            Task t = Tasks.builtin(name, ctx);
            for (long seed = 0; seed < 3; seed++) {
                for (long i = 0; i < 70; i++) {
                    Prompt p = t.prompt(seed, i);
                    String sol = t.solution(p).orElseThrow();
                    assertEquals(Verdict.correct(), t.verify(p, sol), p.id() + "\n" + sol);
                    assertTrue(sol.endsWith("\n"), "solution ends with its terminator");
                    assertTrue(sol.length() <= 40, "completion stays short: " + sol.length());
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"kv-recall", "pointer-chase", "marked-sum"})
    void corruptedSolutionsVerifyAsWrong(String name) {
        Task t = Tasks.builtin(name, 1024);
        for (long i = 0; i < 100; i++) {
            Prompt p = t.prompt(7, i);
            String sol = t.solution(p).orElseThrow();
            Verdict changed = t.verify(p, changeOneCharacter(sol, i));
            assertEquals(0.0, changed.reward(), p.id() + " changed: " + changeOneCharacter(sol, i));
            assertFalse(changed.reason().isBlank());
            String truncated = sol.substring(0, sol.length() - 2);   // drops the last answer character
            assertEquals(0.0, t.verify(p, truncated).reward(), p.id() + " truncated: " + truncated);
            assertEquals(Verdict.wrong("no answer found"), t.verify(p, ""));
        }
    }

    /** Changes one digit or letter of the solution (not a separator), chosen by {@code salt}. */
    private static String changeOneCharacter(String s, long salt) {
        int[] positions = s.chars().filter(Character::isLetterOrDigit).toArray();
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            if (Character.isLetterOrDigit(s.charAt(i)) && n++ == salt % positions.length) {
                char c = s.charAt(i);
                char to = Character.isDigit(c) ? (char) ('0' + (c - '0' + 1) % 10) : (c == 'a' ? 'b' : 'a');
                return s.substring(0, i) + to + s.substring(i + 1);
            }
        }
        throw new AssertionError();
    }

    @ParameterizedTest
    @ValueSource(strings = {"kv-recall", "pointer-chase", "marked-sum"})
    void promptsAreDeterministicForASeedAndDifferAcrossSeedsAndIndices(String name) {
        Task a = Tasks.builtin(name, 512);
        Task b = Tasks.builtin(name, 512);
        assertEquals(a.prompt(42, 17), b.prompt(42, 17));
        assertEquals(name + "/c512/s42/i17", a.prompt(42, 17).id());
        Set<String> texts = new HashSet<>();
        for (long seed = 0; seed < 5; seed++) {
            for (long i = 0; i < 5; i++) {
                texts.add(a.prompt(seed, i).text());
            }
        }
        assertEquals(25, texts.size());
        assertNotEquals(a.prompt(1, 0).text(), a.prompt(0, 1).text());
    }

    @ParameterizedTest
    @ValueSource(strings = {"kv-recall", "pointer-chase", "marked-sum"})
    void promptsFillTheRequestedContextWithinTenPercentUsingOnlyTokenizerCharacters(String name) {
        for (int ctx : new int[]{64, 128, 500, 2048, 8192, 32768}) {
            Task t = Tasks.builtin(name, ctx);
            for (long i = 0; i < 5; i++) {
                Prompt p = t.prompt(3, i);
                int len = p.text().length();
                assertTrue(len >= 0.9 * ctx && len <= 1.1 * ctx, name + " ctx " + ctx + " length " + len);
                String all = p.text() + t.solution(p).orElseThrow();
                for (char c : all.toCharArray()) {
                    assertTrue(c == '\n' || (c >= 32 && c <= 126), "character " + (int) c + " in " + p.id());
                }
            }
        }
    }

    @Test
    void kvRecallQueriesAKeyFromTheFirstThreeQuartersOfTheContext() {
        Task t = Tasks.builtin("kv-recall", 4096);
        for (long i = 0; i < 50; i++) {
            String text = t.prompt(0, i).text();
            String key = text.substring(text.lastIndexOf("\n?") + 2);
            int at = text.indexOf("\n" + key);
            assertTrue(at < 0.76 * text.length(), "queried line at " + at + " of " + text.length());
        }
    }

    @Test
    void unknownTaskNamesAreRejectedNamingTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.builtin("kv-recal", 512));
        assertTrue(e.getMessage().contains("kv-recal"), e.getMessage());
        assertTrue(e.getMessage().contains("kv-recall, pointer-chase, marked-sum, kv-trace"), e.getMessage());
        assertEquals(java.util.List.of("kv-recall", "pointer-chase", "marked-sum", "kv-trace", "copy"), Tasks.builtinNames());
        assertThrows(IllegalArgumentException.class, () -> Tasks.builtin("kv-recall", 10));
    }

    @Test
    void generatedTasksHaveNoFiniteSize() {
        assertTrue(Tasks.builtin("marked-sum", 128).size().isEmpty());
    }
}
