package io.tailguard.rollout.generation;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A generation paired with a dense reference decode of the same tokens (the in-run speedup measurement). */
class PairedGenerationTest {
    /** Four layers: under the default dense layers {0, 1}, layers 2 and 3 decode sparsely. */
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 4, 4, 2, 8, 1e-6, 10_000.0, 512, true, -1);
    static Qwen3Model model;
    static final List<int[]> PROMPTS = new ArrayList<>();

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 6, 0.5, 0.1), Device.cpu());
        Random r = new Random(11);
        for (int len : new int[] {100, 130}) {
            int[] p = new int[len];
            for (int i = 0; i < len; i++) {
                p[i] = r.nextInt(CONFIG.vocabSize());
            }
            PROMPTS.add(p);
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** 10 new tokens, no stop token: every sequence runs 9 decode steps. */
    static GenerationRequest request(long seed) {
        return new GenerationRequest(PROMPTS, 10, new SamplingParams(1.0, 1.0, 0, seed), Set.of(), 2, 0);
    }

    @Test
    void pairedSamplesExactlyTheTokensOfTheUnpairedGenerationAndTheReferenceReallyDecodesDensely() {
        Generator sparse = new Generator(model, BlockTopKAttention.of(Schedule.fixed(48)));
        GenerationResult alone = sparse.generate(request(9));
        Generator.Paired paired = sparse.generatePaired(request(9), BlockTopKAttention.dense(), true);
        GenerationResult r = paired.result();
        assertEquals(alone.decodeSteps(), r.decodeSteps());
        List<int[]> outs = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) {
            Generated a = alone.sequences().get(i);
            Generated b = r.sequences().get(i);
            assertArrayEquals(a.outputIds(), b.outputIds(), "sequence " + i);
            assertArrayEquals(a.logprobs(), b.logprobs(), "sequence " + i);
            assertArrayEquals(a.distributions().logprobs(), b.distributions().logprobs(), "sequence " + i);
            assertEquals(a.finishReason(), b.finishReason());
            outs.add(b.outputIds());
        }
        // the reference's log-probs of the fed tokens are the dense policy's, by a full forward
        List<Scorer.Scores> dense = Scorer.score(model, PROMPTS, outs, new Scorer.Options(0, true));
        boolean differs = false;
        for (int i = 0; i < PROMPTS.size(); i++) {
            float[] ref = paired.referenceLogprobs().get(i);
            assertEquals(outs.get(i).length, ref.length);
            for (int t = 0; t < ref.length; t++) {
                assertEquals(dense.get(i).probs()[t][outs.get(i)[t]], Math.exp(ref[t]), 1e-4, "sequence " + i + " token " + t);
                differs |= Math.abs(ref[t] - r.sequences().get(i).distributions().logprobs()[t][outs.get(i)[t]]) > 1e-3;
            }
        }
        assertTrue(differs, "the sparse sampler's distributions differ from the dense reference's somewhere");
        assertTrue(paired.liveStepSeconds() > 0 && paired.referenceStepSeconds() > 0 && paired.referencePrefillSeconds() > 0);
        assertNull(sparse.generatePaired(request(9), BlockTopKAttention.dense(), false).referenceLogprobs());
        assertThrows(IllegalArgumentException.class, () -> sparse.generatePaired(request(9), null, false));
    }

    @Test
    void kvPositionsReadOfAFixedBudgetAreTheCostModelsKeysAttended() {
        // Budget 48 under prompts of 100 and 130 tokens: decode step s (1..9) attends over contexts
        // 100 + s and 130 + s. The cost model counts L keys per dense layer and B per sparse layer
        // (B < L): dense decode reads 4 layers × Σ L; the schedule 2 × Σ L + 2 × 48 per sequence and step.
        Generator.Paired p = new Generator(model, BlockTopKAttention.of(Schedule.fixed(48)))
                .generatePaired(request(3), BlockTopKAttention.dense(), false);
        assertEquals(9, p.result().decodeSteps());
        long sumL = (9 * 100 + 45) + (9 * 130 + 45); // 945 + 1215 = 2160
        assertEquals(4 * sumL, p.referenceKvPositions()); // 8640
        assertEquals(2 * sumL + 2 * 48 * 18, p.liveKvPositions()); // 4320 + 1728 = 6048
        assertEquals(10.0 / 7.0, p.referenceKvPositions() / (double) p.liveKvPositions(), 1e-12);
        // the same ratio from the cost model's attention terms: a layer reading n keys costs
        // denseAttentionLayerCost(n) (linear in n; a sparse layer adds landmark scoring, left out here)
        CostModel cost = new CostModel(CONFIG, CostModel.Machine.DEFAULT);
        double dense = 0;
        double live = 0;
        for (int prompt : new int[] {100, 130}) {
            for (int s = 1; s <= 9; s++) {
                int l = prompt + s;
                dense += 4 * cost.denseAttentionLayerCost(l);
                live += 2 * cost.denseAttentionLayerCost(l) + 2 * cost.denseAttentionLayerCost(48);
            }
        }
        assertEquals(dense / live, p.referenceKvPositions() / (double) p.liveKvPositions(), 1e-9);
        // a budget above every context decodes densely: the same work as the reference
        Generator.Paired wide = new Generator(model, BlockTopKAttention.of(Schedule.fixed(256)))
                .generatePaired(request(3), BlockTopKAttention.dense(), false);
        assertEquals(wide.referenceKvPositions(), wide.liveKvPositions());
    }

    @Test
    void anotherActorIsMeasuredAgainstThePolicysOwnWeightsDecodingDensely() {
        // the actor stands in for compressed weights: same shapes, other values
        try (Qwen3Model actor = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 7, 0.5, 0.1), Device.cpu())) {
            Generator g = new Generator(actor, BlockTopKAttention.of(Schedule.fixed(48)));
            GenerationResult alone = g.generate(request(5));
            Generator.Paired paired = g.generatePaired(request(5), model, BlockTopKAttention.dense(), true);
            List<int[]> outs = new ArrayList<>();
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertArrayEquals(alone.sequences().get(i).outputIds(), paired.result().sequences().get(i).outputIds(), "sequence " + i);
                assertArrayEquals(alone.sequences().get(i).logprobs(), paired.result().sequences().get(i).logprobs(), "sequence " + i);
                outs.add(paired.result().sequences().get(i).outputIds());
            }
            // the reference's log-probs of the fed tokens are the policy's dense ones, not the actor's
            List<Scorer.Scores> policy = Scorer.score(model, PROMPTS, outs, new Scorer.Options(0, true));
            List<Scorer.Scores> actorDense = Scorer.score(actor, PROMPTS, outs, new Scorer.Options(0, true));
            double offActor = 0;
            for (int i = 0; i < PROMPTS.size(); i++) {
                float[] ref = paired.referenceLogprobs().get(i);
                for (int t = 0; t < ref.length; t++) {
                    assertEquals(policy.get(i).probs()[t][outs.get(i)[t]], Math.exp(ref[t]), 1e-4, "sequence " + i + " token " + t);
                    offActor = Math.max(offActor, Math.abs(actorDense.get(i).probs()[t][outs.get(i)[t]] - Math.exp(ref[t])));
                }
            }
            assertTrue(offActor > 1e-2, "the actor's own probabilities differ from the reference's: " + offActor);
        }
        ModelConfig other = new ModelConfig(29, 32, 48, 3, 4, 2, 8, 1e-6, 10_000.0, 512, true, -1);
        try (Qwen3Model shallow = Qwen3Model.create(other, RandomInit.weights(other, 7, 0.5, 0.1), Device.cpu())) {
            assertThrows(IllegalArgumentException.class,
                    () -> new Generator(shallow).generatePaired(request(5), model, BlockTopKAttention.dense(), false));
        }
    }
}
