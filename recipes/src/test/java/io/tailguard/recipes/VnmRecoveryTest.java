package io.tailguard.recipes;

import ai.djl.Device;
import io.tailguard.compression.VnmChecker;
import io.tailguard.compression.VnmMask;
import io.tailguard.compression.VnmPattern;
import io.tailguard.compression.VnmPruner;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VnmRecoveryTest {
    @Test
    void stagesOneAndTwoShareTenPercentOfTheSteps() {
        assertArrayEquals(new int[] {15, 15, 270}, VnmRecovery.stageSteps(300));
        assertArrayEquals(new int[] {0, 1, 9}, VnmRecovery.stageSteps(10));
        assertArrayEquals(new int[] {0, 0, 5}, VnmRecovery.stageSteps(5));
        assertArrayEquals(new int[] {0, 0, 0}, VnmRecovery.stageSteps(0));
    }

    @Test
    void recoveryTrainsTheLoraThroughAllThreeStagesAndEndsPrunedUnderItsFinalMasks() {
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = ModelConfig.preset("tiny", tok.vocabSize(), tok.eosId());
        Task task = Tasks.builtin("marked-sum", 64);
        VnmPattern p = new VnmPattern(64, 2, 5);
        try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 1, 0.02, 0.0), Device.cpu())) {
            List<Integer> stages = new ArrayList<>();
            // 40 steps: stage 1 two steps, stage 2 two (re-masked each step), stage 3 36.
            VnmRecovery.Outcome o = VnmRecovery.run(model, task, tok, null, p,
                    new VnmRecovery.Options(40, 4, 3e-3, 4, 8, 1, 5, null),
                    (step, steps, stage, loss) -> stages.add(stage));
            assertArrayEquals(new int[] {2, 2, 36}, o.stageSteps());
            assertEquals(List.of(1, 1, 2, 2), stages.subList(0, 4));
            assertEquals(3, stages.get(39));
            assertEquals(2, o.maskChanges().size(), "re-masked after each of the 2 stage-2 steps' merges");
            assertTrue(o.lastLoss() < o.firstLoss() - 0.1, o.firstLoss() + " -> " + o.lastLoss());
            Map<String, float[]> w = model.hostWeights();
            assertEquals(w.keySet(), o.weights().keySet());
            for (Map.Entry<String, VnmMask> e : o.masks().entrySet()) {
                VnmMask m = e.getValue();
                boolean[] keep = m.toBooleans();
                assertEquals(Optional.empty(), VnmChecker.violation(keep, m.rows(), m.cols(), p), e.getKey());
                float[] v = w.get(e.getKey());
                for (int i = 0; i < v.length; i++) {
                    if (!keep[i]) {
                        assertEquals(0f, v[i], 0f, e.getKey() + "[" + i + "] is pruned");
                    }
                }
                // the masks are the best masks of the final weights' own scores
                assertArrayEquals(m.picks(), VnmPruner.masks(c, o.weights(), null, p).get(e.getKey()).picks());
            }
        }
    }

    @Test
    void distillingRecoveryBringsTheKlToTheOriginalBelowOneShotPruning() {
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = ModelConfig.preset("tiny", tok.vocabSize(), tok.eosId());
        Task task = Tasks.builtin("kv-recall", 64);
        VnmPattern p = new VnmPattern(64, 2, 5);
        Map<String, float[]> w = RandomInit.weights(c, 4, 0.1, 0.0);
        List<int[]> held = CompressionData.sequences(task, tok, 99, 4);
        try (Qwen3Model original = Qwen3Model.create(c, w, Device.cpu());
             Qwen3Model oneShot = Qwen3Model.create(c, io.tailguard.compression.VnmModel.of(c, p, w,
                     VnmPruner.masks(c, w, null, p), Map.of()).denseWeights(), Device.cpu());
             Qwen3Model student = Qwen3Model.create(c, w, Device.cpu())) {
            VnmRecovery.Outcome o = VnmRecovery.run(student, task, tok, null, p,
                    new VnmRecovery.Options(30, 4, 3e-3, 4, 8, 1, 5, original), (step, steps, stage, loss) -> { });
            try (Qwen3Model recovered = Qwen3Model.create(c, o.weights(), Device.cpu())) {
                double before = io.tailguard.compression.ModelKl.perToken(original, oneShot, held);
                double after = io.tailguard.compression.ModelKl.perToken(original, recovered, held);
                assertTrue(after < 0.8 * before, "KL one-shot " + before + ", recovered " + after);
            }
        }
    }
}
