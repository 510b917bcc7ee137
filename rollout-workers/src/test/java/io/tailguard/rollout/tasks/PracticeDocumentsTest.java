package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Task.practice: kv-recall's practice drills answer every query from the context; datasets have none. */
class PracticeDocumentsTest {

    @Test
    void kvRecallDrillsAskDistinctKeysOfTheirPairsUntilTheContextIsFull() {
        for (int ctx : new int[] {64, 256, 1024}) {
            Task t = Tasks.builtin("kv-recall", ctx);
            assertEquals(t.practice(3, 5).orElseThrow(), t.practice(3, 5).orElseThrow(), "deterministic");
            assertNotEquals(t.practice(3, 5).orElseThrow(), t.practice(3, 6).orElseThrow());
            int mostPairs = 0;
            for (long index = 0; index < 40; index++) {
                Practice doc = t.practice(3, index).orElseThrow();
                assertTrue(doc.text().length() <= ctx, ctx + ": length " + doc.text().length());
                assertTrue(doc.context().startsWith("kv-recall\n"));
                Map<String, String> pairs = new HashMap<>();
                for (String line : doc.context().substring("kv-recall\n".length()).split("\n")) {
                    assertTrue(line.matches("[a-zA-Z]+\\d{3}"), line);
                    assertTrue(pairs.put(line.replaceAll("\\d", ""), line.replaceAll("[a-zA-Z]", "")) == null, "distinct keys");
                }
                assertTrue(pairs.size() >= 2, ctx + ": " + pairs.size() + " pairs");
                mostPairs = Math.max(mostPairs, pairs.size());
                Set<String> asked = new HashSet<>();
                for (String line : doc.drill().split("\n")) {
                    assertTrue(line.matches("\\?[a-zA-Z]+\\d{3}"), line);
                    String key = line.substring(1).replaceAll("\\d", "");
                    assertEquals(pairs.get(key), line.replaceAll("[^0-9]", ""), "query " + line + " answers with its pair's value");
                    assertTrue(asked.add(key), "asked twice: " + key);
                }
                assertTrue(asked.size() >= 2, ctx + ": " + asked.size() + " queries");
                int queryLine = doc.drill().indexOf('\n') + 1;
                assertTrue(asked.size() == pairs.size() || doc.text().length() + queryLine > ctx,
                        "the drill stops only when every key is asked or the context is full");
                assertTrue(BuiltinTask.isTokenizerText(doc.text()));
            }
            // 64: header 10 + 8 pairs of 5 + 2 queries of 6 = 62; the most pairs that leave room for two queries
            if (ctx == 64) {
                assertEquals(8, mostPairs);
            }
        }
    }

    @Test
    void practiceIsNotThePromptStream() {
        Task t = Tasks.builtin("kv-recall", 256);
        assertTrue(!t.prompt(3, 5).text().startsWith(t.practice(3, 5).orElseThrow().context().substring(0, 20)));
    }

    @Test
    void datasetTasksHaveNoPractice() throws Exception {
        Path f = java.nio.file.Files.createTempFile("math", ".jsonl");
        java.nio.file.Files.writeString(f, "{\"id\":\"a\",\"problem\":\"1+1\",\"answer\":\"2\"}\n");
        assertTrue(Tasks.fromDataset("math", f).practice(0, 0).isEmpty());
        java.nio.file.Files.delete(f);
    }
}
