package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Task.practice: kv-recall's practice documents answer every query correctly; datasets have none. */
class PracticeDocumentsTest {

    @Test
    void kvRecallPracticeQueriesRepeatTheirPairsValues() {
        for (int ctx : new int[] {64, 256, 1024}) {
            Task t = Tasks.builtin("kv-recall", ctx);
            String doc = t.practice(3, 5).orElseThrow();
            assertEquals(doc, t.practice(3, 5).orElseThrow(), "deterministic");
            assertNotEquals(doc, t.practice(3, 6).orElseThrow());
            assertTrue(doc.length() <= ctx && doc.length() > ctx - 16, ctx + ": length " + doc.length());
            assertTrue(doc.startsWith("kv-recall\n"));
            Map<String, String> pairs = new HashMap<>();
            int queries = 0;
            for (String line : doc.substring("kv-recall\n".length()).split("\n")) {
                String[] kv = line.replace("?", "").split("=");
                assertEquals(2, kv.length, line);
                assertTrue(kv[1].matches("\\d{3}"), line);
                if (line.startsWith("?")) {
                    assertEquals(pairs.get(kv[0]), kv[1], "query " + line + " answers with its pair's value");
                    queries++;
                } else {
                    assertEquals(0, queries, "pairs come before queries");
                    pairs.put(kv[0], kv[1]);
                }
            }
            assertTrue(queries >= 2, ctx + ": " + queries + " queries");
            assertTrue(BuiltinTask.isTokenizerText(doc));
        }
    }

    @Test
    void practiceIsNotThePromptStream() {
        Task t = Tasks.builtin("kv-recall", 256);
        assertTrue(!t.prompt(3, 5).text().startsWith(t.practice(3, 5).orElseThrow().substring(0, 40)));
    }

    @Test
    void datasetTasksHaveNoPractice() throws Exception {
        Path f = java.nio.file.Files.createTempFile("math", ".jsonl");
        java.nio.file.Files.writeString(f, "{\"id\":\"a\",\"problem\":\"1+1\",\"answer\":\"2\"}\n");
        assertTrue(Tasks.fromDataset("math", f).practice(0, 0).isEmpty());
        java.nio.file.Files.delete(f);
    }
}
