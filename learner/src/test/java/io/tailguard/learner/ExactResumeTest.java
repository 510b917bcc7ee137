package io.tailguard.learner;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.ModelLoader;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Stopping, checkpointing and resuming gives the same next steps, bit for bit, as never stopping. */
class ExactResumeTest {
    static final ModelConfig CONFIG = new ModelConfig(17, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 128, false, -1);
    static final LrSchedule LR = new LrSchedule(3e-3, 2, 6, 0.1);

    /** The batch of step s (1-based), a pure function of (seed, s): the data cursor is the step. */
    static List<int[]>[] batch(long seed, int s) {
        SplittableRandom r = new SplittableRandom(seed * 1_000_003L + s);
        List<int[]> p = new ArrayList<>();
        List<int[]> c = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int[] a = r.ints(4 + r.nextInt(5), 3, 17).toArray();
            int[] b = r.ints(3 + r.nextInt(4), 3, 17).toArray();
            p.add(a);
            c.add(b);
        }
        @SuppressWarnings("unchecked")
        List<int[]>[] out = new List[] {p, c};
        return out;
    }

    @Test
    void resumedRunMatchesTheUninterruptedRunBitForBit(@TempDir Path tmp) {
        double[] straight = new double[6];
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.1, 0.1), Device.cpu());
             SupervisedTrainer tr = new SupervisedTrainer(model, LR, AdamW.Options.defaults(), 4)) {
            for (int s = 1; s <= 6; s++) {
                List<int[]>[] b = batch(9, s);
                straight[s - 1] = tr.step(b[0], b[1]).loss();
            }
        }
        Path ckpt = tmp.resolve("step3");
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.1, 0.1), Device.cpu());
             SupervisedTrainer tr = new SupervisedTrainer(model, LR, AdamW.Options.defaults(), 4)) {
            for (int s = 1; s <= 3; s++) {
                List<int[]>[] b = batch(9, s);
                assertEquals(straight[s - 1], tr.step(b[0], b[1]).loss());
            }
            LearnerCheckpoint.save(ckpt, model, tr.optimizer(),
                    new LearnerCheckpoint.TrainerState(3, tr.optimizer().steps(), 3, 9, "supervised"), null, 3, null);
        }
        try (Qwen3Model model = ModelLoader.load(ckpt, Device.cpu());
             SupervisedTrainer tr = new SupervisedTrainer(model, LR, AdamW.Options.defaults(), 4)) {
            LearnerCheckpoint.TrainerState st = LearnerCheckpoint.restore(ckpt, tr.optimizer());
            tr.resumeAt((int) st.step());
            for (int s = (int) st.dataCursor() + 1; s <= 6; s++) {
                List<int[]>[] b = batch(st.seed(), s);
                assertEquals(straight[s - 1], tr.step(b[0], b[1]).loss(), "loss of step " + s + " after resuming");
            }
        }
    }
}
