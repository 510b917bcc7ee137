package io.tailguard.actors.cli;

import io.tailguard.actors.runtime.RunSettings;
import io.tailguard.recipes.PretrainRecipe;
import io.tailguard.rollout.sparse.BudgetController;
import io.tailguard.rollout.tasks.Task;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * config/quickstart.conf, read by the code `train` reads it with (RunConfig over every
 * reference.conf, then RunSettings), is a valid run at the lengths the embedded default is trained
 * for, with bins that reach its completions' last positions.
 */
class QuickstartConfigTest {

    static Path quickstart() {
        // the module's tests run in actors/; the file is the repository's
        Path p = Path.of("..", "config", "quickstart.conf");
        assertTrue(Files.isRegularFile(p), "config/quickstart.conf from " + Path.of("").toAbsolutePath());
        return p;
    }

    @Test
    void theQuickstartParsesAndRunsWhereTheDefaultWasTrained() {
        RunSettings s = RunSettings.parse(RunConfig.load(quickstart(), List.of()), quickstart().toString());
        PretrainRecipe d = PretrainRecipe.embeddedDefault();
        assertEquals("default", s.train().checkpoint());
        assertEquals(d.task(), s.train().task().name());
        assertEquals(d.taskSpec().steps(), s.train().task().steps(), "the same completions as the default was trained on");
        assertEquals(io.tailguard.rollout.tasks.TaskSpec.Reward.GRADED, s.train().task().reward());
        assertEquals(d.context(), s.train().contextMax(), "evaluated at the context the default was trained to");
        assertEquals(RunSettings.CALIBRATE, s.startSchedule());
        assertEquals(Set.of(0, 1), s.denseLayers());
        assertTrue(s.rollout().speedupEvery() > 0, "the speedup is measured in the run");
        assertTrue(s.train().evalEvery() > 0, "held-out pass@1 is a curve");
        assertTrue(s.rollout().kvCacheChosen(), "the controller chooses the KV cache too (plain+kv16)");
        assertEquals(s.learner().groupsPerStep(), s.buffer().maxGroups(),
                "one learner step's groups on their way: a fast worker pauses instead of running a version ahead");

        // copy's span at 1024: 32 chunks of 8 = 256 symbols and "]"; n = 258 tokens with eos and a
        // generation cap of 258 + 65 + 8 = 331
        Task t = s.train().task().at(s.train().contextMax());
        assertEquals(256 + 1, t.solution(t.prompt(0, 0)).orElseThrow().length());
        assertEquals(1024 + 331, s.train().longestSequence());
        BudgetController.Settings c = s.controller();
        assertEquals(1024 + 331, c.maxContext());
        // bins of 128 to position 1355: 11 bins, the last [1280, 1408)
        assertEquals(11, c.bins());
        // a 256-symbol exact copy: the p5 α tail does not see a rare lost symbol, so the floor stays at 256
        assertEquals(256, c.minBudget());
    }
}
