package io.tailguard.rollout.generation;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GeneratorTest {
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 512, true, -1);
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 5, 0.3, 0.1), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static final List<int[]> PROMPTS = List.of(new int[] {3, 1, 4, 1, 5}, new int[] {9}, new int[] {2, 6, 5, 3, 5, 8, 9, 7, 9});

    /** Greedy by brute force: a full forward over the whole text for every new token. */
    static int[] bruteForceGreedy(int[] prompt, int n) {
        int[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
        try (NDManager m = NDManager.newBaseManager()) {
            for (int t = prompt.length; t < seq.length; t++) {
                long[] ids = new long[t];
                for (int j = 0; j < t; j++) {
                    ids[j] = seq[j];
                }
                float[] logits = model.forward(m.create(ids, new Shape(1, t))).toFloatArray();
                int best = 0;
                for (int v = 1; v < CONFIG.vocabSize(); v++) {
                    if (logits[(t - 1) * CONFIG.vocabSize() + v] > logits[(t - 1) * CONFIG.vocabSize() + best]) {
                        best = v;
                    }
                }
                seq[t] = best;
            }
        }
        return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    @Test
    void greedyBatchedGenerationEqualsFullRecomputationPerSequence() {
        GenerationResult r = new Generator(model).generate(new GenerationRequest(PROMPTS, 12, SamplingParams.greedy(), Set.of(), 0));
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertArrayEquals(bruteForceGreedy(PROMPTS.get(i), 12), r.sequences().get(i).outputIds(), "sequence " + i);
            assertEquals("length", r.sequences().get(i).finishReason());
        }
    }

    @Test
    void onAFloat16CacheThePromptIsPrefilledInFloat32AndOnlyDecodingReadsRoundedValues() {
        // distinct prompts (one prefill straight into the batch) and a shared one (prefilled once, copied)
        for (List<int[]> prompts : List.of(PROMPTS, List.of(PROMPTS.get(2), PROMPTS.get(2), PROMPTS.get(0)))) {
            GenerationRequest req = new GenerationRequest(prompts, 8, SamplingParams.greedy(), Set.of(), 0);
            GenerationResult f32 = new Generator(model).generate(req);
            GenerationResult f16 = new Generator(model).cacheType(ai.djl.ndarray.types.DataType.FLOAT16).generate(req);
            double later = 0;
            for (int i = 0; i < prompts.size(); i++) {
                float[] a = f32.sequences().get(i).logprobs();
                float[] b = f16.sequences().get(i).logprobs();
                // the first token comes from the prefill's logits: exactly the float32 ones
                assertEquals(a[0], b[0], 0.0, "sequence " + i + ": first token's log-prob");
                assertEquals(f32.sequences().get(i).outputIds()[0], f16.sequences().get(i).outputIds()[0]);
                for (int t = 1; t < Math.min(a.length, b.length); t++) {
                    later = Math.max(later, Math.abs(a[t] - b[t]));
                }
            }
            assertTrue(later > 0, "decode steps read the rounded cache");
        }
    }

    @Test
    void seededSamplingIsReproducibleAndSeedsDiffer() {
        SamplingParams p = new SamplingParams(1.0, 0.95, 20, 42);
        Generator g = new Generator(model);
        GenerationResult a = g.generate(new GenerationRequest(PROMPTS, 20, p, Set.of(), 0));
        GenerationResult b = g.generate(new GenerationRequest(PROMPTS, 20, p, Set.of(), 0));
        GenerationResult c = g.generate(new GenerationRequest(PROMPTS, 20, new SamplingParams(1.0, 0.95, 20, 43), Set.of(), 0));
        boolean anyDiff = false;
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertArrayEquals(a.sequences().get(i).outputIds(), b.sequences().get(i).outputIds());
            anyDiff |= !java.util.Arrays.equals(a.sequences().get(i).outputIds(), c.sequences().get(i).outputIds());
        }
        assertTrue(anyDiff, "a different seed should change some sample");
    }

    @Test
    void sampledLogprobsMatchTeacherForcedScoring() {
        GenerationResult r = new Generator(model).generate(
                new GenerationRequest(PROMPTS, 15, new SamplingParams(1.0, 1.0, 0, 7), Set.of(), 3));
        List<int[]> outs = r.sequences().stream().map(Generated::outputIds).toList();
        List<Scorer.Scores> s = Scorer.score(model, PROMPTS, outs, new Scorer.Options(3, false));
        for (int i = 0; i < PROMPTS.size(); i++) {
            Generated g = r.sequences().get(i);
            for (int t = 0; t < g.outputIds().length; t++) {
                assertEquals(s.get(i).logprobs()[t], g.logprobs()[t], 1e-4, "seq " + i + " token " + t);
                assertArrayEquals(s.get(i).topIds()[t], g.topIds()[t]);
            }
        }
    }

    @Test
    void samplesOfASharedPromptDecodeFromItsOnePrefillAsFromTheirOwn() {
        // a lease's groups: each prompt several times, interleaved; their prefill runs once per prompt
        List<int[]> group = List.of(PROMPTS.get(2), PROMPTS.get(0), PROMPTS.get(2), PROMPTS.get(1), PROMPTS.get(0), PROMPTS.get(2));
        GenerationResult greedy = new Generator(model).generate(new GenerationRequest(group, 10, SamplingParams.greedy(), Set.of(), 0));
        for (int i = 0; i < group.size(); i++) {
            assertArrayEquals(bruteForceGreedy(group.get(i), 10), greedy.sequences().get(i).outputIds(), "sequence " + i);
        }
        GenerationResult sampled = new Generator(model).generate(
                new GenerationRequest(group, 15, new SamplingParams(1.0, 1.0, 0, 11), Set.of(), 0));
        List<int[]> outs = sampled.sequences().stream().map(Generated::outputIds).toList();
        assertFalse(java.util.Arrays.equals(outs.get(0), outs.get(2)) && java.util.Arrays.equals(outs.get(0), outs.get(5)),
                "the samples of one prompt draw their own tokens");
        List<Scorer.Scores> s = Scorer.score(model, group, outs, new Scorer.Options(0, false));
        for (int i = 0; i < group.size(); i++) {
            Generated g = sampled.sequences().get(i);
            for (int t = 0; t < g.outputIds().length; t++) {
                assertEquals(s.get(i).logprobs()[t], g.logprobs()[t], 1e-4, "seq " + i + " token " + t);
            }
        }
    }

    @Test
    void topKOfOneIsGreedyAndStopTokensEndASequence() {
        GenerationResult greedy = new Generator(model).generate(new GenerationRequest(PROMPTS, 10, SamplingParams.greedy(), Set.of(), 0));
        GenerationResult k1 = new Generator(model).generate(new GenerationRequest(PROMPTS, 10, new SamplingParams(0.7, 1.0, 1, 3), Set.of(), 0));
        for (int i = 0; i < PROMPTS.size(); i++) {
            assertArrayEquals(greedy.sequences().get(i).outputIds(), k1.sequences().get(i).outputIds());
        }
        int stop = greedy.sequences().get(0).outputIds()[3];
        GenerationResult stopped = new Generator(model).generate(new GenerationRequest(PROMPTS, 10, SamplingParams.greedy(), Set.of(stop), 0));
        Generated s0 = stopped.sequences().get(0);
        assertEquals("stop", s0.finishReason());
        assertEquals(stop, s0.outputIds()[s0.outputIds().length - 1]);
        assertTrue(s0.outputIds().length <= 4);
        assertFalse(java.util.Arrays.stream(java.util.Arrays.copyOf(s0.outputIds(), s0.outputIds().length - 1)).anyMatch(x -> x == stop));
    }

    @Test
    void aScoringFromTheGenerationsKeptPromptsEqualsOneThatPrefillsThemItself() {
        // two groups sharing their prompts, as a lease's samples do
        List<int[]> prompts = List.of(PROMPTS.get(0), PROMPTS.get(0), PROMPTS.get(0), PROMPTS.get(2), PROMPTS.get(2));
        Generator g = new Generator(model).keepPrompts();
        GenerationResult r = g.generate(new GenerationRequest(prompts, 7, new SamplingParams(1.0, 1.0, 0, 11L), Set.of(), 0));
        List<int[]> outs = r.sequences().stream().map(Generated::outputIds).toList();
        // a third prompt the generation never saw is prefilled by the scoring itself
        List<int[]> scoredPrompts = new java.util.ArrayList<>(prompts);
        scoredPrompts.add(PROMPTS.get(1));
        List<int[]> scoredOuts = new java.util.ArrayList<>(outs);
        scoredOuts.add(new int[] {4, 7, 1});
        Scorer.Options opts = new Scorer.Options(3, true);
        List<Scorer.Scores> reference = Scorer.score(model, scoredPrompts, scoredOuts, opts);
        List<Scorer.Scores> reused;
        try (io.tailguard.model.PromptPrefill kept = g.takePrompts()) {
            assertTrue(kept != null && kept.rowOf(PROMPTS.get(2)) == 1 && kept.rowOf(PROMPTS.get(1)) == -1);
            reused = Scorer.score(model, scoredPrompts, scoredOuts, opts, kept);
        }
        assertEquals(null, g.takePrompts(), "taken once");
        for (int i = 0; i < scoredPrompts.size(); i++) {
            Scorer.Scores a = reference.get(i);
            Scorer.Scores b = reused.get(i);
            assertEquals(a.logprobs().length, b.logprobs().length);
            for (int t = 0; t < a.logprobs().length; t++) {
                assertEquals(a.logprobs()[t], b.logprobs()[t], 1e-5, "sequence " + i + ", token " + t);
                assertArrayEquals(a.topIds()[t], b.topIds()[t]);
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    assertEquals(a.probs()[t][v], b.probs()[t][v], 1e-6);
                }
            }
            if (i < prompts.size()) {
                // the first token was sampled from the very logits the scoring reused
                assertEquals(r.sequences().get(i).logprobs()[0], b.logprobs()[0], 1e-6);
            }
        }
    }

    @Test
    void theScoringReallyReadsTheKeptRows() {
        // kept by other weights, the rows give other log-probs: the scoring did not prefill again
        List<int[]> prompts = List.of(PROMPTS.get(2), PROMPTS.get(2));
        List<int[]> outs = List.of(new int[] {5, 2, 8}, new int[] {1, 1});
        float[] own = Scorer.score(model, prompts, outs, Scorer.Options.LOGPROBS_ONLY).get(0).logprobs();
        try (Qwen3Model other = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 6, 0.3, 0.1), Device.cpu())) {
            Generator g = new Generator(other).keepPrompts();
            g.generate(new GenerationRequest(prompts, 2, SamplingParams.greedy(), Set.of(), 0));
            try (io.tailguard.model.PromptPrefill kept = g.takePrompts()) {
                float[] mixed = Scorer.score(model, prompts, outs, Scorer.Options.LOGPROBS_ONLY, kept).get(0).logprobs();
                double most = 0;
                for (int t = 0; t < own.length; t++) {
                    most = Math.max(most, Math.abs(own[t] - mixed[t]));
                }
                assertTrue(most > 1e-3, "largest difference " + most);
            }
        }
    }
}
