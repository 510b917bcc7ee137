package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DatasetTaskTest {

    @TempDir
    Path dir;

    @Test
    void badLinesAreSkippedWithAWarningNamingFileAndLine() throws IOException {
        Path file = dir.resolve("mixed.jsonl");
        Files.writeString(file, String.join("\n",
                "{\"id\":\"a\",\"problem\":\"p\",\"answer\":\"1\"}",        // 1 ok
                "{\"id\":\"b\",\"problem\":\"p\",",                       // 2 truncated JSON
                "",                                                        // 3 blank: ignored
                "{\"id\":\"c\",\"problem\":\"p\"}",                       // 4 no answer
                "[1, 2]",                                                  // 5 not an object
                "{'id':'d','problem':'p','answer':'2'}",                   // 6 single quotes: not JSON
                "{\"id\":\"a\",\"problem\":\"again\",\"answer\":\"3\"}",  // 7 duplicate id
                "{\"id\":\"e\",\"problem\":\"p\",\"answer\":\"4\"} trailing", // 8 trailing text
                "{\"id\":\"f\",\"problem\":{\"x\":1},\"answer\":\"5\"}",  // 9 problem not text
                "{\"id\":\"g\",\"problem\":\"q\",\"answer\":\"6\"}"));    // 10 ok
        DatasetTask t = Tasks.fromDataset("math", file);
        assertEquals(List.of("a", "g"), t.prompts().stream().map(Prompt::id).toList());
        assertEquals(7, t.skippedCount());
        List<Integer> lines = List.of(2, 4, 5, 6, 7, 8, 9);
        for (int i = 0; i < lines.size(); i++) {
            String w = t.skipped().get(i);
            assertTrue(w.startsWith(file + ":" + lines.get(i) + ": "), w);
        }
        assertTrue(t.skipped().get(1).contains("\"answer\""), t.skipped().get(1));
        assertTrue(t.skipped().get(4).contains("duplicate id \"a\""), t.skipped().get(4));
    }

    @Test
    void aMissingFileIsAnErrorNamingTheFile() {
        Path file = dir.resolve("nope.jsonl");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.fromDataset("math", file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void aDatasetWithoutAValidLineIsAnErrorNamingTheFile() throws IOException {
        Path empty = dir.resolve("empty.jsonl");
        Files.writeString(empty, "");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.fromDataset("code", empty));
        assertTrue(e.getMessage().contains(empty.toString()), e.getMessage());
        Path junk = dir.resolve("junk.jsonl");
        Files.writeString(junk, "not json\n{\"id\":\"x\"}\n");
        e = assertThrows(IllegalArgumentException.class, () -> Tasks.fromDataset("math", junk));
        assertTrue(e.getMessage().contains(junk.toString()) && e.getMessage().contains("no valid record"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void unknownDatasetTaskNamesAreRejected() throws IOException {
        Path file = dir.resolve("x.jsonl");
        Files.writeString(file, "{\"id\":\"a\",\"problem\":\"p\",\"answer\":\"1\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tasks.fromDataset("maths", file));
        assertTrue(e.getMessage().contains("maths") && e.getMessage().contains("math, code"), e.getMessage());
    }

    @Test
    void codePromptsDoNotRevealTheTestsAndIndicesFollowFileOrder() throws IOException {
        Path file = dir.resolve("code.jsonl");
        Files.writeString(file, "{\"id\":\"add\",\"problem\":\"Write add(a, b).\",\"tests\":\"assert add(1, 2) == 3\"}\n"
                + "{\"id\":\"sub\",\"problem\":\"Write sub(a, b).\",\"tests\":\"assert sub(1, 2) == -1\"}\n");
        DatasetTask t = Tasks.fromDataset("code", file);
        Prompt p = t.prompt(999, 1);
        assertEquals("sub", p.id());
        assertEquals("Write sub(a, b).", p.text());
        assertNull(p.answer());
        assertThrows(IndexOutOfBoundsException.class, () -> t.prompt(0, 2));
        assertEquals(Verdict.wrong("no code block found"), t.verify(p, "def sub(a, b): return a - b"));
        assertEquals(Verdict.wrong("unknown prompt id other for dataset code.jsonl"),
                t.verify(new Prompt("other", "x", null), "```python\npass\n```"));
    }

    @Test
    void codeExtractionTakesTheLastPythonBlockElseTheLastBlock() {
        assertEquals("b = 2\n", CodeVerifier.extractCode("```python\na = 1\n```\ntext\n```python\nb = 2\n```\n```text\nlog\n```").orElseThrow());
        assertEquals("c = 3\n", CodeVerifier.extractCode("```\nc = 3\n```").orElseThrow());
        assertTrue(CodeVerifier.extractCode("no fences here").isEmpty());
    }
}
