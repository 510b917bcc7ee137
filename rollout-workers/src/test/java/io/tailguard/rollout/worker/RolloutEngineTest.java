package io.tailguard.rollout.worker;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.sparse.CostModel;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One lease's rollout: sampling, rewards, the α sample's tails; and the synchronous loop's unscored form. */
class RolloutEngineTest {
    private static final CharTokenizer TOK = CharTokenizer.standard();
    private static final Task TASK = Tasks.builtin("kv-recall", 64);
    private static Qwen3Model model;

    @BeforeAll
    static void load() {
        ModelConfig c = ModelConfig.preset("tiny", TOK.vocabSize(), TOK.eosId());
        model = Qwen3Model.create(c, RandomInit.weights(c, 2, 0.02, 0.0), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static RolloutEngine engine() {
        return engine(1.0);
    }

    private static RolloutEngine engine(double scoreFraction) {
        return new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, 32, 0.0, scoreFraction));
    }

    private static final List<Prompt> PROMPTS = List.of(TASK.prompt(1, 0), TASK.prompt(1, 1));

    @Test
    void everyPromptGetsAGroupOfScoredSamples() {
        RolloutEngine.Result r = engine().run(PROMPTS, new long[] {10, 11}, Schedule.dense(), null, 5);
        assertEquals(6, r.trajectories().size(), "2 prompts × G = 3");
        long tokens = 0;
        for (int i = 0; i < 6; i++) {
            RolloutEngine.Trajectory t = r.trajectories().get(i);
            assertEquals(i < 3 ? 10 : 11, t.groupId());
            assertEquals(i % 3, t.sample());
            assertEquals(PROMPTS.get(i / 3).id(), t.promptId());
            assertEquals(t.outputIds().length, t.behaviourLogprobs().length);
            assertTrue(t.reward() >= 0 && t.reward() <= 1);
            tokens += t.outputIds().length;
        }
        assertEquals(tokens, r.generatedTokens());
        assertEquals(tokens, r.tails().totalCount(), "score-fraction 1: α of every token is in the tails");
    }

    @Test
    void anUnscoredRolloutSamplesTheSameTokensWithoutTails() {
        RolloutEngine e = engine();
        for (Schedule s : List.of(Schedule.dense(), Schedule.fixed(48))) {
            RolloutEngine.Result scored = e.run(PROMPTS, new long[] {0, 1}, s, null, 9);
            RolloutEngine.Result own = e.runUnscored(PROMPTS, new long[] {0, 1}, s, 9);
            assertEquals(0, own.tails().binCount(), "no tails without scoring");
            for (int i = 0; i < 6; i++) {
                RolloutEngine.Trajectory a = scored.trajectories().get(i);
                RolloutEngine.Trajectory b = own.trajectories().get(i);
                assertArrayEquals(a.outputIds(), b.outputIds(), "the same seed samples the same tokens");
                assertArrayEquals(a.behaviourLogprobs(), b.behaviourLogprobs());
                assertEquals(a.reward(), b.reward());
            }
        }
        assertTrue(e.decodeSeconds(PROMPTS, Schedule.dense(), 9) > 0);
    }

