package io.tailguard.learner;

import ai.djl.Device;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.io.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A caller's own files go into the learner checkpoint in the same atomic write, listed in its manifest. */
class LearnerCheckpointFilesTest {
    @Test
    void aCallersFileIsPartOfTheCheckpointAndCannotReplaceOneOfItsOwn(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("learner");
        try (Qwen3Model model = Qwen3Model.create(ExactResumeTest.CONFIG, RandomInit.weights(ExactResumeTest.CONFIG, 4, 0.1, 0.1),
                Device.cpu());
             SupervisedTrainer tr = new SupervisedTrainer(model, ExactResumeTest.LR, AdamW.Options.defaults(), 4)) {
            AdamW opt = tr.optimizer();
            LearnerCheckpoint.TrainerState st = new LearnerCheckpoint.TrainerState(2, 2, 0, 1, "grpo-async");
            LearnerCheckpoint.save(dir, model, opt, st, null, 2, null, null, null,
                    Map.of("groups.json", "{\"trained\":[[0,3]]}".getBytes(StandardCharsets.UTF_8)));
            assertEquals("{\"trained\":[[0,3]]}", Files.readString(dir.resolve("groups.json")));
            assertEquals(Manifest.sha256(dir.resolve("groups.json")), Manifest.read(dir).sha256().get("groups.json"));

            assertThrows(IllegalArgumentException.class, () -> LearnerCheckpoint.save(tmp.resolve("other"), model, opt, st, null, 2,
                    null, null, null, Map.of(LearnerCheckpoint.STATE, new byte[0])));
            assertFalse(Files.exists(tmp.resolve("other")));
        }
    }
}
