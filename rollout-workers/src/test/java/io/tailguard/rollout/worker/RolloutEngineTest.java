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
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One lease's rollout: sampling, rewards, π_old, tails; and the synchronous loop's dense, unscored form. */
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
        return new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, 32, 0.0));
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
            assertEquals(t.outputIds().length, t.oldLogprobs().length, "π_old: one dense log-prob per token");
            assertTrue(t.reward() >= 0 && t.reward() <= 1);
            tokens += t.outputIds().length;
        }
        assertEquals(tokens, r.generatedTokens());
        assertTrue(r.tails().binCount() > 0, "α of every token is in the tails");
    }

    @Test
    void aDenseUnscoredRolloutSamplesTheSameTokensAndKeepsItsOwnLogProbs() {
        RolloutEngine e = engine();
        RolloutEngine.Result scored = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 9);
        RolloutEngine.Result own = e.runDenseUnscored(PROMPTS, new long[] {0, 1}, 9);
        assertEquals(0, own.tails().binCount(), "no tails without scoring");
        for (int i = 0; i < 6; i++) {
            RolloutEngine.Trajectory a = scored.trajectories().get(i);
            RolloutEngine.Trajectory b = own.trajectories().get(i);
            assertArrayEquals(a.outputIds(), b.outputIds(), "the same seed samples the same tokens");
            assertArrayEquals(a.behaviourLogprobs(), b.behaviourLogprobs());
            assertArrayEquals(b.behaviourLogprobs(), b.oldLogprobs(), "π_old is the sampler's own");
            assertEquals(a.reward(), b.reward());
        }
        assertTrue(e.decodeSeconds(PROMPTS, Schedule.dense(), 9) > 0);
    }

    @Test
    void aPlainDenseLeaseWithoutAShadowIsNotScoredButOneWithAShadowIs() {
        RolloutEngine e = engine();
        // the worker's entry: a dense lease of the policy itself, nothing to replay
        RolloutEngine.Result plain = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), null, 9, null, false);
        RolloutEngine.Result own = e.runDenseUnscored(PROMPTS, new long[] {0, 1}, 9);
        assertEquals(0, plain.tails().binCount(), "α of the dense policy against itself is not measured");
        for (int i = 0; i < 6; i++) {
            RolloutEngine.Trajectory a = plain.trajectories().get(i);
            assertArrayEquals(own.trajectories().get(i).outputIds(), a.outputIds());
            assertArrayEquals(a.behaviourLogprobs(), a.oldLogprobs(), "π_old is the sampler's own");
        }
        // with a shadow to replay (the controller on), the same lease is scored: the shadow's α needs p
        RolloutEngine.Result shadowed = e.run(PROMPTS, new long[] {0, 1}, Schedule.dense(), Schedule.ofBins(32, new int[] {48, 48}),
                9, null, false);
        assertTrue(shadowed.tails().binCount() > 0, "α of every token is in the tails");
        // a sparse lease is always scored
        assertTrue(e.run(PROMPTS, new long[] {0, 1}, Schedule.fixed(48), null, 9, null, false).tails().binCount() > 0);
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
        RolloutEngine e = new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, 32, 1.0));
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
