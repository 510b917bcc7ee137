package io.tailguard.rollout.generation;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Teacher forcing through decode (the shadow probe's replay). */
class ReplayTest {
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 3, 4, 2, 8, 1e-6, 10_000.0, 1024, true, -1);

    @Test
    void replayUnderTheSameKernelReproducesTheSampledDistributionsAndDenseReplayEqualsScoring() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.5, 0.1), Device.cpu())) {
            Random r = new Random(3);
            List<int[]> prompts = new ArrayList<>();
            for (int len : new int[] {200, 150}) {
                int[] p = new int[len];
                for (int i = 0; i < len; i++) {
                    p[i] = r.nextInt(CONFIG.vocabSize());
                }
                prompts.add(p);
            }
            BlockTopKAttention sparse = BlockTopKAttention.of(Schedule.fixed(64));
            List<Generated> gen = new Generator(model, sparse).generate(new GenerationRequest(prompts, 12,
                    new SamplingParams(1.0, 1.0, 0, 9), Set.of(), 0, 0)).sequences();
            List<int[]> outs = gen.stream().map(Generated::outputIds).toList();
            List<TokenDistributions> again = new Generator(model, sparse).replay(prompts, outs, 0);
            for (int i = 0; i < gen.size(); i++) {
                for (int t = 0; t < outs.get(i).length; t++) {
                    assertArrayEquals(gen.get(i).distributions().logprobs()[t], again.get(i).logprobs()[t], 1e-5f);
                }
            }
            // Dense replay = dense teacher-forced scoring by a full forward (an independent path).
            List<TokenDistributions> dense = new Generator(model).replay(prompts, outs, 0);
            List<Scorer.Scores> ref = Scorer.score(model, prompts, outs, new Scorer.Options(0, true));
            for (int i = 0; i < gen.size(); i++) {
                for (int t = 0; t < outs.get(i).length; t++) {
                    float[] p = ref.get(i).probs()[t];
                    for (int v = 0; v < p.length; v++) {
                        assertEquals(p[v], Math.exp(dense.get(i).logprobs()[t][v]), 1e-4);
                    }
                }
            }
        }
    }
}
