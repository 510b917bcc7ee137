package io.tailguard.compression;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import io.tailguard.model.GradientCollectors;
import io.tailguard.model.ModelConfig;
import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Scalars;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The Qwen3 forward of docs/algorithms.md, "The policy model (Qwen3)" written once more, with every linear layer split out per
 * Hugging Face module and tapped: its input x_t is copied to the host, and a zero "probe" is added
 * to its output, y = x Wᵀ + 0, so that after the backward pass the probe's gradient is exactly
 * g_t = ∂ℓ/∂y_t. The model module stays untouched (it fuses q/k/v and gate/up and exposes no
 * intermediates); {@code TappedForwardTest} checks this replica against {@link Qwen3Model#forward}.
 *
 * <p>The loss of a sequence is Σ_t CE(logits_t, label_t) with labels sampled from the model's own
 * softmax (the Fisher of the full-model KL), so g_t includes what later positions contribute
 * through attention, and Σ_t g_t x_tᵀ is the sequence's true weight gradient (Sketch B's G_s).
 */
final class TappedForward {
    /** One linear layer's taps for one sequence: x [T, n] and g [T, m], row-major. */
    record Tap(String name, int tokens, int in, int out, float[] x, float[] g) {}

    /** Receives the taps of each sequence. */
    interface Sink {
        void accept(Tap tap);
    }

    static final String[] ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj"};
    static final String[] MLP = {"gate_proj", "up_proj", "down_proj"};

    private final Qwen3Model model;
    private final ModelConfig c;
    private final Map<String, NDArray> w;

    TappedForward(Qwen3Model model) {
        this.model = model;
        this.c = model.config();
        this.w = model.weights();
    }

    /** The Hugging Face names of every linear layer, in model order. */
    static List<String> linearNames(ModelConfig c) {
        List<String> names = new ArrayList<>();
        for (int l = 0; l < c.numLayers(); l++) {
            for (String a : ATTENTION) {
                names.add("model.layers." + l + ".self_attn." + a + ".weight");
            }
            for (String m : MLP) {
                names.add("model.layers." + l + ".mlp." + m + ".weight");
            }
        }
        return names;
    }

    /**
     * Runs each sequence through the tapped forward; with {@code gradients}, samples labels from
     * the model's softmax (a stream split per sequence from {@code seed}, so every pass over the
     * same data draws the same labels) and back-propagates their cross-entropy.
     */
    void run(List<int[]> sequences, boolean gradients, long seed, Sink sink) {
        SplittableRandom root = new SplittableRandom(seed);
        for (int[] seq : sequences) {
            SplittableRandom rng = root.split();
            try (NDManager m = model.manager().newSubManager()) {
                Map<String, NDArray> probes = new LinkedHashMap<>();
                Map<String, float[]> inputs = new LinkedHashMap<>();
                if (!gradients) {
                    logits(m, seq, null, inputs);
                    for (Map.Entry<String, float[]> e : inputs.entrySet()) {
                        long[] shape = w.get(e.getKey()).getShape().getShape();
                        sink.accept(new Tap(e.getKey(), seq.length, (int) shape[1], (int) shape[0], e.getValue(), null));
                    }
                    continue;
                }
                try (GradientCollector gc = GradientCollectors.exclusive()) {
                    NDArray logits = logits(m, seq, probes, inputs);          // [T, V]
                    NDArray logp = logits.logSoftmax(-1);
                    float[] p = logp.exp().toFloatArray();
                    long[] labels = new long[seq.length];
                    int v = c.vocabSize();
                    for (int t = 0; t < seq.length; t++) {
                        labels[t] = sample(p, t * v, v, rng);
                    }
                    NDArray picked = logp.gather(m.create(labels, new Shape(seq.length, 1)), 1);
                    gc.backward(picked.sum().neg());
                }
                for (Map.Entry<String, NDArray> e : probes.entrySet()) {
                    long[] shape = w.get(e.getKey()).getShape().getShape();
                    sink.accept(new Tap(e.getKey(), seq.length, (int) shape[1], (int) shape[0],
                            inputs.get(e.getKey()), e.getValue().getGradient().toFloatArray()));
                }
            }
        }
    }

