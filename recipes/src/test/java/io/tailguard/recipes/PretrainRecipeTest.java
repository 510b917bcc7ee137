package io.tailguard.recipes;

import io.tailguard.rollout.tasks.TaskSpec;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The recipe's hash (it names the cached embedded default), its validation, and where the default is cached. */
class PretrainRecipeTest {

    /**
     * A changed hash retrains every user's cached default, so any change here must be deliberate: a
     * new recipe (the default's first stage: copy on tiny6 at 768, the ramp at validation 0.4,
     * stopping at 0.4 or 900 steps, validation every 100 steps after the ramp; its second: from the
     * first's weights, copy's 32-chunk span at 1024, seed 5, at most 400 steps), or a change of the
     * training code, which bumps {@link PretrainRecipe#VERSION}.
     */
    @Test
    void theHashIsTheOneTheCachedDefaultsAreNamedBy() {
        PretrainRecipe d = PretrainRecipe.embeddedDefault();
        assertEquals("e2bdc22a6894", d.from().hash(), "the first stage");
        assertNull(d.from().from());
        assertEquals("efaa929cbb70", d.hash());
        assertEquals("03579cf07dd1", PretrainRecipe.of("pointer-chase", "small", 512, 300, 32, 3e-4, 11, 0.5).hash());
        assertEquals(Path.of("/c/default-efaa929cbb70"), EmbeddedDefault.dir(Path.of("/c"), d));
        assertEquals(1024, d.context());
        assertEquals(32, d.taskSteps());
        assertEquals("e2bdc22a6894", d.toMap().get("from"));
    }

    @Test
    void aStageContinuesOnlyTheSamePresetAndItsPredecessorEntersTheHash() {
        PretrainRecipe first = PretrainRecipe.of("copy", "tiny6", 768, 900, 16, 1e-3, 0);
        PretrainRecipe second = PretrainRecipe.of("copy", "tiny6", 1024, 400, 16, 1e-3, 5);
        assertNotEquals(second.hash(), second.continuing(first).hash());
        assertNotEquals(second.continuing(first).hash(), second.continuing(first.withTask(8, TaskSpec.Reward.EXACT)).hash(),
                "a changed first stage retrains the second");
        assertEquals(second.continuing(first), second.continuing(first).withTask(0, TaskSpec.Reward.EXACT), "withTask keeps the stage");
        assertMessageStarts("init", () -> PretrainRecipe.of("copy", "tiny", 1024, 400, 16, 1e-3, 5).continuing(first));
    }

    @Test
    void theTaskKnobsEnterTheHashOnlyWhenSet() {
        PretrainRecipe base = PretrainRecipe.embeddedDefault().from();
        assertEquals(base, base.withTask(0, TaskSpec.Reward.EXACT));
        assertEquals("e2bdc22a6894", base.withTask(0, TaskSpec.Reward.EXACT).hash(), "the defaults leave the hash alone");
        assertFalse(base.toMap().containsKey("task_steps") || base.toMap().containsKey("reward"));

        PretrainRecipe trace = PretrainRecipe.of("kv-trace", "tiny", 256, 500, 64, 1e-3, 0);
        PretrainRecipe steps = trace.withTask(8, TaskSpec.Reward.EXACT);
        PretrainRecipe graded = trace.withTask(0, TaskSpec.Reward.GRADED);
        assertEquals(8, steps.toMap().get("task_steps"));
        assertEquals("graded", graded.toMap().get("reward"));
        assertEquals(3, Set.of(trace.hash(), steps.hash(), graded.hash()).size(), "each knob changes the hash");
        assertNotEquals(steps.hash(), trace.withTask(8, TaskSpec.Reward.GRADED).hash());
        assertEquals(new TaskSpec("kv-trace", 8, TaskSpec.Reward.EXACT), steps.taskSpec());
    }

