package io.tailguard.model.tokenizer;

import io.tailguard.model.io.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenizersTest {

    @TempDir
    Path dir;

    @Test
    void charTokenizerDescriptionGivesTheCharTokenizer() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), CharTokenizer.standard().toJson());
        assertSame(CharTokenizer.standard(), Tokenizers.fromCheckpoint(dir));
    }

    @Test
    void huggingFaceTokenizerJsonGivesTheHfTokenizer() throws IOException {
        HfTokenizerTest.copyFixture(dir);
        Tokenizer t = Tokenizers.maybeFromCheckpoint(dir).orElseThrow();
        assertInstanceOf(HfTokenizer.class, t);
        assertArrayEquals(new int[] {7, 8}, t.encode("hello world"));
        ((HfTokenizer) t).close();
    }

    @Test
    void absentTokenizerIsEmptyOrAnErrorNamingTheFile() {
        assertTrue(Tokenizers.maybeFromCheckpoint(dir).isEmpty());
        CheckpointException e = assertThrows(CheckpointException.class, () -> Tokenizers.fromCheckpoint(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }
}
