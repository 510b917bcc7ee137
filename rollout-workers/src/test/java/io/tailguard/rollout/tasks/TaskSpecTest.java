package io.tailguard.rollout.tasks;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TaskSpecTest {

    private static String refused(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void theDefaultsAreTheTaskAsNamed() {
        TaskSpec s = TaskSpec.of("kv-recall");
        assertEquals(new TaskSpec("kv-recall", 0, TaskSpec.Reward.EXACT), s);
        assertTrue(s.isDefault());
        assertEquals("kv-recall", s.at(256).name());
        assertEquals(Tasks.builtin("kv-recall", 256).prompt(3, 5), s.at(256).prompt(3, 5));
        assertFalse(new TaskSpec("kv-trace", 2, TaskSpec.Reward.EXACT).isDefault());
        assertFalse(new TaskSpec("kv-trace", 0, TaskSpec.Reward.GRADED).isDefault());
    }

    @Test
    void stepsAndRewardReachTheTask() {
        Task t = new TaskSpec("kv-trace", 2, TaskSpec.Reward.GRADED).at(256);
        Prompt p = t.prompt(1, 0);
        String[] right = t.solution(p).orElseThrow().split("\n");
        assertEquals(2, right.length, "two steps, two lines");
        // one line of two right: graded gives 1/2 and it is not a pass; exact gives 0
        String half = right[0] + "\n-\n";
        assertEquals(0.5, t.verify(p, half).reward(), 1e-12);
        assertFalse(t.verify(p, half).isCorrect());
        assertEquals(0.0, new TaskSpec("kv-trace", 2, TaskSpec.Reward.EXACT).at(256).verify(p, half).reward());
        assertTrue(t.verify(p, right[0] + "\n" + right[1] + "\n").isCorrect());
        // 0 steps: a sixteenth of the context, 256 / 16 = 16 lines
        Task byDefault = TaskSpec.of("kv-trace").at(256);
        assertEquals(16, byDefault.solution(byDefault.prompt(1, 0)).orElseThrow().split("\n").length);
    }

    @Test
    void badPartsAreNamed() {
        assertEquals("task: unknown built-in task \"kv-recal\"; known: kv-recall, pointer-chase, marked-sum, kv-trace, copy",
                refused(() -> TaskSpec.of("kv-recal")));
        assertTrue(refused(() -> TaskSpec.of("math")).endsWith("(math is a dataset task)"));
        assertTrue(refused(() -> TaskSpec.of(null)).startsWith("task: unknown built-in task"));
        assertEquals("task-steps: must be >= 0 (0: the task's default), got -1",
                refused(() -> new TaskSpec("kv-trace", -1, TaskSpec.Reward.EXACT)));
        assertEquals("task-steps: task kv-recall has a fixed completion; steps apply to kv-trace, copy only",
                refused(() -> new TaskSpec("kv-recall", 2, TaskSpec.Reward.EXACT)));
        assertEquals("reward: task pointer-chase has a fixed completion and an exact reward; graded applies to kv-trace, copy only",
                refused(() -> new TaskSpec("pointer-chase", 0, TaskSpec.Reward.GRADED)));
        assertEquals("reward: must be exact or graded, got null", refused(() -> new TaskSpec("kv-trace", 0, null)));
        // a context too short for the steps is the task's to refuse, when it is built
        TaskSpec many = new TaskSpec("kv-trace", 64, TaskSpec.Reward.EXACT);
        assertTrue(refused(() -> many.at(128)).startsWith("kv-trace: context 128 holds"));
    }

    @Test
    void aDatasetSpecCarriesItsFileAndBudget(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path f = PromptOrderTest.sixRecords(dir);
        TaskSpec s = TaskSpec.dataset("math", f, 40);
        assertTrue(s.isDataset());
        assertFalse(s.isDefault());
        Task t = s.at(0);
        assertEquals(java.util.OptionalInt.of(6), t.size());
        assertEquals(java.util.OptionalInt.of(40), t.maxNewTokens());
        assertEquals(40, TaskFormat.maxNewTokens(t, t.prompt(0, 0), io.tailguard.model.tokenizer.CharTokenizer.standard(), 7),
                "the task's own budget, not the caller's fallback");
        assertEquals("max-new-tokens: dataset task math needs a completion budget >= 1 (its records carry answers, "
                + "not worked solutions), got 0", refused(() -> TaskSpec.dataset("math", f, 0)));
        assertTrue(refused(() -> TaskSpec.dataset("kv-recall", f, 8)).startsWith("dataset: kv-recall is a built-in task"));
        assertTrue(refused(() -> new TaskSpec("kv-recall", 0, TaskSpec.Reward.EXACT, null, 8, null)).startsWith("max-new-tokens: "));
        assertTrue(refused(() -> new TaskSpec("math", 2, TaskSpec.Reward.EXACT, f, 8, null)).startsWith("task-steps: "));
        assertTrue(refused(() -> TaskSpec.dataset("math", dir.resolve("none.jsonl"), 8).at(0)).endsWith("file not found"));
    }

    @Test
    void rewardsParseByName() {
        assertEquals(TaskSpec.Reward.EXACT, TaskSpec.Reward.parse("exact"));
        assertEquals(TaskSpec.Reward.GRADED, TaskSpec.Reward.parse(" Graded "));
        assertEquals("graded", TaskSpec.Reward.GRADED.toString());
        assertEquals("reward: must be exact or graded, got \"partial\"", refused(() -> TaskSpec.Reward.parse("partial")));
    }
}
