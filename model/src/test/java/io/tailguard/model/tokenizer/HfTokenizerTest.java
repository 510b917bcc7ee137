package io.tailguard.model.tokenizer;

import io.tailguard.model.io.CheckpointException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs the real native tokenizers library offline (surefire sets -Dai.djl.offline=true) on a small
 * hand-written WordLevel tokenizer.json whose post-processor would add {@code <s>}/{@code </s>}
 * if special tokens were added.
 */
class HfTokenizerTest {

    @TempDir
    Path dir;

    private HfTokenizer tok;

    static Path copyFixture(Path dir) throws IOException {
        try (InputStream in = HfTokenizerTest.class.getResourceAsStream("wordlevel-tokenizer.json")) {
            Path f = dir.resolve("tokenizer.json");
            Files.copy(in, f);
            return f;
        }
    }

    @BeforeEach
    void load() throws IOException {
        Path f = copyFixture(dir);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\", \"bos_token\": {\"content\": \"<s>\"}}");
        tok = HfTokenizer.load(f);
    }

    @AfterEach
    void close() {
        tok.close();
    }

    @Test
    void encodesWordsWithoutAddingSpecialTokens() {
        assertArrayEquals(new int[] {3, 4, 5, 6}, tok.encode("the answer is 42"));
        assertArrayEquals(new int[] {7, 0, 8}, tok.encode("hello zebra world"));  // unknown -> <unk>
    }

    @Test
    void decodeDropsSpecialTokens() {
        assertEquals("the answer is 42", tok.decode(new int[] {1, 3, 4, 5, 6, 2}));
    }

    @Test
    void longInputIsNotTruncated() {
        assertEquals(3000, tok.encode("hello world ".repeat(1500)).length);
    }

    @Test
    void vocabularyAndSpecialIdsComeFromTheFiles() throws IOException {
        assertEquals(9, tok.vocabSize());
        assertEquals(2, tok.eosId());
        assertEquals(1, tok.bosId());
        assertEquals(Files.readString(dir.resolve("tokenizer.json")), tok.toJson());
    }

    @Test
    void withoutTokenizerConfigThereAreNoSpecialIds(@TempDir Path other) throws IOException {
        try (HfTokenizer t = HfTokenizer.load(copyFixture(other))) {
            assertEquals(-1, t.eosId());
            assertEquals(-1, t.bosId());
        }
    }

    @Test
    void malformedTokenizerIsACheckpointException(@TempDir Path other) throws IOException {
        Path f = other.resolve("tokenizer.json");
        Files.writeString(f, "{\"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"a\": 0}}}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> HfTokenizer.load(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    }
}
