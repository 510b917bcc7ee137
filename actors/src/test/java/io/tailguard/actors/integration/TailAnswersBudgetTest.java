package io.tailguard.actors.integration;

import ai.djl.Device;
import io.tailguard.learner.AdamW;
import io.tailguard.learner.LrSchedule;
import io.tailguard.learner.SupervisedTrainer;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.MismatchProbe;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tail answers the budget: on a model trained briefly on kv-recall, the 5th percentile of α
 * per position bin rises with the KV budget (within noise), and the dense schedule gives α = 1.
 */
class TailAnswersBudgetTest {
    static final int CONTEXT = 640;
    static final int BIN = 128;

    static int[] withBos(CharTokenizer tok, String text) {
        int[] ids = tok.encode(text);
        int[] out = new int[ids.length + 1];
        out[0] = tok.bosId();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }

    static TailStats tails(Qwen3Model model, List<int[]> prompts, Schedule schedule) {
        Generator g = new Generator(model, BlockTopKAttention.of(schedule));
        List<Generated> out = g.generate(new GenerationRequest(prompts, 24, new SamplingParams(1.0, 1.0, 0, 11),
                Set.of(), 0, 0)).sequences();
        TailStats t = new TailStats(BIN);
        new MismatchProbe(model, 1.0, 0).probe(out, t);
        return t;
    }

    @Test
    void p5AlphaRisesWithTheBudgetAndDenseIsExact() {
        CharTokenizer tok = CharTokenizer.standard();
        ModelConfig c = ModelConfig.preset("tiny", tok.vocabSize(), tok.eosId());
        Task task = Tasks.builtin("kv-recall", CONTEXT);
        try (Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 0, 0.02, 0), Device.cpu())) {
            try (SupervisedTrainer tr = new SupervisedTrainer(model, new LrSchedule(3e-3, 10, 40, 0.2), AdamW.Options.defaults(), 8)) {
                long idx = 0;
                for (int s = 0; s < 40; s++) {
                    List<int[]> ps = new ArrayList<>();
                    List<int[]> cs = new ArrayList<>();
                    for (int i = 0; i < 8; i++) {
                        Prompt p = task.prompt(1, idx++);
                        ps.add(withBos(tok, p.text()));
                        int[] sol = tok.encode(task.solution(p).orElseThrow());
                        int[] withEos = Arrays.copyOf(sol, sol.length + 1);
                        withEos[sol.length] = tok.eosId();
                        cs.add(withEos);
                    }
                    tr.step(ps, cs);
                }
            }
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                prompts.add(withBos(tok, task.prompt(77, i).text()));
            }
            TailStats dense = tails(model, prompts, Schedule.dense());
            int[] budgets = {64, 128, 256};
            TailStats[] sparse = new TailStats[budgets.length];
            for (int i = 0; i < budgets.length; i++) {
                sparse[i] = tails(model, prompts, Schedule.fixed(budgets[i]));
            }
            int checked = 0;
            for (int bin = 0; bin < dense.binCount(); bin++) {
                if (dense.count(bin) < 20) {
                    continue;
                }
                assertEquals(1.0, dense.p5(bin), 1e-5, "dense alpha p5 in bin " + bin);
                double prev = -1;
                for (int i = 0; i < budgets.length; i++) {
                    double p5 = sparse[i].p5(bin);
                    assertTrue(p5 >= prev - 0.02, "bin " + bin + ": p5 " + p5 + " at budget " + budgets[i]
                            + " below " + prev + " at the smaller budget");
                    assertTrue(p5 <= 1.0 + 1e-9);
                    prev = p5;
                }
                assertTrue(sparse[0].p5(bin) < 1.0 - 1e-4, "the smallest budget should lose something in bin " + bin);
                checked++;
            }
            assertTrue(checked >= 1, "no bin had enough tokens");
        }
    }
}
