package io.tailguard.learner;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GrpoLearnerTest {
    static final ModelConfig CONFIG = new ModelConfig(11, 32, 48, 2, 4, 2, 8, 1e-6, 10_000.0, 64, true, -1);
    static final int[] PROMPT = {1, 5, 3};
    static final int GOOD = 7;

    /** Log-probs of the next token after the prompt, in double. */
    static double[] nextLogprobs(Qwen3Model model) {
        try (NDManager m = NDManager.newBaseManager()) {
            long[] ids = new long[PROMPT.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = PROMPT[i];
            }
            float[] logits = model.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
            int v = CONFIG.vocabSize();
            int off = (PROMPT.length - 1) * v;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[off + j]);
            }
            double z = 0;
            for (int j = 0; j < v; j++) {
                z += Math.exp(logits[off + j] - max);
            }
            double[] lp = new double[v];
            for (int j = 0; j < v; j++) {
                lp[j] = logits[off + j] - max - Math.log(z);
            }
            return lp;
        }
    }

    @Test
    void policyGradientRaisesTheProbabilityOfTheRewardedToken() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 1, 0.1, 0), Device.cpu())) {
            double before = Math.exp(nextLogprobs(model)[GOOD]);
            SplittableRandom rnd = new SplittableRandom(3);
            int dropped = 0;
            try (GrpoLearner learner = new GrpoLearner(model, 8, 8, GrpoObjective.Options.defaults(),
                    new LrSchedule(1e-2, 0, 40, 1.0), AdamW.Options.defaults())) {
                for (int step = 0; step < 40; step++) {
                    double[] lp = nextLogprobs(model);
                    List<GrpoLearner.Sample> samples = new ArrayList<>();
                    for (int g = 0; g < 16; g++) {
                        double u = rnd.nextDouble();
                        int tok = 0;
                        double acc = 0;
                        for (int j = 0; j < lp.length; j++) {
                            acc += Math.exp(lp[j]);
                            if (u < acc) {
                                tok = j;
                                break;
                            }
                        }
                        float l = (float) lp[tok];
                        samples.add(new GrpoLearner.Sample(PROMPT, new int[] {tok}, new float[] {l}, tok == GOOD ? 1 : 0));
                    }
                    GrpoLearner.Report r = learner.step(samples);
                    dropped += r.groupsDropped();
                    if (r.objective() != null) {
                        assertEquals(0.0, r.objective().tisTruncatedFraction());
                        assertEquals(0.0, r.objective().klK1(), 1e-5); // on-policy: behaviour = policy
                    }
                }
                assertEquals(dropped, learner.droppedGroups());
            }
            double after = Math.exp(nextLogprobs(model)[GOOD]);
            assertTrue(after > 0.5 && after > before + 0.3, "p(good) " + before + " -> " + after);
        }
    }

    @Test
    void piOldIsThePolicyTheUpdateStartsFromSoTheImportanceWeightIsItsRatioToTheSampler() {
        // one token per sample after PROMPT; π_old must be the model's own probability (computed here
        // by the plain forward and a log-softmax by hand), the sampler's log-prob shifted by a known amount
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 1, 0.1, 0), Device.cpu());
             GrpoLearner learner = new GrpoLearner(model, 2, 8, GrpoObjective.Options.defaults(),
                     new LrSchedule(1e-9, 0, 1, 1.0), AdamW.Options.defaults())) {
            double[] lp = nextLogprobs(model);
            // sample 0 (token GOOD): the sampler put log π_old − 2 on it, ratio e² ≈ 7.4 > C = 3, truncated;
            // sample 1 (token 2): log π_old + 0.5, ratio e^−0.5, kept
            float inf0 = (float) (lp[GOOD] - 2);
            float inf1 = (float) (lp[2] + 0.5);
            GrpoLearner.Report r = learner.step(List.of(new GrpoLearner.Sample(PROMPT, new int[] {GOOD}, new float[] {inf0}, 1),
                    new GrpoLearner.Sample(PROMPT, new int[] {2}, new float[] {inf1}, 0)));
            assertEquals(0.5, r.objective().tisTruncatedFraction(), "one of the two tokens is over C");
            double want = (Math.abs(Math.exp(lp[GOOD]) - Math.exp(inf0)) + Math.abs(Math.exp(lp[2]) - Math.exp(inf1))) / 2;
            assertEquals(want, r.objective().meanAbsOldMinusInf(), 1e-5, "|π_old − π_inf| with π_old the policy's own");
            assertEquals(0.0, r.objective().clipFraction(), "ρ = π_θ/π_old is 1 at the start of the update");
            // the loss: −(1/2) Σ min(ratio, C)·Â, Â = ±1 (two rewards 1 and 0, population std 0.5)
            double a = 1 / (0.5 + 1e-6);
            double loss = -(Math.min(Math.exp(2), 3) * 0.5 * a - Math.exp(-0.5) * 0.5 * a) / 2;
            assertEquals(loss, r.objective().loss(), 1e-4);
        }
    }

    @Test
    void aNewPeakLearningRateAppliesFromTheNextStepWithTheSameShape() {
        try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 1, 0.1, 0), Device.cpu());
             GrpoLearner learner = new GrpoLearner(model, 2, 8, GrpoObjective.Options.defaults(),
                     new LrSchedule(1e-2, 4, 10, 0.5), AdamW.Options.defaults())) {
            // equal rewards: the group is dropped, the step still counts and reports its rate
            List<GrpoLearner.Sample> flat = List.of(
                    new GrpoLearner.Sample(PROMPT, new int[] {GOOD}, new float[] {-1f}, 1),
                    new GrpoLearner.Sample(PROMPT, new int[] {GOOD}, new float[] {-1f}, 1));
            assertEquals(2.5e-3, learner.step(flat).lr(), 1e-15); // warm-up 1/4 of 1e-2
            assertEquals(5e-3, learner.step(flat).lr(), 1e-15);
            learner.setPeakLr(4e-3);
            assertEquals(3e-3, learner.step(flat).lr(), 1e-15); // warm-up 3/4 of the new peak
            assertEquals(4e-3, learner.step(flat).lr(), 1e-15);
            // cosine to 0.5 x peak over steps 5..10: 4e-3 (0.5 + 0.25 (1 + cos(pi/6))), by hand
            assertEquals(0.003866025403784439, learner.step(flat).lr(), 1e-15);
        }
    }

    @Test
    void groupsSharingTheirPromptGetTheGradientsOfTheirWholeSequences() {
        // two groups of three samples: outputs of 1 to 6 tokens, rewards that differ within a group
        SplittableRandom r = new SplittableRandom(8);
        int[][] prompts = {{1, 5, 3, 9, 2, 4, 6}, {8, 2}};
        int[] lengths = {4, 1, 6, 3, 5, 2};
        double[] rewards = {1, 0, 0.5, 0, 1, 0.25};
        List<GrpoLearner.Sample> samples = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int[] out = new int[lengths[i]];
            float[] lp = new float[lengths[i]];
            for (int j = 0; j < out.length; j++) {
                out[j] = r.nextInt(CONFIG.vocabSize());
                lp[j] = (float) (-1.5 - r.nextDouble());
            }
            samples.add(new GrpoLearner.Sample(prompts[i / 3], out, lp, rewards[i]));
        }
        String[] names = {"model.layers.0.self_attn.qkv_proj.weight", "model.layers.1.self_attn.o_proj.weight",
                "model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight"};
        float[][][] grads = new float[2][names.length][];
        // micro-batch 6: each prompt computed once for its group; micro-batch 1: every sample a whole sequence
        int[] microBatches = {6, 1};
        for (int run = 0; run < 2; run++) {
            try (Qwen3Model model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.3, 0.1), Device.cpu());
                 GrpoLearner learner = new GrpoLearner(model, 3, microBatches[run], GrpoObjective.Options.defaults(),
                         new LrSchedule(1e-9, 0, 1, 1.0), AdamW.Options.defaults())) {
                assertEquals(run == 0, GrpoLearner.sharesPrompts(samples.subList(0, microBatches[run])));
                learner.step(samples);
                for (int k = 0; k < names.length; k++) {
                    grads[run][k] = model.parameters().get(names[k]).getGradient().toFloatArray();
                }
            }
        }
        for (int k = 0; k < names.length; k++) {
            double largest = 0;
            for (float g : grads[1][k]) {
                largest = Math.max(largest, Math.abs(g));
            }
            assertTrue(largest > 1e-5, names[k] + ": gradients are not all ~0");
            for (int i = 0; i < grads[0][k].length; i++) {
                assertEquals(grads[1][k][i], grads[0][k][i], 1e-5 + 1e-4 * largest, names[k] + " [" + i + "]");
            }
        }
    }
}
