package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.learner.DistillSparse;
import io.tailguard.learner.GrpoLearner;
import io.tailguard.learner.LearnerCheckpoint;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.worker.RolloutEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The training objects the synchronous loop and the learner actor share. */
class TrainingSessionTest {
    @TempDir
    Path tmp;

    private static final TrainingSession.Options OPTIONS = new TrainingSession.Options(2, 4, 1e-3, 0, 10);

    private static RolloutEngine.Trajectory trajectory(int sample, float behaviour, double reward) {
        return new RolloutEngine.Trajectory(0, sample, "p", new int[] {1, 2, 3}, new int[] {4, 5},
                new float[] {behaviour, behaviour}, reward, "");
    }

    /** One group of two: different rewards, so the group is kept and the policy moves. */
    private static List<GrpoLearner.Sample> group() {
        return TrainingSession.samples(List.of(trajectory(0, -1.5f, 0.0), trajectory(1, -2.0f, 1.0)));
    }

    private static Qwen3Model tiny() {
        ModelConfig c = InitialModel.config("tiny");
        return Qwen3Model.create(c, InitialModel.weights(c, 1), Device.cpu());
    }

    @Test
    void aSampleCarriesTheSamplersLogProbsAndTheReward() {
        GrpoLearner.Sample x = TrainingSession.samples(List.of(trajectory(0, -1.5f, 1.0))).get(0);
        assertArrayEquals(new float[] {-1.5f, -1.5f}, x.behaviourLogprobs(), "π_inf: the sampler's");
        assertEquals(1.0, x.reward());
        assertArrayEquals(new int[] {1, 2, 3}, x.prompt());
        assertArrayEquals(new int[] {4, 5}, x.output());
    }

    @Test
    void aSavedSessionResumesAtItsStepWithItsMoments() throws Exception {
        Path dir = tmp.resolve("learner");
        String tok = CharTokenizer.standard().toJson();
        try (Qwen3Model model = tiny(); TrainingSession s = new TrainingSession(model, OPTIONS)) {
            GrpoLearner.Report r = s.policyStep(group());
            assertEquals(1, r.step());
            assertEquals(1, r.groupsKept());
            assertEquals(1, s.steps());
            assertEquals(1, s.optimizerSteps());
            s.save(dir, new LearnerCheckpoint.TrainerState(1, s.optimizerSteps(), 2, 7, "grpo"), tok, 1, "parent");
        }
        assertTrue(Files.isRegularFile(dir.resolve(LearnerCheckpoint.OPTIMIZER)));
        try (Qwen3Model model = ModelLoader.load(dir, Device.cpu());
             TrainingSession s = new TrainingSession(model, OPTIONS)) {
            LearnerCheckpoint.TrainerState st = s.restore(dir);
            assertEquals(1, st.step());
            assertEquals(7, st.seed());
            assertEquals(1, s.steps());
            assertEquals(1, s.optimizerSteps());
            assertEquals(2, s.policyStep(group()).step(), "the next update is step 2");
        }
    }

    @Test
    void distillSparseIsSwitchedOnAndOffWithItsLora() {
        try (Qwen3Model model = tiny(); TrainingSession s = new TrainingSession(model, OPTIONS)) {
            assertFalse(s.distilling());
            assertThrows(IllegalStateException.class, () -> s.distillStep(group(), Schedule.fixed(64)));
            LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 3);
            s.startDistill(lora, new TrainingSession.Distill(1e-3, 0.001, 1.0, DistillSparse.Divergence.K3));
            assertTrue(s.distilling());
            assertSame(lora, model.adapter(), "attached to the model");
            assertFalse(lora.isEnabled(), "switched off: the policy update and the dense scoring ignore it");
            DistillSparse.Report d = s.distillStep(group(), Schedule.fixed(64));
            assertNotNull(d);
            assertEquals(1, d.step());
            s.stopDistill();
            assertFalse(s.distilling());
            assertNull(s.lora());
            assertNull(model.adapter(), "closed and detached");
        }
    }

    @Test
    void aNewPeakRateAppliesFromTheNextStep() {
        try (Qwen3Model model = tiny(); TrainingSession s = new TrainingSession(model, OPTIONS)) {
            assertEquals(1e-3, s.peakLr());
            s.setPeakLr(5e-4);
            assertEquals(5e-4, s.peakLr());
            assertEquals(5e-4, s.policyStep(group()).lr(), 1e-12, "no warm-up: step 1 runs at the peak");
        }
    }
}