    @Test
    void aScoreFractionScoresThatShareOfTheTrajectoriesAndTheirTokensOnly() {
        Schedule sparse = Schedule.fixed(48);
        RolloutEngine.Result all = engine(1.0).run(PROMPTS, new long[] {0, 1}, sparse, null, 9);
        RolloutEngine.Result third = engine(1.0 / 3).run(PROMPTS, new long[] {0, 1}, sparse, null, 9);
        // the same samples either way: scoring does not touch the generation
        for (int i = 0; i < 6; i++) {
            assertArrayEquals(all.trajectories().get(i).outputIds(), third.trajectories().get(i).outputIds());
        }
        // ⌈6 / 3⌉ = 2 trajectories, drawn by the lease's seed; their tokens, and theirs only, are measured
        List<Integer> picked = RolloutEngine.scoredSample(generated(all), 1.0 / 3, 9);
        assertEquals(2, picked.size());
        long tokens = 0;
        for (int i : picked) {
            tokens += all.trajectories().get(i).outputIds().length;
        }
        assertEquals(tokens, third.tails().totalCount());
        // bin by bin: the picked trajectories' tokens at their positions (prompt length + t)
        io.tailguard.rollout.sparse.TailStats expected = new io.tailguard.rollout.sparse.TailStats(32);
        for (int i : picked) {
            RolloutEngine.Trajectory t = all.trajectories().get(i);
            for (int k = 0; k < t.outputIds().length; k++) {
                expected.add(t.promptIds().length + k, 1.0);
            }
        }
        assertEquals(expected.binCount(), third.tails().binCount());
        for (int bin = 0; bin < expected.binCount(); bin++) {
            assertEquals(expected.count(bin), third.tails().count(bin), "bin " + bin);
        }
        assertTrue(third.tails().totalCount() < all.tails().totalCount());
    }

    /** The trajectories as the generator's sequences (prompt and output), for the sample's draw. */
    private static List<io.tailguard.rollout.generation.Generated> generated(RolloutEngine.Result r) {
        return r.trajectories().stream().map(t -> new io.tailguard.rollout.generation.Generated(t.promptIds(), t.outputIds(),
                t.behaviourLogprobs(), null, null, "stop", null)).toList();
    }

    @Test
    void theScoredSampleIsUniformDeterministicAndNeverEmpty() {
        List<io.tailguard.rollout.generation.Generated> gens = new java.util.ArrayList<>();
        for (int i = 0; i < 16; i++) {
            gens.add(new io.tailguard.rollout.generation.Generated(new int[] {1}, i == 5 ? new int[0] : new int[] {2, 3},
                    new float[i == 5 ? 0 : 2], null, null, "stop", null));
        }
        List<Integer> a = RolloutEngine.scoredSample(gens, 0.25, 3);
        assertEquals(4, a.size(), "⌈0.25 × 15⌉ of the 15 with output");
        assertEquals(a, RolloutEngine.scoredSample(gens, 0.25, 3), "the lease's seed fixes the draw");
        assertFalse(a.contains(5), "a trajectory without output has nothing to score");
        assertEquals(a.stream().sorted().toList(), a, "in batch order");
        assertEquals(1, RolloutEngine.scoredSample(gens, 0.01, 3).size(), "at least one");
        assertEquals(15, RolloutEngine.scoredSample(gens, 1.0, 3).size());
        // uniform: over many seeds every trajectory with output is drawn about equally often
        int[] hits = new int[16];
        for (long seed = 0; seed < 3000; seed++) {
            for (int i : RolloutEngine.scoredSample(gens, 0.25, seed)) {
                hits[i]++;
            }
        }
        assertEquals(0, hits[5]);
        for (int i = 0; i < 16; i++) {
            if (i != 5) {
                // expected 3000 × 4/15 = 800, standard deviation about 24
                assertTrue(Math.abs(hits[i] - 800) < 120, "trajectory " + i + " drawn " + hits[i] + " times");
            }
        }
    }

