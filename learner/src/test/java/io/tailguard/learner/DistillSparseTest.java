package io.tailguard.learner;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ForwardMask;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.Scorer;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DistillSparse on a small random model whose "sparse actor" is a local window (the first page and
 * the two most recent pages; layers 0 and 1 dense), a stand-in for Block-Top-k that the learner
 * module can build without the rollout side.
 */
class DistillSparseTest {
    static final ModelConfig CONFIG = new ModelConfig(13, 32, 48, 4, 4, 2, 8, 1e-6, 10_000.0, 256, true, -1);
    static final int G = 8;

    /** Decoded positions see pages {0, last − 1, last}; prefilled positions and layers 0, 1 are dense. */
    static final ForwardMask.Factory WINDOW = promptLengths -> (layer, q, k) -> {
        if (layer < 2) {
            return null;
        }
        int b = (int) q.getShape().get(0);
        int kvh = (int) q.getShape().get(1);
        int t = (int) q.getShape().get(3);
        int pages = (t + 15) / 16;
        boolean[] visible = new boolean[b * kvh * t * pages];
        for (int row = 0; row < b; row++) {
            for (int h = 0; h < kvh; h++) {
                for (int i = 0; i < t; i++) {
                    int last = i / 16;
                    for (int p = 0; p <= last; p++) {
                        visible[((row * kvh + h) * t + i) * pages + p] = i < promptLengths[row] || p == 0 || p >= last - 1;
                    }
                }
            }
        }
        return q.getManager().create(visible, new Shape(b, kvh, t, pages));
    };

    static final ForwardMask.Factory DENSE = promptLengths -> (layer, q, k) -> null;

