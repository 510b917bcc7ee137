package io.tailguard.rollout.worker;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.tailguard.model.GradMode;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Projection;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.RandomInit;
import io.tailguard.model.lora.LoraAdapter;
import io.tailguard.model.lora.LoraConfig;
import io.tailguard.model.lora.LoraFiles;
import io.tailguard.model.tokenizer.CharTokenizer;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.TokenDistributions;
import io.tailguard.rollout.sparse.BlockTopKAttention;
import io.tailguard.rollout.sparse.Schedule;
import io.tailguard.rollout.sparse.TailStats;
import io.tailguard.rollout.tasks.Prompt;
import io.tailguard.rollout.tasks.Task;
import io.tailguard.rollout.tasks.Tasks;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The shadow replay of a lease whose sparse actor samples with a DistillSparse LoRA replays with
 * that LoRA: its α equals α between the dense policy (no LoRA) and a model built here from the
 * merged weights W + (alpha/r)·B·A (computed with plain loops), replayed under the shadow schedule;
 * and it differs from the α the replay would measure without the adapter.
 */
class ShadowReplayLoraTest {
    private static final CharTokenizer TOK = CharTokenizer.standard();
    private static final Task TASK = Tasks.builtin("kv-recall", 128);
    /** Below kv-recall's 128-token contexts: the sparse layers (2 and 3) read 48 of the keys. */
    private static final Schedule SHADOW = Schedule.fixed(48);
    private static final int BIN_WIDTH = 32;

    @Test
    void theShadowReplayIsTheAdaptedActorsAlpha() {
        ModelConfig c = ModelConfig.preset("tiny", TOK.vocabSize(), TOK.eosId());
        LoraConfig lc = new LoraConfig(4, 8, LoraConfig.ALL_LINEAR);
        List<Prompt> prompts = List.of(TASK.prompt(3, 0), TASK.prompt(3, 1));
        try (GradMode.Scope noGrad = GradMode.off();
             Qwen3Model model = Qwen3Model.create(c, RandomInit.weights(c, 5, 0.3, 0.1), Device.cpu())) {
            Map<String, float[]> base = model.hostWeights();
            Map<String, float[]> merged = new HashMap<>(base);
            RolloutEngine.Result r;
            try (LoraAdapter lora = LoraAdapter.create(model, lc, 9)) {
                randomB(lora, 10);
                model.attach(lora);
                lora.setEnabled(false);
                for (int l = 0; l < c.numLayers(); l++) {
                    for (String module : LoraConfig.ALL_LINEAR) {
                        String w = "model.layers." + l + "." + Projection.of(module).block() + "." + module + ".weight";
                        NDArray a = lora.parameters().get(LoraFiles.tensorName(l, module, 'A'));
                        NDArray b = lora.parameters().get(LoraFiles.tensorName(l, module, 'B'));
                        merged.put(w, plus(base.get(w), a.toFloatArray(), b.toFloatArray(), (int) b.getShape().get(0),
                                (int) a.getShape().get(1), lc.rank(), lc.alpha() / lc.rank()));
                    }
                }
                RolloutEngine engine = new RolloutEngine(model, TOK, TASK, new RolloutEngine.Options(3, 1.0, 8, BIN_WIDTH, 1.0, 1.0), lora);
                r = engine.run(prompts, new long[] {0, 1}, Schedule.dense(), SHADOW, 21);
            }
            assertEquals(null, model.adapter(), "the adapter closed");
            List<int[]> ps = new ArrayList<>();
            List<int[]> outs = new ArrayList<>();
            for (RolloutEngine.Trajectory t : r.trajectories()) {
                if (t.outputIds().length > 0) {
                    ps.add(t.promptIds());
                    outs.add(t.outputIds());
                }
            }
            assertTrue(!outs.isEmpty());
            // a shadow fraction of 1 replays every trajectory
            TailStats adapted;
            TailStats plain;
            try (Qwen3Model mergedModel = Qwen3Model.create(c, merged, Device.cpu())) {
                adapted = alpha(model, mergedModel, ps, outs);
            }
            plain = alpha(model, model, ps, outs);

            TailStats shadow = r.shadow();
            assertEquals(adapted.totalCount(), shadow.totalCount());
            double maxGap = 0;
            for (int bin = 0; bin < adapted.binCount(); bin++) {
                assertEquals(adapted.count(bin), shadow.count(bin), "tokens of bin " + bin);
                if (adapted.count(bin) == 0) {
                    continue;
                }
                assertEquals(adapted.mean(bin), shadow.mean(bin), 1e-4, "mean α of bin " + bin);
                assertEquals(adapted.quantile(bin, 0.0), shadow.quantile(bin, 0.0), 1e-4, "min α of bin " + bin);
                assertEquals(adapted.p5(bin), shadow.p5(bin), 1e-4, "p5 α of bin " + bin);
                maxGap = Math.max(maxGap, Math.abs(plain.mean(bin) - shadow.mean(bin)));
            }
            // the adapter changes the shadow α: without it the replay would measure another actor
            assertTrue(maxGap > 0.01, "mean α with and without the adapter differ by " + maxGap);
            assertFalse(Double.isNaN(maxGap));
        }
    }

