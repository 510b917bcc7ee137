package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvTraceTaskTest {

    /** A hand-built prompt: three rows, two queried keys; the right completion is "cd456\nab123\n". */
    static final Prompt HAND = new Prompt("hand", "kv-trace\nab123\ncd456\nef789\n?cd,ab\n", null);

    static Task exact() {
        return Tasks.builtin("kv-trace", 256, 2, false);
    }

    static Task graded() {
        return Tasks.builtin("kv-trace", 256, 2, true);
    }

    @Test
    void aCorrectTraceScoresOneUnderBothRules() {
        for (Task t : List.of(exact(), graded())) {
            assertEquals(1.0, t.verify(HAND, "cd456\nab123\n").reward());
            assertEquals(1.0, t.verify(HAND, "cd456\nab123").reward(), "a last line without a newline counts");
            assertEquals(1.0, t.verify(HAND, " cd456 \n\nab123\n").reward(), "spaces and blank lines are tolerated");
        }
        assertEquals("cd456\nab123\n", exact().solution(HAND).orElseThrow());
    }

    @Test
    void aPartlyCorrectTraceScoresItsShareOfLinesWhenGradedAndZeroOtherwise() {
        Verdict half = graded().verify(HAND, "cd456\nab999\n");
        assertEquals(0.5, half.reward());
        assertEquals("wrong line 2 of 2: got ab999, expected ab123", half.reason());
        assertEquals(0.0, exact().verify(HAND, "cd456\nab999\n").reward());
        assertEquals(0.5, graded().verify(HAND, "cd456\n").reward(), "a missing line is a wrong line");
        assertEquals("wrong line 2 of 2: got nothing, expected ab123", graded().verify(HAND, "cd456\n").reason());
    }

    @Test
    void extraLinesNeverPayAndOutOfPlaceLinesScoreNothing() {
        Verdict extra = graded().verify(HAND, "cd456\nab123\nef789\n");
        assertEquals(2.0 / 3.0, extra.reward(), 1e-12);
        assertEquals("extra lines: 3 written, 2 asked", extra.reason());
        assertEquals(0.0, exact().verify(HAND, "cd456\nab123\nef789\n").reward());
        // the whole table copied: every row written, two of them in the asked places at best
        assertEquals(0.0, graded().verify(HAND, "ab123\ncd456\nef789\n").reward());
        assertEquals(0.0, graded().verify(HAND, "ab123\ncd456\n").reward(), "the right lines in the wrong order");
    }

    @Test
    void noAnswerScoresZero() {
        for (Task t : List.of(exact(), graded())) {
            Verdict v = t.verify(HAND, "\n \n");
            assertEquals(0.0, v.reward());
            assertEquals("no answer found", v.reason());
        }
    }

    @Test
    void generatedPromptsFillTheContextAndTheirSolutionIsTheTrace() {
        for (int context : new int[] {256, 1024, 4096}) {
            KvTraceTask t = (KvTraceTask) Tasks.builtin("kv-trace", context, 0, false);
            assertEquals(context / 16, t.steps());
            for (int i = 0; i < 5; i++) {
                Prompt p = t.prompt(7, i);
                assertTrue(p.text().length() <= context && p.text().length() > context - 16,
                        context + ": prompt of " + p.text().length() + " chars");
                assertTrue(BuiltinTask.isTokenizerText(p.text()));
                String solution = t.solution(p).orElseThrow();
                assertEquals(p.answer(), solution);
                List<String> lines = List.of(solution.split("\n"));
                assertEquals(t.steps(), lines.size());
                Set<String> keys = new HashSet<>();
                for (String line : lines) {
                    String key = line.replaceAll("\\d", "");
                    assertTrue(keys.add(key), "keys are asked once: " + key);
                    assertTrue(p.text().contains("\n" + line + "\n"), "each line is a row of the table: " + line);
                }
                assertEquals(1.0, t.verify(p, solution).reward());
                assertEquals(p.text(), t.prompt(7, i).text(), "deterministic in (seed, index)");
            }
            assertFalse(t.prompt(7, 0).text().equals(t.prompt(8, 0).text()));
        }
    }

    @Test
    void stepsAreAKnobOfTheirOwn() {
        KvTraceTask t = (KvTraceTask) Tasks.builtin("kv-trace", 2048, 40, true);
        Prompt p = t.prompt(1, 3);
        assertEquals(40, t.solution(p).orElseThrow().split("\n").length);
        assertTrue(p.text().length() > 2048 - 16);
        IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class, () -> Tasks.builtin("kv-trace", 128, 64, false));
        assertTrue(tooMany.getMessage().startsWith("kv-trace: context 128 holds"), tooMany.getMessage());
        IllegalArgumentException fixed = assertThrows(IllegalArgumentException.class, () -> Tasks.builtin("kv-recall", 256, 8, false));
        assertEquals("task kv-recall has a fixed completion: steps and a graded reward apply to kv-trace, copy only", fixed.getMessage());
    }

    @Test
    void practiceDrillsAreTracesOfSmallerTablesAndQueries() {
        KvTraceTask t = (KvTraceTask) Tasks.builtin("kv-trace", 512, 0, false);
        for (int i = 0; i < 20; i++) {
            Practice p = t.practice(3, i).orElseThrow();
            assertTrue(p.context().length() <= 512, "practice context " + p.context().length());
            Prompt asPrompt = new Prompt("practice", p.context(), null);
            assertEquals(t.solution(asPrompt).orElseThrow(), p.drill(), "the drill is the trace of its own context");
            int k = p.drill().split("\n").length;
            assertTrue(k >= 1 && k <= t.steps(), "drill of " + k + " lines");
        }
    }
}
