package io.tailguard.rollout.sparse;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MismatchProbeTest {
    static final ModelConfig CONFIG = new ModelConfig(29, 32, 48, 3, 4, 2, 8, 1e-6, 10_000.0, 1024, true, -1);
    static Qwen3Model model;
    static List<int[]> prompts = new ArrayList<>();

    @BeforeAll
    static void build() {
        model = Qwen3Model.create(CONFIG, RandomInit.weights(CONFIG, 4, 0.5, 0.1), Device.cpu());
        Random r = new Random(1);
        for (int len : new int[] {300, 260}) {
            int[] p = new int[len];
            for (int i = 0; i < len; i++) {
                p[i] = r.nextInt(CONFIG.vocabSize());
            }
            prompts.add(p);
        }
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static List<Generated> generate(BlockTopKAttention kernel, int capture) {
        Generator g = kernel == null ? new Generator(model) : new Generator(model, kernel);
        return g.generate(new GenerationRequest(prompts, 24, new SamplingParams(1.0, 1.0, 0, 5), Set.of(), 0, capture)).sequences();
    }

    /** Dense next-token probabilities after position t of prompt + output, from a full forward. */
    static double[] denseProbs(Generated g, int t) {
        int n = g.promptIds().length + t;
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i < g.promptIds().length ? g.promptIds()[i] : g.outputIds()[i - g.promptIds().length];
        }
        try (NDManager m = NDManager.newBaseManager()) {
            float[] logits = model.forward(m.create(ids, new Shape(1, n))).toFloatArray();
            int v = CONFIG.vocabSize();
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[(n - 1) * v + j]);
            }
            double z = 0;
            double[] p = new double[v];
            for (int j = 0; j < v; j++) {
                p[j] = Math.exp(logits[(n - 1) * v + j] - max);
                z += p[j];
            }
            for (int j = 0; j < v; j++) {
                p[j] /= z;
            }
            return p;
        }
    }

    @Test
    void denseRolloutsHaveAlphaOneEverywhere() {
        List<Generated> gs = generate(null, 0);
        for (double[] a : MismatchProbe.alphas(model, gs)) {
            for (double x : a) {
                assertEquals(1.0, x, 1e-5);
            }
        }
    }

    @Test
    void sparseAlphaIsTheOverlapOfSparseAndDenseDistributions() {
        List<Generated> gs = generate(BlockTopKAttention.fixedBudget(64), 0);
        List<double[]> alphas = MismatchProbe.alphas(model, gs);
        double min = 1;
        for (int i = 0; i < gs.size(); i++) {
            Generated g = gs.get(i);
            for (int t = 0; t < g.outputIds().length; t += 5) {
                double[] p = denseProbs(g, t);
                double overlap = 0;
                double tv = 0;
                for (int v = 0; v < p.length; v++) {
                    double q = Math.exp(g.distributions().logprobs()[t][v]);
                    overlap += Math.min(p[v], q);
                    tv += Math.abs(p[v] - q) / 2;
                }
                assertEquals(overlap, alphas.get(i)[t], 1e-4);
                assertEquals(1 - tv, alphas.get(i)[t], 1e-4);
            }
            for (double a : alphas.get(i)) {
                min = Math.min(min, a);
            }
        }
        assertTrue(min < 0.999, "a budget of 64 of ~300 tokens should change some distribution, min alpha " + min);
    }

    @Test
    void topKAlphaIsALowerBoundOfTheExactOne() {
        List<Generated> full = generate(BlockTopKAttention.fixedBudget(64), 0);
        List<Generated> top = generate(BlockTopKAttention.fixedBudget(64), 5);
        List<double[]> exact = MismatchProbe.alphas(model, full);
        List<double[]> bound = MismatchProbe.alphas(model, top);
        for (int i = 0; i < full.size(); i++) {
            for (int t = 0; t < exact.get(i).length; t++) {
                assertTrue(bound.get(i)[t] <= exact.get(i)[t] + 1e-6);
            }
        }
    }

    @Test
    void probeFillsTheTailsAtEachTokensPosition() {
        List<Generated> gs = generate(BlockTopKAttention.fixedBudget(64), 0);
        TailStats tails = new TailStats(128);
        assertEquals(2, new MismatchProbe(model, 1.0, 0).probe(gs, tails));
        assertEquals(48, tails.totalCount());
        assertEquals(48, tails.count(2)); // positions 260..283 and 300..323 all lie in bin 2, [256, 384)
        assertEquals(0, new MismatchProbe(model, 0.0, 0).probe(gs, new TailStats(128)));
    }
}
