package io.tailguard.actors.runtime;

import io.tailguard.model.io.CheckpointException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunDirectoryTest {
    @Test
    void aRunDirectoryResumesOnlyFromItsOwnWarmStart(@TempDir Path tmp) throws Exception {
        Path a = Files.createDirectories(tmp.resolve("a"));
        Path b = Files.createDirectories(tmp.resolve("b"));
        Files.writeString(a.resolve("model.safetensors"), "weights of a");
        Files.writeString(b.resolve("model.safetensors"), "weights of b");
        Path out = tmp.resolve("run");
        Files.createDirectories(out);

        RunDirectory.claim(out, a);
        String recorded = Files.readString(out.resolve(RunDirectory.FILE_NAME));
        assertDoesNotThrow(() -> RunDirectory.claim(out, a));
        CheckpointException e = assertThrows(CheckpointException.class, () -> RunDirectory.claim(out, b));
        assertTrue(e.getMessage().contains(RunDirectory.FILE_NAME) && e.getMessage().contains("tailguard.train.out"), e.getMessage());
        assertEquals(recorded, Files.readString(out.resolve(RunDirectory.FILE_NAME)), "a refused start changes nothing");

        // the same files elsewhere are the same warm start
        Path a2 = Files.createDirectories(tmp.resolve("a2"));
        Files.writeString(a2.resolve("model.safetensors"), "weights of a");
        assertDoesNotThrow(() -> RunDirectory.claim(out, a2));
    }

    @Test
    void aLearnerCheckpointFromBeforeTheRecordIsRefused(@TempDir Path tmp) throws Exception {
        Path a = Files.createDirectories(tmp.resolve("a"));
        Files.writeString(a.resolve("model.safetensors"), "weights");
        Path out = tmp.resolve("run");
        Files.createDirectories(out.resolve("learner"));
        Files.writeString(out.resolve("learner").resolve("manifest.json"), "{}");
        assertThrows(CheckpointException.class, () -> RunDirectory.claim(out, a));
        assertTrue(Files.notExists(out.resolve(RunDirectory.FILE_NAME)));
    }
}
