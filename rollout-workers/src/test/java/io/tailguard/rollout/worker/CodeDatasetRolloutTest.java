package io.tailguard.rollout.worker;

import ai.djl.Device;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.tasks.DatasetTask;
import io.tailguard.rollout.tasks.Practice;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.PromptOrder;
import io.tailguard.rollout.tasks.PythonSandbox;
import io.tailguard.rollout.tasks.SandboxLimits;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskFormat;
import io.tailguard.rollout.tasks.Tasks;
import io.tailguard.rollout.tasks.Verdict;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A code dataset rolled out by the engine as a rollout worker does: records in the run's order, the
 * run's completion budget, and every sample's verdict from the code verifier running in the sandbox.
 */
class CodeDatasetRolloutTest {
    private static final CharTokenizer TOK = CharTokenizer.standard();
    private static final SandboxLimits LIMITS =
            new SandboxLimits(Duration.ofSeconds(10), 2, 256L << 20, 16, 16 << 10, 1L << 20, 4L << 20);
    private static final String RIGHT = "```python\ndef add(a, b):\n    return a + b\n```\n";
    private static final String WRONG = "```python\ndef add(a, b):\n    return a - b\n```\n";

    /**
     * The code dataset with its verifier, except that a sample's completion is replaced by a right or
     * a wrong program by the parity of its length: a random tiny model writes no Python, and this
     * way the test knows each sample's reward from its own tokens, while the sandbox decides it.
     */
    private record ByParity(DatasetTask code) implements Task {
        @Override public String name() { return code.name(); }
        @Override public Prompt prompt(long seed, long index) { return code.prompt(seed, index); }
        @Override public Verdict verify(Prompt p, String completion) {
            return code.verify(p, completion.length() % 2 == 0 ? RIGHT : WRONG);
        }
        @Override public Optional<String> solution(Prompt p) { return code.solution(p); }
        @Override public Optional<Practice> practice(long seed, long index) { return Optional.empty(); }
        @Override public OptionalInt size() { return code.size(); }
        @Override public OptionalInt maxNewTokens() { return code.maxNewTokens(); }
    }

    @Test
    void theEngineRewardsEachSampleByTheSandboxedTestsWithinTheRunsBudget(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("code.jsonl");
        Files.write(file, List.of(
                "{\"id\":\"add-1\",\"problem\":\"Write add(a, b).\",\"tests\":\"assert add(1, 2) == 3\"}",
                "{\"id\":\"add-2\",\"problem\":\"Write add(a, b) for ints.\",\"tests\":\"assert add(-4, 4) == 0\\nassert add(2, 2) == 4\"}"));
        PythonSandbox sandbox = new PythonSandbox(LIMITS);
        assertNotEquals(PythonSandbox.Isolation.NONE, sandbox.isolation(), "no namespaces here");
        DatasetTask code = Tasks.fromDataset("code", file, sandbox).withMaxNewTokens(12);
        Task task = new ByParity(code);
        PromptOrder order = PromptOrder.of(task, 3);
        List<Prompt> prompts = List.of(order.prompt(0), order.prompt(1));
        assertNotEquals(prompts.get(0).id(), prompts.get(1).id(), "one epoch: both records");
        ModelConfig c = ModelConfig.preset("tiny", TOK.vocabSize(), TOK.eosId());
        try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 5, 0.02, 0.0), Device.cpu())) {
            RolloutEngine engine = new RolloutEngine(model, TOK, task, new RolloutEngine.Options(3, 1.0, 64, 32, 0.0, 1.0));
            RolloutEngine.Result r = engine.run(prompts, new long[] {0, 1}, Schedule.dense(), null, 11);
            assertEquals(6, r.trajectories().size());
            for (RolloutEngine.Trajectory t : r.trajectories()) {
                assertTrue(t.outputIds().length <= 12, "the run's budget (12), not the engine's fallback (64)");
                String text = TaskFormat.completionText(TOK, task, t.outputIds());
                double expected = text.length() % 2 == 0 ? 1.0 : 0.0;
                assertEquals(expected, t.reward(), t.reason());
                if (expected == 0.0) {
                    assertTrue(t.reason().contains("AssertionError") || t.reason().contains("assert"), t.reason());
                }
            }
        }
    }

    /** Several workers of one JVM verify through one sandbox at once: each run has its own scratch and verdict. */
    @Test
    void theSandboxVerifiesConcurrently(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("code.jsonl");
        Files.write(file, List.of("{\"id\":\"add\",\"problem\":\"Write add(a, b).\",\"tests\":\"assert add(1, 2) == 3\"}"));
        DatasetTask code = Tasks.fromDataset("code", file, new PythonSandbox(LIMITS));
        Prompt p = code.prompts().get(0);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Double>> rewards = new java.util.ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String completion = i % 2 == 0 ? RIGHT : WRONG;
                rewards.add(pool.submit(() -> code.verify(p, completion).reward()));
            }
            for (int i = 0; i < 4; i++) {
                assertEquals(i % 2 == 0 ? 1.0 : 0.0, rewards.get(i).get());
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