    /**
     * α of every token between the dense policy's distribution (a plain forward of prompt + output,
     * softmax here) and {@code actor}'s under the shadow schedule, by position, in trajectory order.
     */
    private static TailStats alpha(Qwen3Model policy, Qwen3Model actor, List<int[]> prompts, List<int[]> outputs) {
        List<TokenDistributions> q = new Generator(actor, BlockTopKAttention.forSchedule(SHADOW)).replay(prompts, outputs, 0);
        TailStats t = new TailStats(BIN_WIDTH);
        try (NDManager m = NDManager.newBaseManager()) {
            for (int i = 0; i < prompts.size(); i++) {
                int[] p = prompts.get(i);
                int[] o = outputs.get(i);
                long[] ids = new long[p.length + o.length];
                for (int k = 0; k < ids.length; k++) {
                    ids[k] = k < p.length ? p[k] : o[k - p.length];
                }
                int vocab = policy.config().vocabSize();
                float[] logits = policy.forward(m.create(ids, new Shape(1, ids.length))).toFloatArray();
                for (int s = 0; s < o.length; s++) {
                    // the distribution of output token s comes from position p.length + s − 1
                    int at = (p.length + s - 1) * vocab;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int v = 0; v < vocab; v++) {
                        max = Math.max(max, logits[at + v]);
                    }
                    double z = 0;
                    for (int v = 0; v < vocab; v++) {
                        z += Math.exp(logits[at + v] - max);
                    }
                    double a = 0;
                    for (int v = 0; v < vocab; v++) {
                        a += Math.min(Math.exp(logits[at + v] - max) / z, Math.exp(q.get(i).logprobs()[s][v]));
                    }
                    t.add(p.length + s, a);
                }
            }
        }
        return t;
    }

    /** W + s·B·A by loops: W [out, in], A [r, in], B [out, r]. */
    private static float[] plus(float[] w, float[] a, float[] b, int out, int in, int r, double s) {
        float[] e = new float[out * in];
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) {
                double d = 0;
                for (int k = 0; k < r; k++) {
                    d += (double) b[i * r + k] * a[k * in + j];
                }
                e[i * in + j] = (float) (w[i * in + j] + s * d);
            }
        }
        return e;
    }

    /** A trained-looking adapter: B random (a fresh one has B = 0 and changes nothing). */
    private static void randomB(LoraAdapter lora, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            if (e.getKey().endsWith("lora_B.weight")) {
                float[] v = new float[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (r.nextGaussian() * 0.3);
                }
                e.getValue().set(v);
            }
        }
    }
}