    @Test
    void aPlainDenseLeaseWithoutAShadowIsNotScoredButOneWithAShadowIs() {
        RolloutEngine e = engine();
        // the worker's entry: a dense lease of the policy itself, nothing to replay
        RolloutEngine.Result plain = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 9, null, false);
        RolloutEngine.Result own = e.runUnscored(PROMPTS, new long[] {0, 1}, Schedule.dense(), 9);
        assertEquals(0, plain.tails().binCount(), "α of the dense policy against itself is not measured");
        for (int i = 0; i < 6; i++) {
            assertArrayEquals(own.trajectories().get(i).outputIds(), plain.trajectories().get(i).outputIds());
        }
        // with a shadow to replay (the controller on), the same lease is scored: the shadow's α needs p
        RolloutEngine.Result shadowed = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), Schedule.ofBins(32, new int[] {48, 48}),
                9, null, false);
        assertTrue(shadowed.tails().binCount() > 0, "α of every token is in the tails");
        // a sparse lease is always scored
        assertTrue(e.run(PROMPTS, new long[] {0, 1}, Schedule.fixed(48), null, 9, null, false).tails().binCount() > 0);
    }

    @Test
    void aDenseLeaseOnAFloat16CacheIsScoredAndItsTailIsNearOne() {
        RolloutEngine half = new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, 32, 0.0, 1.0,
                ai.djl.ndarray.types.DataType.FLOAT16));
        // the sampler's cache is float16: its distributions are not the dense float32 policy's, so α is measured
        RolloutEngine.Result r = half.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 9, null, false);
        assertTrue(r.tails().binCount() > 0, "α of a float16 rollout is in the tails");
        double lowest = 1;
        boolean belowOne = false;
        for (int b = 0; b < r.tails().binCount(); b++) {
            if (r.tails().count(b) > 0) {
                lowest = Math.min(lowest, r.tails().quantile(b, 0.0));
                belowOne |= r.tails().quantile(b, 0.0) < 1;
            }
        }
        assertTrue(belowOne, "rounding keys and values moves the sampler's distributions off the policy's");
        assertTrue(lowest > 0.9, "float16 keys and values change the distributions little: lowest α " + lowest);
        assertThrows(IllegalArgumentException.class, () -> new RolloutEngine.Options(3, 1.0, 8, 32, 0.0, 1.0,
                ai.djl.ndarray.types.DataType.INT8));
    }

    @Test
    void aTrajectoryIsReplayedOnlyWhereItsShadowAttendsOtherwise() {
        // the quickstart's calibrated start: 48 everywhere but 64 from context 896, bins of 128
        Schedule live = Schedule.ofBins(128, new int[] {48, 48, 48, 48, 48, 48, 48, 64});
        Schedule shadow = Schedule.ofBins(128, new int[] {48, 48, 48, 48, 48, 48, 48, 48});
        assertFalse(RolloutEngine.reachesShadow(live, shadow, 700, 130), "decodes at contexts 700 … 830 only");
        assertTrue(RolloutEngine.reachesShadow(live, shadow, 766, 130), "reaches context 896, where 64 becomes 48");
        // budgets that differ but both cover the context: dense either way
        Schedule wide = Schedule.ofBins(128, new int[] {64});
        assertFalse(RolloutEngine.reachesShadow(wide, Schedule.ofBins(128, new int[] {48}), 40, 5));
        assertTrue(RolloutEngine.reachesShadow(wide, Schedule.ofBins(128, new int[] {48}), 40, 20), "contexts past 48");
        // the same budgets with other dense layers attend otherwise wherever a budget binds
        assertTrue(RolloutEngine.reachesShadow(live, live.withDenseLayers(Schedule.denseLayerSet(0)), 700, 130));
        assertFalse(RolloutEngine.reachesShadow(live, live.withVersion(7), 700, 130), "the same schedule again");

        // in a lease: every trajectory picked (shadow-fraction 1), replayed only when its shadow differs within reach
        RolloutEngine e = new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, 32, 1.0, 1.0));
        Schedule at64 = Schedule.ofBins(32, new int[] {64, 64, 64, 64, 64, 64});
        RolloutEngine.Result near = e.run(PROMPTS, new long[] {0, 1}, at64, Schedule.ofBins(32, new int[] {48, 48, 48, 48, 48, 48}),
                9, null, false);
        assertTrue(near.shadow().binCount() > 0, "kv-recall decodes past context 48: replayed at 48");
        RolloutEngine.Result far = e.run(PROMPTS, new long[] {0, 1}, Schedule.ofBins(32, new int[] {48, 48, 48, 48, 48, 64}),
                Schedule.ofBins(32, new int[] {48, 48, 48, 48, 48, 48}), 9, null, false);
        assertEquals(0, far.shadow().binCount(), "the shadow differs only from context 160, which no trajectory reaches");
        assertTrue(far.tails().binCount() > 0, "the live tails are the lease's all the same");
    }

    @Test
    void aMeasuredLeaseRollsOutTheSameAndReportsDenseAgainstLiveDecodeWithTheCostModelsPrediction() {
        RolloutEngine e = engine();
        Schedule fixed = Schedule.fixed(48); // below kv-recall's 64-token contexts: layers 2 and 3 decode sparsely
        RolloutEngine.Result plain = e.run(PROMPTS, new long[] {0, 1}, fixed, null, 4, null, false);
        RolloutEngine.Result measured = e.run(PROMPTS, new long[] {0, 1}, fixed, null, 4, null, true);
        assertNull(plain.speedup());
        for (int i = 0; i < 6; i++) {
            assertArrayEquals(plain.trajectories().get(i).outputIds(), measured.trajectories().get(i).outputIds());
            assertArrayEquals(plain.trajectories().get(i).behaviourLogprobs(), measured.trajectories().get(i).behaviourLogprobs());
        }
        RolloutEngine.SpeedupSample s = measured.speedup();
        assertTrue(s.decodeSteps() > 0, "kv-recall's answers need decode steps");
        assertTrue(s.liveDecodeSeconds() > 0 && s.denseDecodeSeconds() > 0 && s.densePrefillSeconds() > 0);
        assertTrue(measured.prefillSeconds() > 0 && measured.decodeSeconds() > 0);
        // every sequence of the batch is decoded at every step, at context promptLength + step
        CostModel cost = new CostModel(model.config(), CostModel.Machine.loadOrDefault(CostModel.Machine.defaultPath()), 6);
        long densePositions = 0;
        long livePositions = 0;
        double denseCost = 0;
        double liveCost = 0;
        for (RolloutEngine.Trajectory t : measured.trajectories()) {
            for (int step = 1; step <= s.decodeSteps(); step++) {
                int l = t.promptIds().length + step;
                densePositions += 4L * l;
                livePositions += 2L * l + 2L * Math.min(l, 48);
                denseCost += cost.denseDecodeTokenCost(l);
                liveCost += cost.decodeTokenCost(l, fixed);
            }
        }
        assertEquals(densePositions, s.denseKvPositions());
        assertEquals(livePositions, s.liveKvPositions());
        assertEquals(denseCost / liveCost, s.predictedSpeedup(), 1e-9);
        assertTrue(s.predictedSpeedup() > 1);
        // a dense schedule is not measured: there is nothing to compare
        assertNull(e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 4, null, true).speedup());
    }

    @Test
    void aCompressedActorsLeaseIsMeasuredAgainstThePolicyDenseEvenUnderADenseSchedule() {
        RolloutEngine e = engine();
        // the actor stands in for compressed weights: the policy's shapes, other values (so the same
        // linear bytes: the cost model predicts no gain at a dense schedule)
        try (Qwen3Model actor = Qwen3Model.create(model.config(), RandomInit.weights(model.config(), 3, 0.02, 0.0), Device.cpu())) {
            RolloutEngine.Result plain = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 4, actor, false);
            RolloutEngine.Result measured = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 4, actor, true);
            assertNull(plain.speedup());
            for (int i = 0; i < 6; i++) {
                assertArrayEquals(plain.trajectories().get(i).outputIds(), measured.trajectories().get(i).outputIds());
                assertArrayEquals(plain.trajectories().get(i).behaviourLogprobs(), measured.trajectories().get(i).behaviourLogprobs());
            }
            RolloutEngine.SpeedupSample s = measured.speedup();
            assertTrue(s.decodeSteps() > 0 && s.liveDecodeSeconds() > 0 && s.denseDecodeSeconds() > 0);
            assertEquals(s.denseKvPositions(), s.liveKvPositions(), "both decode densely");
            assertEquals(1.0, s.predictedSpeedup(), 1e-12);
        }
    }
}
