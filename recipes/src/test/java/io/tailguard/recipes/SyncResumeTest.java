package io.tailguard.recipes;

import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.TaskSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** When the synchronous loop may continue a learner checkpoint, on trainer-state files written by hand. */
class SyncResumeTest {
    /** 10 steps, 4 prompts, group 8, lr 1e-4, warm-up 1, seed 7, micro-batch 16. */
    static final SyncTrainer.Options TEN = new SyncTrainer.Options(10, 4, 8, 1e-4, 1, 7, 16, 0, 1234);

    @Test
    void warmUpIsATenthOfTheStepsAndAtMostFive() {
        assertEquals(0, SyncTrainer.warmupSteps(6));
        assertEquals(1, SyncTrainer.warmupSteps(10));
        assertEquals(3, SyncTrainer.warmupSteps(39));
        assertEquals(5, SyncTrainer.warmupSteps(50));
        assertEquals(5, SyncTrainer.warmupSteps(1000));
    }

    @Test
    void settingsAreTheKeysCheckpointsHaveAlwaysRecorded() {
        Map<String, String> plain = SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN, null);
        assertEquals(List.of("--task", "--context", "schedule", "--group", "--lr", "--micro-batch", "warm-up steps"),
                List.copyOf(plain.keySet()));
        assertEquals("kv-recall", plain.get("--task"));
        assertEquals("256", plain.get("--context"));
        assertEquals("8", plain.get("--group"));
        assertEquals("1.0E-4", plain.get("--lr"));
        assertEquals("16", plain.get("--micro-batch"));
        assertEquals("1", plain.get("warm-up steps"));
        assertEquals("dense", SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.dense(), TEN, null).get("schedule"));
        Map<String, String> distill = SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN,
                new SyncTrainer.Distill(LoraConfig.defaults(), 1e-3, 0.001, 1.0, DistillSparse.Divergence.FULL, 7));
        assertEquals("8", distill.get("--lora-rank"));
        assertEquals("16.0", distill.get("--lora-alpha"));
        assertEquals("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", distill.get("--lora-targets"));
        assertEquals("0.001", distill.get("--lora-lr"));
        assertEquals("0.001", distill.get("--distill-kl"));
        assertEquals("full", distill.get("--distill-divergence"));
        assertEquals("1.0", distill.get("--distill-ppo"));
    }

    @Test
    void theTaskKnobsAreRecordedOnlyWhenSet() {
        Map<String, String> trace = SyncResume.settings(new TaskSpec("kv-trace", 12, TaskSpec.Reward.GRADED), 512,
                Schedule.fixed(64), TEN, null);
        assertEquals(List.of("--task", "--task-steps", "--reward", "--context", "schedule", "--group", "--lr", "--micro-batch",
                "warm-up steps"), List.copyOf(trace.keySet()));
        assertEquals("12", trace.get("--task-steps"));
        assertEquals("graded", trace.get("--reward"));
        assertEquals(List.of("--task", "--context", "schedule", "--group", "--lr", "--micro-batch", "warm-up steps"),
                List.copyOf(SyncResume.settings(TaskSpec.of("kv-trace"), 512, Schedule.fixed(64), TEN, null).keySet()));
    }

    @Test
    void aCheckpointOfTheSameRunResumesAtItsStep(@TempDir Path dir) throws Exception {
        Map<String, String> settings = SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN, null);
        state(dir, 3, 12, 7, "grpo", settings);
        assertEquals(3, SyncResume.step(dir, TEN, false, settings));
        // a setting the checkpoint did not record is not checked
        Map<String, String> more = new LinkedHashMap<>(settings);
        more.put("--new-setting", "1");
        assertEquals(3, SyncResume.step(dir, TEN, false, more));
    }

    @Test
    void eachDifferenceIsNamedByItsParameterAndTheFile(@TempDir Path dir) throws Exception {
        Map<String, String> settings = SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN, null);
        Path f = dir.resolve(LearnerCheckpoint.STATE);
        assertEquals("resume: " + dir + " holds no learner checkpoint (trainer-state.json and optimizer.safetensors)",
                refused(dir, TEN, false, settings));
        state(dir, 3, 12, 7, "grpo", settings);
        assertEquals("resume: " + f + " is a grpo checkpoint, but this run is grpo+distill-sparse (distill)",
                refused(dir, TEN, true, settings));
        assertEquals("seed 8 differs from the seed 7 in " + f,
                refused(dir, new SyncTrainer.Options(10, 4, 8, 1e-4, 1, 8, 16, 0, 1234), false, settings));
        assertEquals("steps 2 is below the step 3 in " + f,
                refused(dir, new SyncTrainer.Options(2, 4, 8, 1e-4, 0, 7, 16, 0, 1234), false, settings));
        assertEquals("prompts 3 differs from the run in " + f + " (data cursor 12 after step 3)",
                refused(dir, new SyncTrainer.Options(10, 3, 8, 1e-4, 1, 7, 16, 0, 1234), false, settings));
        SyncTrainer.Options longer = new SyncTrainer.Options(20, 4, 8, 1e-4, 2, 7, 16, 0, 1234);
        assertEquals("steps 20 gives 2 warm-up steps, the run in " + f + " had 1",
                refused(dir, longer, false, SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), longer, null)));
        assertEquals("the schedule (Schedule[fixed 128, v1]) differs from the run's in " + f + " (Schedule[fixed 64, v1])",
                refused(dir, TEN, false, SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(128), TEN, null)));
        assertEquals("context 512 differs from 256 in " + f,
                refused(dir, TEN, false, SyncResume.settings(TaskSpec.of("kv-recall"), 512, Schedule.fixed(64), TEN, null)));
    }

    @Test
    void aDistillCheckpointNeedsTheLorasOptimizer(@TempDir Path dir) throws Exception {
        SyncTrainer.Distill d = new SyncTrainer.Distill(LoraConfig.defaults(), 1e-3, 0.001, 7);
        Map<String, String> settings = SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN, d);
        state(dir, 3, 12, 7, "grpo+distill-sparse", settings);
        String m = refused(dir, TEN, true, settings);
        assertTrue(m.startsWith("resume with distill: ") && m.contains(LearnerCheckpoint.LORA_OPTIMIZER), m);
        Files.write(dir.resolve(LearnerCheckpoint.LORA_OPTIMIZER), new byte[0]);
        assertEquals(3, SyncResume.step(dir, TEN, true, settings));
        assertEquals("lora-lr 0.01 differs from 0.001 in " + dir.resolve(LearnerCheckpoint.STATE), refused(dir, TEN, true,
                SyncResume.settings(TaskSpec.of("kv-recall"), 256, Schedule.fixed(64), TEN,
                        new SyncTrainer.Distill(LoraConfig.defaults(), 1e-2, 0.001, 7))));
    }

    private static String refused(Path dir, SyncTrainer.Options o, boolean distill, Map<String, String> settings) {
        return assertThrows(IllegalArgumentException.class, () -> SyncResume.step(dir, o, distill, settings)).getMessage();
    }

    /** A learner checkpoint's trainer state (the optimizer file only has to exist for the check). */
    private static void state(Path dir, long step, long cursor, long seed, String kind, Map<String, String> options)
            throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(LearnerCheckpoint.STATE), new com.google.gson.Gson().toJson(
                new LearnerCheckpoint.TrainerState(step, step, cursor, seed, kind, options)));
        Files.write(dir.resolve(LearnerCheckpoint.OPTIMIZER), new byte[0]);
    }
}
