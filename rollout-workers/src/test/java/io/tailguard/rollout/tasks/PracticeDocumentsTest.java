package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Task.practice: kv-recall's practice drills answer every query from the context; datasets have none. */
class PracticeDocumentsTest {

    @Test
    void kvRecallPracticeQueriesRepeatTheirPairsValues() {
        for (int ctx : new int[] {64, 256, 1024}) {
            Task t = Tasks.builtin("kv-recall", ctx);
            Practice doc = t.practice(3, 5).orElseThrow();
            assertEquals(doc, t.practice(3, 5).orElseThrow(), "deterministic");
            assertNotEquals(doc, t.practice(3, 6).orElseThrow());
            int len = doc.text().length();
            assertTrue(len <= ctx && len > ctx - 16, ctx + ": length " + len);
            assertTrue(doc.context().startsWith("kv-recall\n"));
            Map<String, String> pairs = new HashMap<>();
            for (String line : doc.context().substring("kv-recall\n".length()).split("\n")) {
                assertTrue(line.matches("[a-zA-Z]+\\d{3}"), line);
                pairs.put(line.replaceAll("\\d", ""), line.replaceAll("[a-zA-Z]", ""));
            }
            assertTrue(pairs.size() >= 2, ctx + ": " + pairs.size() + " pairs");
            int queries = 0;
            for (String line : doc.drill().split("\n")) {
                assertTrue(line.matches("\\?[a-zA-Z]+\\d{3}"), line);
                String key = line.substring(1).replaceAll("\\d", "");
                assertEquals(pairs.get(key), line.replaceAll("[^0-9]", ""), "query " + line + " answers with its pair's value");
                queries++;
            }
            assertTrue(queries >= 2, ctx + ": " + queries + " queries");
            assertTrue(BuiltinTask.isTokenizerText(doc.text()));
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
