package io.tailguard.rollout.sparse;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The teacher-forced sparse forward against the sparse decode itself: the log-probs one forward
 * with {@link BlockTopKMask} assigns to the tokens of a trajectory equal those the Block-Top-k
 * kernel assigned while generating them (an independent computation: the kernel gathers pages from
 * a KV cache step by step), for budgets below the context, with and without a LoRA; and with a
 * budget that covers the context they equal dense scoring.
 */
class BlockTopKMaskTest {
    // 4 layers, so that layers 2 and 3 decode sparsely; GQA ratio 2.
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 4, 4, 2, 8, 1e-6, 10_000.0, 512, true, -1);
    static final int NEW = 70;
    static Qwen3Model model;
    static List<int[]> prompts;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 17, 0.4, 0.1), Device.cpu());
        SplittableRandom r = new SplittableRandom(3);
        prompts = new ArrayList<>();
        for (int len : new int[] {41, 66, 53}) {
            int[] p = new int[len];
            for (int i = 0; i < len; i++) {
                p[i] = r.nextInt(CONFIG.vocabSize());
            }
            prompts.add(p);
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static List<Generated> sample(Schedule schedule, long seed) {
        return new Generator(model, BlockTopKAttention.of(schedule))
                .generate(new GenerationRequest(prompts, NEW, new SamplingParams(1.0, 1, 0, seed), Set.of(), 0)).sequences();
    }

    static List<float[]> score(List<Generated> g, Schedule schedule) {
        return Scorer.score(model, g.stream().map(Generated::promptIds).toList(), g.stream().map(Generated::outputIds).toList(),
                Scorer.Options.LOGPROBS_ONLY, schedule == null ? null : BlockTopKMask.factory(schedule))
                .stream().map(Scorer.Scores::logprobs).toList();
    }

    /** Largest difference from the log-probs the sampler recorded. */
    static double vsSampled(List<Generated> g, List<float[]> lp) {
        return maxDiff(g.stream().map(Generated::logprobs).toList(), lp);
    }

    static double maxDiff(List<float[]> a, List<float[]> b) {
        double max = 0;
        for (int i = 0; i < a.size(); i++) {
            for (int t = 0; t < a.get(i).length; t++) {
                max = Math.max(max, Math.abs(a.get(i)[t] - b.get(i)[t]));
            }
        }
        return max;
    }

    @Test
    void teacherForcedSparseLogprobsEqualThoseTheSparseDecodeSampledWith() {
        // Contexts reach 66 + 70 = 136 tokens (9 pages): 64 keeps 1 of the candidate pages, 96 three;
        // the schedule keeps only the forced pages (48) below 128 tokens, 80 from there.
        for (Schedule s : List.of(Schedule.fixed(64), Schedule.fixed(96), Schedule.ofBins(128, new int[] {48, 80}))) {
            List<Generated> g = sample(s, 5);
            List<float[]> sparse = score(g, s);
            double vsDecode = vsSampled(g, sparse);
            double vsDense = vsSampled(g, score(g, null));
            assertTrue(vsDecode <= 1e-4, s.budgets()[0] + ": teacher-forced sparse vs decode log-probs differ by " + vsDecode);
            assertTrue(vsDense > 1e-2, s.budgets()[0] + ": the sparse actor must differ from dense here, got " + vsDense);
        }
    }

    @Test
    void withALoraTheSparseForwardStillEqualsTheSparseDecode() {
        try (LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 4)) {
            SplittableRandom r = new SplittableRandom(8);
            for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                if (e.getKey().endsWith("lora_B.weight")) {
                    float[] v = new float[(int) e.getValue().size()];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (r.nextGaussian() * 0.1);
                    }
                    e.getValue().set(v);
                }
            }
            model.attach(lora);
            Schedule s = Schedule.fixed(64);
            List<Generated> g = sample(s, 6);
            double vsDecode = vsSampled(g, score(g, s));
            assertTrue(vsDecode <= 1e-4, "sparse + LoRA: teacher-forced vs decode log-probs differ by " + vsDecode);
            lora.setEnabled(false);
            assertTrue(vsSampled(g, score(g, s)) > 1e-2, "the LoRA must matter here");
        }
    }

    @Test
    void aBudgetThatCoversTheContextIsDense() {
        Schedule s = Schedule.fixed(256);
        List<Generated> g = sample(s, 7);
        List<float[]> sparse = score(g, s);
        assertTrue(vsSampled(g, sparse) <= 1e-4, "vs decode");
        assertTrue(maxDiff(sparse, score(g, null)) <= 1e-5, "vs dense scoring");
    }
}
