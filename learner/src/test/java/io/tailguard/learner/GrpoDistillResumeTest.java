package io.tailguard.learner;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import io.tailguard.model.io.CheckpointException;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.lora.LoraFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The synchronous RL loop's learner side (GRPO + TIS and DistillSparse with its LoRA), stopped after
 * step 2, checkpointed, loaded into fresh objects and resumed: steps 3 and 4 report the losses of
 * the uninterrupted run bit for bit. Each step's samples come from the model as it stands (behaviour
 * log-probs from the sparse window with the LoRA, π_old from dense scoring), so a wrongly restored
 * base, LoRA, optimizer or step counter shows in the next losses.
 */
class GrpoDistillResumeTest {
    static final ModelConfig CONFIG = DistillSparseTest.CONFIG;
    static final int G = 4;
    static final int STEPS = 4;
    static final LoraConfig LORA = new LoraConfig(4, 8, LoraConfig.ALL_LINEAR);
    static final LrSchedule POLICY_LR = new LrSchedule(3e-3, 1, STEPS, 0.1);
    static final LrSchedule LORA_LR = new LrSchedule(1e-2, 1, STEPS, 0.1);

    /** The losses one step reports. */
    record Losses(double policy, double policyGrad, double distill, double distillGrad) {}

    /** Trajectories of step s: tokens and rewards from (seed, s), log-probs from the model as it is now. */
    static List<GrpoLearner.Sample> samples(Qwen3Model model, LoraAdapter lora, long seed, int step) {
        SplittableRandom r = new SplittableRandom(seed * 1_000_003L + step);
        List<int[]> prompts = new ArrayList<>();
        List<int[]> outputs = new ArrayList<>();
        double[] rewards = new double[2 * G];
        for (int i = 0; i < rewards.length; i++) {
            prompts.add(r.ints(36 + r.nextInt(12), 0, CONFIG.vocabSize()).toArray());
            outputs.add(r.ints(8 + r.nextInt(8), 0, CONFIG.vocabSize()).toArray());
            rewards[i] = r.nextInt(3) / 2.0;
        }
        rewards[0] = 0;
        rewards[1] = 1; // group 0 always has a signal
        List<Scorer.Scores> inf;
        try (LoraAdapter.Switch on = lora.switchTo(true)) {
            inf = Scorer.score(model, prompts, outputs, Scorer.Options.LOGPROBS_ONLY, DistillSparseTest.WINDOW);
        }
        List<GrpoLearner.Sample> out = new ArrayList<>();
        for (int i = 0; i < rewards.length; i++) {
            out.add(new GrpoLearner.Sample(prompts.get(i), outputs.get(i), inf.get(i).logprobs(), rewards[i]));
        }
        return out;
    }

    static GrpoLearner learner(Qwen3Model model) {
        return new GrpoLearner(model, G, 3, GrpoObjective.Options.defaults(), POLICY_LR, AdamW.Options.defaults());
    }

    static DistillSparse distiller(Qwen3Model model, LoraAdapter lora) {
        return new DistillSparse(model, lora, DistillSparseTest.WINDOW, G, LORA_LR,
                new DistillSparse.Options(0.01, GrpoObjective.Options.defaults(), 3));
    }

    static Losses step(Qwen3Model model, LoraAdapter lora, GrpoLearner learner, DistillSparse distiller, int s) {
        List<GrpoLearner.Sample> samples = samples(model, lora, 5, s);
        GrpoLearner.Report p = learner.step(samples);
        DistillSparse.Report d = distiller.step(samples);
        assertNotNull(p.objective(), "step " + s + " has a group with a signal");
        assertEquals(s, p.step());
        assertEquals(s, d.step());
        return new Losses(p.objective().loss(), p.gradNorm(), d.loss(), d.gradNorm());
    }

