package io.tailguard.rollout.worker;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
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
}
