package io.tailguard.rollout.eval;

import ai.djl.Device;
import io.tailguard.model.AttentionKernel;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.TaskSpec;
import io.tailguard.rollout.tasks.Tasks;
import io.tailguard.rollout.tasks.Verdict;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EvaluatorTest {
    static final CharTokenizer TOK = CharTokenizer.standard();
    static Qwen3Model model;

    @BeforeAll
    static void build() {
        ModelConfig c = ModelConfig.preset("tiny", TOK.vocabSize(), TOK.eosId());
        model = Qwen3Model.create(c, RandomInit.weights(c, 7, 0.02, 0.0), Device.cpu());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void passAtKMatchesHandComputedBinomials() {
        assertEquals(0.0, Evaluator.passAtK(5, 0, 1), 1e-12);
        assertEquals(0.4, Evaluator.passAtK(5, 2, 1), 1e-12);                 // c / n
        assertEquals(1 - 3.0 / 10, Evaluator.passAtK(5, 2, 2), 1e-12);       // 1 - C(3,2)/C(5,2)
        assertEquals(1 - 21.0 / 252, Evaluator.passAtK(10, 3, 5), 1e-12);    // 1 - C(7,5)/C(10,5)
        assertEquals(1.0, Evaluator.passAtK(4, 1, 4), 1e-12);                // k = n: any correct sample
        assertEquals(0.0, Evaluator.passAtK(4, 0, 4), 1e-12);
        assertEquals(1.0, Evaluator.passAtK(3, 3, 1), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> Evaluator.passAtK(3, 1, 4));
    }

    @Test
    void failureReasonsAreBucketedByTheirKind() {
        assertEquals("wrong answer", Evaluator.reasonKey("wrong answer: got \"12\", expected 13"));
        assertEquals("no answer found", Evaluator.reasonKey("no answer found"));
        assertEquals("timeout after #s", Evaluator.reasonKey("Timeout after 5s"));
        assertEquals("(no reason)", Evaluator.reasonKey("  "));
    }

    @Test
    void greedySingleSampleEvaluationHasTheDocumentedShape() {
        Task task = Tasks.builtin("kv-recall", 96);
        var o = new Evaluator.EvalOptions(3, 1, 0, 11, 16, 2);
        int[] calls = {0};
        Evaluator.EvalResult r = Evaluator.evaluate(model, TOK, task, o, AttentionKernel.DENSE, (d, t) -> calls[0]++);
        assertEquals(3, r.n());
        assertEquals(1, r.k());
        assertEquals(2, calls[0], "one progress call per batch of 2");
        assertEquals(r.passAt1(), r.passAtK(), 1e-12, "k = 1");
        int failures = r.failureReasons().values().stream().mapToInt(Integer::intValue).sum();
        assertEquals(3, failures + Math.round(r.passAt1() * 3));
        // kv-recall answers are "ddd\n" + eos = 5 tokens; max new = 5 + 2 + 8
        assertTrue(r.meanCompletionTokens() >= 0 && r.meanCompletionTokens() <= 15, "" + r.meanCompletionTokens());
        Evaluator.EvalResult again = Evaluator.evaluate(model, TOK, task, o, AttentionKernel.DENSE);
        assertEquals(r, again, "greedy evaluation is deterministic");
    }

    /** kv-trace's prompts and solutions, every completion scored {@code verdict}. */
    private static Task scoredAs(Verdict verdict) {
        Task kv = new TaskSpec("kv-trace", 2, TaskSpec.Reward.GRADED).at(96);
        return new Task() {
            public String name() { return kv.name(); }
            public Prompt prompt(long seed, long index) { return kv.prompt(seed, index); }
            public Verdict verify(Prompt prompt, String completion) { return verdict; }
            public Optional<String> solution(Prompt prompt) { return kv.solution(prompt); }
            public OptionalInt size() { return kv.size(); }
        };
    }

    @Test
    void passAt1CountsOnlyExactMatchesNotPartialGradedRewards() {
        var o = new Evaluator.EvalOptions(3, 2, 1.0, 5, 16, 6);
        Evaluator.EvalResult partial = Evaluator.evaluate(model, TOK, scoredAs(new Verdict(0.75, "wrong line 2 of 2")), o,
                AttentionKernel.DENSE);
        assertEquals(0.0, partial.passAt1());
        assertEquals(0.0, partial.passAtK());
        assertEquals(java.util.Map.of("wrong line # of #", 6), partial.failureReasons(), "3 prompts x 2 samples, none a pass");
        assertEquals(0.75, partial.meanReward(), 1e-12, "the graded reward is still reported, as the mean over completions");
        Evaluator.EvalResult exact = Evaluator.evaluate(model, TOK, scoredAs(Verdict.correct()), o, AttentionKernel.DENSE);
        assertEquals(1.0, exact.passAt1());
        assertEquals(1.0, exact.meanReward());
        assertTrue(exact.failureReasons().isEmpty());
    }

    @Test
    void severalSamplesCountEveryCompletion() {
        Task task = Tasks.builtin("kv-recall", 80);
        var o = new Evaluator.EvalOptions(2, 3, 1.0, 5, 16, 4);
        Evaluator.EvalResult r = Evaluator.evaluate(model, TOK, task, o, AttentionKernel.DENSE);
        assertEquals(2, r.n());
        assertEquals(3, r.k());
        int failures = r.failureReasons().values().stream().mapToInt(Integer::intValue).sum();
        assertEquals(6, failures + Math.round(r.passAt1() * 6));
        assertTrue(r.passAtK() >= r.passAt1());
        assertThrows(IllegalArgumentException.class, () -> new Evaluator.EvalOptions(2, 3, 0, 5, 16, 4),
                "greedy with several samples is refused");
    }

    @Test
    void aDatasetIsEvaluatedOnAtMostItsRecords(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("m.jsonl");
        Files.writeString(f, "{\"id\":\"a\",\"problem\":\"1+1?\",\"answer\":\"2\"}\n{\"id\":\"b\",\"problem\":\"2+2?\",\"answer\":\"4\"}\n");
        Task task = Tasks.fromDataset("math", f);
        Evaluator.EvalResult r = Evaluator.evaluate(model, TOK, task, new Evaluator.EvalOptions(5, 1, 0, 0, 6, 8),
                AttentionKernel.DENSE);
        assertEquals(2, r.n());
        assertTrue(r.meanCompletionTokens() <= 6);
    }

    @Test
    void theDenseScheduleHasNoMismatch() {
        Task task = Tasks.builtin("kv-recall", 112);
        var prompts = Evaluator.prompts(task, 2, 3);
        TailMeasurement.Result r = TailMeasurement.measure(model, TOK, task, prompts, Schedule.dense(), 64, 1.0, 1, 2, 16,
                Evaluator.Progress.NONE);
        assertEquals(2, r.trajectories());
        assertEquals(2, r.probed());
        TailStats t = r.tails();
        assertTrue(t.totalCount() > 0);
        for (TailStats.BinSummary b : t.summary()) {
            assertEquals(1.0, b.alphaP5(), 1e-5);
        }
    }

    @Test
    void aLoraOfTheActorIsMeasuredAgainstTheDensePolicyWithoutIt() {
        Task task = Tasks.builtin("kv-recall", 112);
        var prompts = Evaluator.prompts(task, 2, 3);
        try (LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 5)) {
            java.util.SplittableRandom r = new java.util.SplittableRandom(2);
            for (var e : lora.parameters().entrySet()) {
                if (e.getKey().endsWith("lora_B.weight")) {
                    float[] v = new float[(int) e.getValue().size()];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) (r.nextGaussian() * 0.5);
                    }
                    e.getValue().set(v);
                }
            }
            model.attach(lora);
            lora.setEnabled(false);
            // Dense "sparse" schedule: the only difference between actor and probe is the LoRA.
            TailMeasurement.Result with = TailMeasurement.measure(model, TOK, task, prompts, Schedule.dense(), 64, 1.0, 1, 2, 16,
                    Evaluator.Progress.NONE, lora);
            double minP5 = 1;
            for (TailStats.BinSummary b : with.tails().summary()) {
                minP5 = Math.min(minP5, b.alphaP5());
            }
            assertTrue(minP5 < 0.99, "the probe must not use the actor's LoRA: p5 " + minP5);
            assertTrue(!lora.isEnabled(), "the switch is back where it was");
            TailMeasurement.Result without = TailMeasurement.measure(model, TOK, task, prompts, Schedule.dense(), 64, 1.0, 1, 2, 16,
                    Evaluator.Progress.NONE, null);
            for (TailStats.BinSummary b : without.tails().summary()) {
                assertEquals(1.0, b.alphaP5(), 1e-5, "switched off, the actor is the dense policy");
            }
        }
    }
}