    static Qwen3Model fresh() {
        return Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 31, 0.4, 0.1), Device.cpu());
    }

    @Test
    void resumedPolicyAndLoraMatchTheUninterruptedRunBitForBit(@TempDir Path tmp) {
        Losses[] straight = new Losses[STEPS + 1];
        try (Qwen3Model model = fresh(); LoraAdapter lora = LoraAdapter.create(model, LORA, 3)) {
            model.attach(lora);
            lora.setEnabled(false);
            try (GrpoLearner l = learner(model); DistillSparse d = distiller(model, lora)) {
                for (int s = 1; s <= STEPS; s++) {
                    straight[s] = step(model, lora, l, d, s);
                }
            }
        }
        Path ckpt = tmp.resolve("step2");
        try (Qwen3Model model = fresh(); LoraAdapter lora = LoraAdapter.create(model, LORA, 3)) {
            model.attach(lora);
            lora.setEnabled(false);
            try (GrpoLearner l = learner(model); DistillSparse d = distiller(model, lora)) {
                for (int s = 1; s <= 2; s++) {
                    assertEquals(straight[s], step(model, lora, l, d, s), "step " + s + " before stopping");
                }
                LearnerCheckpoint.save(ckpt, model, l.optimizer(), new LearnerCheckpoint.TrainerState(2, l.optimizer().steps(),
                        2, 5, "grpo+distill-sparse"), null, 2, null, lora, d.optimizer());
            }
        }
        assertTrue(Files.isRegularFile(ckpt.resolve(LearnerCheckpoint.LORA_OPTIMIZER)));
        Losses[] after = resumed(ckpt, true);
        assertEquals(straight[3], after[0], "step 3 after resuming");
        assertEquals(straight[4], after[1], "step 4 after resuming");

        // The control: without the LoRA's moments the run is not the same one (so the test can fail).
        Losses[] noMoments = resumed(ckpt, false);
        assertEquals(straight[3].distill(), noMoments[0].distill(), "step 3's loss precedes the LoRA's update");
        assertNotEquals(straight[4].distill(), noMoments[1].distill(), "step 4 depends on the LoRA's AdamW moments");
    }

    /** Loads the checkpoint into fresh objects and runs steps 3 and 4. */
    private static Losses[] resumed(Path ckpt, boolean loraMoments) {
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu()); LoraAdapter lora = LoraAdapter.create(model, LORA, 99)) {
            model.attach(lora);
            lora.setEnabled(false);
            try (GrpoLearner l = learner(model); DistillSparse d = distiller(model, lora)) {
                LearnerCheckpoint.TrainerState st = LearnerCheckpoint.restore(ckpt, l.optimizer());
                LearnerCheckpoint.restoreLora(ckpt, lora, loraMoments ? d.optimizer() : null);
                l.resumeAt((int) st.step());
                d.resumeAt((int) st.step());
                Losses[] out = new Losses[2];
                for (int s = (int) st.step() + 1; s <= STEPS; s++) {
                    out[s - 3] = step(model, lora, l, d, s);
                }
                return out;
            }
        }
    }

    @Test
    void aMissingOrMismatchedLoraStateNamesTheFileAndTensor(@TempDir Path tmp) throws Exception {
        Path ckpt = tmp.resolve("c");
        try (Qwen3Model model = fresh(); LoraAdapter lora = LoraAdapter.create(model, LORA, 3)) {
            model.attach(lora);
            lora.setEnabled(false);
            try (GrpoLearner l = learner(model); DistillSparse d = distiller(model, lora)) {
                LearnerCheckpoint.save(ckpt, model, l.optimizer(), new LearnerCheckpoint.TrainerState(0, 0, 0, 5, "grpo+distill-sparse"),
                        null, 0, null, lora, d.optimizer());
                assertEquals(0, l.optimizer().steps());
            }
        }
        try (Qwen3Model model = fresh(); LoraAdapter other = LoraAdapter.create(model, new LoraConfig(2, 8, LoraConfig.ALL_LINEAR), 3)) {
            model.attach(other);
            CheckpointException e = assertThrows(CheckpointException.class, () -> LearnerCheckpoint.restoreLora(ckpt, other, null));
            assertTrue(e.getMessage().contains(LoraFiles.CONFIG), e.getMessage());
        }
        String name = LoraFiles.tensorName(0, "q_proj", 'A');
        try (Qwen3Model model = fresh(); LoraAdapter lora = LoraAdapter.create(model, LORA, 3)) {
            model.attach(lora);
            try (DistillSparse d = distiller(model, lora)) {
                // A moments file that lacks one tensor.
                Path f = ckpt.resolve(LearnerCheckpoint.LORA_OPTIMIZER);
                var tensors = new java.util.TreeMap<>(io.tailguard.model.io.SafeTensors.read(f));
                var meta = io.tailguard.model.io.SafeTensors.metadata(f);
                Path broken = tmp.resolve("broken");
                Files.createDirectories(broken.resolve(LoraFiles.DIR));
                for (String file : List.of(LoraFiles.PEFT_WEIGHTS, LoraFiles.CONFIG)) {
                    Files.copy(ckpt.resolve(LoraFiles.DIR).resolve(file), broken.resolve(LoraFiles.DIR).resolve(file));
                }
                tensors.remove("v/" + name);
                io.tailguard.model.io.SafeTensors.write(broken.resolve(LearnerCheckpoint.LORA_OPTIMIZER), tensors, meta);
                CheckpointException e = assertThrows(CheckpointException.class,
                        () -> LearnerCheckpoint.restoreLora(broken, lora, d.optimizer()));
                assertTrue(e.getMessage().contains(LearnerCheckpoint.LORA_OPTIMIZER) && e.getMessage().contains("v/" + name),
                        e.getMessage());
                Files.delete(broken.resolve(LearnerCheckpoint.LORA_OPTIMIZER));
                e = assertThrows(CheckpointException.class, () -> LearnerCheckpoint.restoreLora(broken, lora, d.optimizer()));
                assertTrue(e.getMessage().contains(LearnerCheckpoint.LORA_OPTIMIZER), e.getMessage());
                // Without the optimizer, the weights alone still restore (an old checkpoint's LoRA).
                LearnerCheckpoint.restoreLora(broken, lora, null);
            }
        }
    }
}