    @Test
    void theRecipeSettlesWarmUpAndCurriculumFromTheBudget() {
        PretrainRecipe r = PretrainRecipe.of("pointer-chase", "small", 512, 300, 32, 3e-4, 11, 0.5);
        assertEquals(15, r.warmupSteps(), "steps / 20");
        assertEquals(64, r.startContext());
        assertEquals(30, PretrainRecipe.of("kv-recall", "tiny", 256, 5000, 32, 1e-3, 0).warmupSteps(), "at most 30");
        assertEquals(1, PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, 1e-3, 0).warmupSteps(), "at least 1");
        assertEquals(3e-4, PretrainRecipe.defaultLr("small"));
        assertEquals(1e-3, PretrainRecipe.defaultLr("tiny"));
    }

    @Test
    void badValuesNameTheParameterNotAFlag() {
        assertMessageStarts("steps", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 0, 32, 1e-3, 0));
        assertMessageStarts("batch", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 0, 1e-3, 0));
        assertMessageStarts("lr", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, Double.NaN, 0));
        assertMessageStarts("target", () -> PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, 1e-3, 0, 1.5));
        assertMessageStarts("task", () -> Pretraining.validate(PretrainRecipe.of("no-such-task", "tiny", 256, 10, 32, 1e-3, 0)));
        assertMessageStarts("context", () -> Pretraining.validate(PretrainRecipe.of("kv-recall", "tiny", 16, 10, 32, 1e-3, 0)));
        PretrainRecipe recall = PretrainRecipe.of("kv-recall", "tiny", 256, 10, 32, 1e-3, 0);
        assertMessageStarts("task-steps", () -> recall.withTask(-1, TaskSpec.Reward.EXACT));
        assertMessageStarts("task-steps", () -> Pretraining.validate(recall.withTask(4, TaskSpec.Reward.EXACT)));
        assertMessageStarts("reward", () -> Pretraining.validate(recall.withTask(0, TaskSpec.Reward.GRADED)));
        // 64 steps do not fit a context of 256: (256 - 9 header - 193 query) / 6 = 9 table lines
        assertMessageStarts("context", () -> Pretraining.validate(PretrainRecipe.of("kv-trace", "tiny", 256, 10, 32, 1e-3, 0)
                .withTask(64, TaskSpec.Reward.EXACT)));
    }

    @Test
    void theCacheHonoursTailguardCache() {
        assertEquals(Path.of("/x/cache"), EmbeddedDefault.cacheRoot(Map.of("TAILGUARD_CACHE", "/x/cache"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/tailguard"), EmbeddedDefault.cacheRoot(Map.of("TAILGUARD_CACHE", " "), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/tailguard"), EmbeddedDefault.cacheRoot(Map.of(), "/home/u"));
    }

    @Test
    void explicitStepsShrinkWithTheCurriculumContext() {
        TaskSpec k32 = new TaskSpec("kv-trace", 32, TaskSpec.Reward.EXACT);
        assertEquals(4, lines(Pretraining.taskAt(k32, 64, 512)), "32 * 64 / 512");
        assertEquals(16, lines(Pretraining.taskAt(k32, 256, 512)), "32 * 256 / 512");
        assertEquals(32, lines(Pretraining.taskAt(k32, 512, 512)), "all of them at the final context");
        assertEquals(1, lines(Pretraining.taskAt(new TaskSpec("kv-trace", 3, TaskSpec.Reward.EXACT), 64, 512)), "at least 1");
        assertEquals(4, lines(Pretraining.taskAt(TaskSpec.of("kv-trace"), 64, 512)), "the default: 64 / 16");
        // a long generation pretrains from the 64-token start: 32 steps would not fit there
        assertEquals(32, lines(Pretraining.validate(PretrainRecipe.of("kv-trace", "tiny", 512, 10, 32, 1e-3, 0)
                .withTask(32, TaskSpec.Reward.EXACT))));
    }

    private static int lines(io.tailguard.rollout.tasks.Task t) {
        return t.solution(t.prompt(1, 0)).orElseThrow().split("\n").length;
    }

    @Test
    void theContextRampsOnceTheLookupIsMastered() {
        PretrainRecipe r = PretrainRecipe.of("kv-recall", "tiny", 256, 700, 32, 1e-3, 0, 0.3);
        assertEquals(64, Pretraining.contextCeiling(r, -1, 500), "not mastered yet: the start context");
        assertEquals(64, Pretraining.contextCeiling(r, 300, 300));
        assertEquals(160, Pretraining.contextCeiling(r, 300, 325), "half way through the 50-step ramp: 64 + 192 / 2");
        assertEquals(256, Pretraining.contextCeiling(r, 300, 350));
        assertEquals(256, Pretraining.contextCeiling(r, 300, 650));
    }

    private static void assertMessageStarts(String name, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().startsWith(name + " ") || x.getMessage().startsWith(name + ":"), x.getMessage());
    }
}