    /** Full causal pass of one sequence, logits [T, V]; fills inputs, and probes unless null. */
    NDArray logits(NDManager m, int[] seq, Map<String, NDArray> probes, Map<String, float[]> inputs) {
        int t = seq.length;
        long[] ids = new long[t];
        for (int i = 0; i < t; i++) {
            ids[i] = seq[i];
        }
        NDArray idArr = m.create(ids, new Shape(1, t));
        NDArray embedding = w.get("model.embed_tokens.weight");
        NDArray x = idArr.getNDArrayInternal().embedding(idArr, embedding, SparseFormat.DENSE).singletonOrThrow(); // [1, T, H]
        NDArray[] cosSin = rope(m, t);
        NDArray mask = causalMask(m, t);
        int hd = c.headDim();
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            NDArray n1 = rms(x, w.get(p + "input_layernorm.weight"));
            NDArray q = linear(m, p + "self_attn.q_proj.weight", n1, probes, inputs).reshape(1, t, c.numHeads(), hd);
            NDArray k = linear(m, p + "self_attn.k_proj.weight", n1, probes, inputs).reshape(1, t, c.numKvHeads(), hd);
            NDArray v = linear(m, p + "self_attn.v_proj.weight", n1, probes, inputs).reshape(1, t, c.numKvHeads(), hd);
            q = Scalars.times(rotate(rms(q, w.get(p + "self_attn.q_norm.weight")), cosSin), 1 / Math.sqrt(hd));
            k = rotate(rms(k, w.get(p + "self_attn.k_norm.weight")), cosSin);
            // [1, T, h, D] -> [1, h, T, D]; query head i reads KV head i / r (repeat each KV head r times).
            NDArray qh = q.transpose(0, 2, 1, 3);
            NDArray kh = k.transpose(0, 2, 1, 3).repeat(1, c.groupSize());
            NDArray vh = v.transpose(0, 2, 1, 3).repeat(1, c.groupSize());
            NDArray probs = qh.matMul(kh.transpose(0, 1, 3, 2)).add(mask).softmax(-1);     // [1, h, T, T]
            NDArray o = probs.matMul(vh).transpose(0, 2, 1, 3).reshape(1, t, (long) c.numHeads() * hd);
            NDArray h = x.add(linear(m, p + "self_attn.o_proj.weight", o, probes, inputs));
            NDArray n2 = rms(h, w.get(p + "post_attention_layernorm.weight"));
            NDArray gate = linear(m, p + "mlp.gate_proj.weight", n2, probes, inputs);
            NDArray up = linear(m, p + "mlp.up_proj.weight", n2, probes, inputs);
            NDArray act = gate.mul(Activation.sigmoid(gate)).mul(up);
            x = h.add(linear(m, p + "mlp.down_proj.weight", act, probes, inputs));
        }
        NDArray head = c.tieWordEmbeddings() ? embedding : w.get("lm_head.weight");
        NDArray xf = rms(x, w.get("model.norm.weight"));
        return xf.getNDArrayInternal().linear(xf, head, null).singletonOrThrow().reshape(t, c.vocabSize());
    }

    /** y = x Wᵀ (+ a zero probe that will hold ∂ℓ/∂y); x's values are copied to the host (when inputs is not null). */
    private NDArray linear(NDManager m, String name, NDArray x, Map<String, NDArray> probes, Map<String, float[]> inputs) {
        NDArray weight = w.get(name);
        if (inputs != null) {
            inputs.put(name, x.toFloatArray());
        }
        NDArray y = x.getNDArrayInternal().linear(x, weight, null).singletonOrThrow();
        if (probes != null) {
            NDArray probe = m.zeros(y.getShape(), DataType.FLOAT32);
            probe.setRequiresGradient(true);
            probes.put(name, probe);
            y = y.add(probe);
        }
        return y;
    }

    private NDArray rms(NDArray x, NDArray weight) {
        NDArray meanSquare = x.square().mean(new int[] {-1}, true);
        return x.div(meanSquare.add((float) c.rmsNormEps()).sqrt()).mul(weight);
    }

    /** Hugging Face "rotate half" RoPE tables (plain or YaRN) for positions [0, T), [T, 1, D] each, in double first. */
    private NDArray[] rope(NDManager m, int t) {
        int d = c.headDim();
        int half = d / 2;
        double[] inverseFrequencies = c.ropeInverseFrequencies();
        double scaling = c.ropeAttentionScaling();
        float[] cos = new float[t * d];
        float[] sin = new float[t * d];
        for (int p = 0; p < t; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * inverseFrequencies[i];
                cos[p * d + i] = cos[p * d + i + half] = (float) (Math.cos(angle) * scaling);
                sin[p * d + i] = sin[p * d + i + half] = (float) (Math.sin(angle) * scaling);
            }
        }
        return new NDArray[] {m.create(cos, new Shape(t, 1, d)), m.create(sin, new Shape(t, 1, d))};
    }

    private NDArray rotate(NDArray x, NDArray[] cosSin) {
        int half = c.headDim() / 2;
        NDArray x1 = x.get(new NDIndex("..., :{}", half));
        NDArray x2 = x.get(new NDIndex("..., {}:", half));
        NDArray rotated = x2.neg().concat(x1, -1);
        return x.mul(cosSin[0]).add(rotated.mul(cosSin[1]));
    }

    private static NDArray causalMask(NDManager m, int t) {
        float[] mask = new float[t * t];
        for (int i = 0; i < t; i++) {
            for (int j = i + 1; j < t; j++) {
                mask[i * t + j] = -1e30f;
            }
        }
        return m.create(mask, new Shape(t, t));
    }

    private static int sample(float[] p, int offset, int v, SplittableRandom rng) {
        double u = rng.nextDouble();
        double acc = 0;
        for (int i = 0; i < v; i++) {
            acc += p[offset + i];
            if (u < acc) {
                return i;
            }
        }
        return v - 1; // rounding left u above the float sum
    }
}