    static Qwen3Model model() {
        return Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 23, 0.4, 0.1), Device.cpu());
    }

    /** Two groups of G trajectories; behaviour log-probs from the sparse actor. */
    static List<GrpoLearner.Sample> samples(Qwen3Model model, double[] rewards) {
        SplittableRandom r = new SplittableRandom(7);
        List<int[]> prompts = new ArrayList<>();
        List<int[]> outputs = new ArrayList<>();
        for (int i = 0; i < rewards.length; i++) {
            int[] p = new int[40 + r.nextInt(20)];
            int[] o = new int[20 + r.nextInt(10)];
            for (int j = 0; j < p.length; j++) {
                p[j] = r.nextInt(CONFIG.vocabSize());
            }
            for (int j = 0; j < o.length; j++) {
                o[j] = r.nextInt(CONFIG.vocabSize());
            }
            prompts.add(p);
            outputs.add(o);
        }
        List<Scorer.Scores> inf = Scorer.score(model, prompts, outputs, Scorer.Options.LOGPROBS_ONLY, WINDOW);
        List<GrpoLearner.Sample> out = new ArrayList<>();
        for (int i = 0; i < rewards.length; i++) {
            out.add(new GrpoLearner.Sample(prompts.get(i), outputs.get(i), inf.get(i).logprobs(), rewards[i]));
        }
        return out;
    }

    @Test
    void distillationMovesOnlyTheLoraAndBringsTheSparseActorTowardsDense() {
        try (Qwen3Model model = model(); LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 1)) {
            model.attach(lora);
            lora.setEnabled(false);
            List<GrpoLearner.Sample> samples = samples(model, new double[2 * G]); // every group degenerate: KL only
            Map<String, float[]> base = model.hostWeights();
            // The reference for the first report: k3 = r − 1 − log r, r = π_old/π_inf, since B = 0 makes π_φ = π_inf;
            // π_old the dense base's log-probs, scored apart by the plain dense forward
            List<Scorer.Scores> old = Scorer.score(model, samples.stream().map(GrpoLearner.Sample::prompt).toList(),
                    samples.stream().map(GrpoLearner.Sample::output).toList(), Scorer.Options.LOGPROBS_ONLY);
            double want = 0;
            long n = 0;
            for (int i = 0; i < samples.size(); i++) {
                GrpoLearner.Sample s = samples.get(i);
                for (int t = 0; t < s.output().length; t++) {
                    double lr = (double) old.get(i).logprobs()[t] - s.behaviourLogprobs()[t];
                    want += Math.exp(lr) - 1 - lr;
                    n++;
                }
            }
            want /= n;
            List<Double> kl = new ArrayList<>();
            try (DistillSparse d = new DistillSparse(model, lora, WINDOW, G, new LrSchedule(1e-2, 5, 30, 1.0),
                    new DistillSparse.Options(1.0, GrpoObjective.Options.defaults(), 8))) {
                for (int step = 0; step < 30; step++) {
                    DistillSparse.Report r = d.step(samples);
                    assertNull(r.objective(), "no group has a signal");
                    kl.add(r.klK3());
                }
            }
            assertEquals(want, kl.get(0), 1e-5, "first k3 against the log-probs computed apart");
            assertTrue(want > 1e-3, "the window must differ from dense: k3 " + want);
            assertTrue(kl.get(kl.size() - 1) < 0.2 * kl.get(0), "k3 must fall: " + kl);
            assertFalse(lora.isEnabled(), "the switch is back where it was");
            Map<String, float[]> after = model.hostWeights();
            for (String w : base.keySet()) {
                assertArrayEquals(base.get(w), after.get(w), w + " is frozen");
            }
            for (NDArray p : model.parameters().values()) {
                assertFalse(p.hasGradient(), "base tracking restored (off)");
            }
        }
    }

    @Test
    void withADenseActorThePpoPartIsTheGrpoLearnersObjective() {
        double[] rewards = new double[2 * G];
        for (int i = 0; i < G; i++) {
            rewards[i] = i % 3 == 0 ? 1 : 0;   // group 0 has a signal, group 1 is degenerate
        }
        try (Qwen3Model a = model(); Qwen3Model b = model(); LoraAdapter lora = LoraAdapter.create(a, LoraConfig.defaults(), 2)) {
            a.attach(lora);
            lora.setEnabled(false);
            List<GrpoLearner.Sample> samples = samples(a, rewards);
            GrpoLearner.Report want;
            try (GrpoLearner learner = new GrpoLearner(b, G, 5, GrpoObjective.Options.defaults(), new LrSchedule(1e-3, 0, 1, 1.0),
                    AdamW.Options.defaults())) {
                want = learner.step(samples);
            }
            try (GrpoLearner learner = new GrpoLearner(a, G, 5, GrpoObjective.Options.defaults(), new LrSchedule(1e-3, 0, 1, 1.0),
                    AdamW.Options.defaults());
                 DistillSparse d = new DistillSparse(a, lora, DENSE, G, new LrSchedule(1e-3, 0, 1, 1.0),
                         new DistillSparse.Options(0.0, GrpoObjective.Options.defaults(), 3))) {
                Gradients.zero(a.parameters());
                DistillSparse.Report got = d.step(samples);
                assertEquals(want.objective().tokens(), got.objective().tokens());
                assertEquals(want.objective().loss(), got.objective().loss(), 1e-6);
                assertEquals(want.objective().clipFraction(), got.objective().clipFraction(), 1e-9);
                assertEquals(want.objective().tisTruncatedFraction(), got.objective().tisTruncatedFraction(), 1e-9);
                assertEquals(want.objective().meanAbsOldMinusInf(), got.objective().meanAbsOldMinusInf(), 1e-6);
                assertEquals(want.objective().klK3(), got.objective().klK3(), 1e-6);
                assertEquals(got.objective().loss(), got.loss(), 1e-12, "λ = 0: the loss is the PPO part");
                for (Map.Entry<String, NDArray> p : a.parameters().entrySet()) {
                    assertTrue(p.getValue().hasGradient(), p.getKey() + ": the policy learner's tracking is back");
                    float[] g = p.getValue().getGradient().toFloatArray();
                    for (float x : g) {
                        assertEquals(0f, x, p.getKey() + " got a gradient from the LoRA step");
                    }
                }
                assertTrue(got.gradNorm() > 0, "the LoRA got one");
            }
        }
    }

    @Test
    void theFullDivergenceIsTheExactKlOverTheVocabularyAndTheLoraLearnsFromItAlone() {
        double[] rewards = new double[2 * G];
        for (int i = 0; i < G; i++) {
            rewards[i] = i % 2;   // group 0 has a signal: with PPO weight 0 it must still not count
        }
        try (Qwen3Model model = model(); LoraAdapter lora = LoraAdapter.create(model, LoraConfig.defaults(), 1)) {
            model.attach(lora);
            lora.setEnabled(false);
            List<GrpoLearner.Sample> samples = samples(model, rewards);
            List<int[]> prompts = samples.stream().map(GrpoLearner.Sample::prompt).toList();
            List<int[]> outputs = samples.stream().map(GrpoLearner.Sample::output).toList();
            Scorer.Options full = new Scorer.Options(0, true);
            // The reference: Σ_v p(v) log(p(v)/q(v)) from the probe's full distributions, dense p and window q
            // (B = 0, so the LoRA leaves the window actor as it is before the first update).
            List<Scorer.Scores> p = Scorer.score(model, prompts, outputs, full);
            List<Scorer.Scores> q = Scorer.score(model, prompts, outputs, full, WINDOW);
            double want = 0;
            long n = 0;
            for (int i = 0; i < p.size(); i++) {
                for (int t = 0; t < p.get(i).probs().length; t++) {
                    for (int v = 0; v < CONFIG.vocabSize(); v++) {
                        double pv = p.get(i).probs()[t][v];
                        double qv = q.get(i).probs()[t][v];
                        want += pv > 0 ? pv * (Math.log(pv) - Math.log(qv)) : 0;
                    }
                    n++;
                }
            }
            want /= n;
            List<Double> kl = new ArrayList<>();
            try (DistillSparse d = new DistillSparse(model, lora, WINDOW, G, new LrSchedule(1e-2, 5, 30, 1.0),
                    new DistillSparse.Options(1.0, 0.0, DistillSparse.Divergence.FULL, GrpoObjective.Options.defaults(), 8))) {
                for (int step = 0; step < 30; step++) {
                    DistillSparse.Report r = d.step(samples);
                    kl.add(r.klFull());
                    assertEquals(r.klFull(), r.loss(), 1e-9, "PPO weight 0: the loss is the penalty alone");
                    if (step == 0) {
                        assertTrue(r.objective() != null && r.objective().tokens() > 0, "the PPO statistics are still reported");
                    }
                }
            }
            assertEquals(want, kl.get(0), 1e-5 * Math.max(1, want), "first full KL against the probe's distributions");
            assertTrue(want > 1e-3, "the window must differ from dense: KL " + want);
            assertTrue(kl.get(kl.size() - 1) < 0.2 * kl.get(0), "the full KL must fall: " + kl);
        }
    }

    @Test
    void divergenceNamesParse() {
        assertEquals(DistillSparse.Divergence.K3, DistillSparse.Divergence.parse("k3"));
        assertEquals(DistillSparse.Divergence.FULL, DistillSparse.Divergence.parse("full"));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> DistillSparse.Divergence.parse("kl"));
    }
}
