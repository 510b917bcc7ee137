package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;

import java.util.ArrayList;
import java.util.List;

/**
 * A training forward whose attention runs in the native kernels ({@link NativeTraining}) and whose
 * backward the tape completes. libtorch's autograd cannot take a kernel it does not know, so the
 * graph is cut where the kernels sit: each layer's input becomes a leaf, and each attention's output
 * is a leaf computed by the native forward. {@link #backward} runs autograd from the loss down to
 * the nearest cuts, then walks the tape back: at an attention, the native backward turns the
 * output's gradient into the gradient of the fused q/k/v rows, and autograd carries it on from
 * there; at a layer's input, autograd carries the leaf's gradient into the layer below. Parameters
 * get the same gradients as from one autograd pass over the libtorch attention, without the
 * T × T probabilities that pass keeps for every layer and head.
 *
 * <p>A layer whose products are plain runs whole on the tape instead ({@link TapedLayer}): outside
 * autograd, with its backward written out; the walk hands each such layer's input gradient to the
 * layer below, and carries the bottom one's into the graph under it.
 *
 * <p>Open for one forward and backward, on the thread that runs them, inside a GradientCollector:
 * the model's full passes ({@link Qwen3Model#forward}, {@link Qwen3Model#forwardShared}) consult the
 * thread's open tape. Without the library, on a GPU, or with {@code -Dtailguard.train.kernel=torch}
 * the tape records nothing and {@link #backward} is the collector's own.
 */
public final class TrainingTape implements AutoCloseable {
    private static final ThreadLocal<TrainingTape> CURRENT = new ThreadLocal<>();

    private final NDManager manager;
    private final boolean active;
    private final TrainingTape outer;
    private final List<Object> entries = new ArrayList<>();
    /** The newest prompt attention of each layer, for the continuation rows that attend after it. */
    private final java.util.Map<Integer, Node> prefixes = new java.util.HashMap<>();
    /** Each layer entry by its output, for the layer above to hand its input's gradient down. */
    private final java.util.Map<NDArray, TapedLayer> outputs = new java.util.IdentityHashMap<>();

    private TrainingTape(NDManager parent, boolean active) {
        this.manager = parent.newSubManager();
        this.active = active;
        this.outer = CURRENT.get();
        CURRENT.set(this);
    }

    /** A tape for this thread's next training forward; its tensors live in a sub-manager of {@code parent}. */
    public static TrainingTape open(NDManager parent) {
        return new TrainingTape(parent, NativeTraining.preferred());
    }

    /** The thread's open tape while it records, else null. */
    static TrainingTape recording() {
        TrainingTape t = CURRENT.get();
        return t != null && t.active ? t : null;
    }

    /** Whether this tape puts attention in the native kernels (else it is the collector's backward alone). */
    public boolean active() {
        return active;
    }

    /** One native attention: its fused q/k/v rows, output and log-sum-exp. */
    static final class Node {
        NDArray qkv;       // [B, T, NH, D]; on its own, carries the graph below
        NDArray out;       // [B, T, heads·D]; on its own, a leaf
        NDArray lse;       // [B, heads, T]
        NDArray dqkv;      // gradient of qkv, built during backward
        Node prefix;
        int batch;
        int t;
        int heads;
        int kvHeads;
        int headDim;
    }

    /**
     * A step of the walk back that is neither a cut nor an attention: the vocabulary projection and
     * the embedding lookup ({@link VocabularyProjection}). Walked in reverse order of recording, like
     * every entry.
     */
    interface Step {
        void backward(TrainingTape tape);
    }

    /** Records a step; its tensors may live in {@link #manager()}. */
    void record(Step step) {
        entries.add(step);
    }

    /** The manager of the tensors the tape keeps until it closes. */
    NDManager manager() {
        return manager;
    }

    /** A cut between layers: the leaf the layer above reads, and the tensor below it was taken from. */
    private record Cut(NDArray below, NDArray leaf) {}

    /** A layer's input as a leaf of its own (see the class comment); x must be float32 on the CPU. */
    NDArray cut(NDArray x) {
        NDArray leaf = x.stopGradient();
        leaf.setRequiresGradient(true);
        x.attach(manager);
        leaf.attach(manager);
        entries.add(new Cut(x, leaf));
        return leaf;
    }

    /**
     * Whether {@code layer} runs whole on this tape ({@link TapedLayer}): its products plain (no
     * packed weights, no active adapter) and every weight a contiguous float32 tensor on the CPU.
     */
    boolean runsWhole(DecoderLayer layer) {
        Attention a = layer.attention();
        Mlp m = layer.mlp();
        return active && a.plain() && m.plain() && NativeTraining.servable(layer.inputNorm().weight(),
                layer.postAttentionNorm().weight(), a.qkvProj(), a.oProj(), a.qNorm().weight(), a.kNorm().weight(),
                a.rotary().cosTable(), m.gateUp(), m.down());
    }

    /**
     * Layer {@code layer} on x [B, T, H] ({@link TapedLayer}; after the layer's prompt on this tape when
     * {@code overPrefix}). Returns its output [B, T, H], a leaf whose gradient the walk takes.
     */
    NDArray layer(DecoderLayer layer, NDArray x, boolean overPrefix) {
        TapedLayer below = outputs.get(x);
        TapedLayer l = new TapedLayer(this, layer, x, below, overPrefix);
        outputs.put(l.out(), l);
        entries.add(l);
        return l.out();
    }

    /** Layers that ran whole on this tape so far (a test's check that they did). */
    int wholeLayers() {
        return outputs.size();
    }

    /** Positions of layer {@code layer}'s prompt (the prefix continuation rows attend after). */
    int prefixLength(int layer) {
        Node p = prefixes.get(layer);
        if (p == null) {
            throw new IllegalStateException("layer " + layer + ": continuation rows without a prompt before them");
        }
        return p.t;
    }

    /** Whether the kernels can take this layer's input (float32 on the CPU). */
    static boolean serves(NDArray x) {
        return !x.getDevice().isGpu() && x.getDataType() == DataType.FLOAT32;
    }

    /**
     * Attention of fused rows qkv [B, T, heads + 2 kvh, D] (from the graph; q pre-scaled), causal,
     * after the prefix of layer {@code layer}'s last {@link #attentionPrefix} when {@code overPrefix}.
     * Returns the output [B, T, heads·D], a leaf whose gradient {@link #backward} takes from there.
     */
    NDArray attention(int layer, NDArray qkv, int heads, int kvHeads, int headDim, boolean overPrefix) {
        Node n = attend(layer, qkv, heads, kvHeads, headDim, overPrefix);
        n.out.setRequiresGradient(true);
        entries.add(n);
        return n.out;
    }

    /** The native forward of {@link #attention}, without an entry of its own (a layer entry holds it). */
    Node attend(int layer, NDArray qkv, int heads, int kvHeads, int headDim, boolean overPrefix) {
        Shape s = qkv.getShape();
        Node n = new Node();
        n.batch = (int) s.get(0);
        n.t = (int) s.get(1);
        n.heads = heads;
        n.kvHeads = kvHeads;
        n.headDim = headDim;
        n.prefix = overPrefix ? prefixes.get(layer) : null;
        if (overPrefix && n.prefix == null) {
            throw new IllegalStateException("layer " + layer + ": continuation rows without a prompt before them");
        }
        qkv.attach(manager);
        n.qkv = qkv;
        n.out = manager.create(new Shape(n.batch, n.t, (long) heads * headDim), DataType.FLOAT32);
        n.lse = manager.create(new Shape(n.batch, heads, n.t), DataType.FLOAT32);
        Node p = n.prefix;
        NativeTraining.attentionForward(NativeLibraries.view(qkv), p == null ? null : NativeLibraries.view(p.qkv),
                NativeLibraries.view(n.out), NativeLibraries.view(n.lse), n.batch, n.t, p == null ? 0 : p.t,
                p == null ? 1 : p.batch, heads, kvHeads, headDim, NativeLibraries.threads());
        if (!overPrefix) {
            prefixes.put(layer, n);
        }
        return n;
    }

    /**
     * The gradients of {@code loss} in every parameter: the collector's backward, then the tape
     * walked back from the last entry to the first.
     */
    public void backward(GradientCollector gc, NDArray loss) {
        gc.backward(loss);
        for (int i = entries.size() - 1; i >= 0; i--) {
            Object e = entries.get(i);
            if (e instanceof Cut c) {
                if (c.leaf().hasGradient()) {
                    carry(c.below(), c.leaf().getGradient());
                }
            } else if (e instanceof TapedLayer l) {
                l.backward();
            } else if (e instanceof Step s) {
                s.backward(this);
            } else {
                Node n = (Node) e;
                NDArray dout = n.out.getGradient();
                dout.attach(manager);
                attendBackward(n, dout);
                carry(n.qkv, n.dqkv);
            }
        }
    }

    /** The native backward of one attention: from its output's gradient, into n.dqkv (and the prefix's). */
    void attendBackward(Node n, NDArray dout) {
        boolean accumulate = n.dqkv != null;
        if (n.dqkv == null) {
            n.dqkv = manager.create(n.qkv.getShape(), DataType.FLOAT32);
        }
        Node p = n.prefix;
        if (p != null && p.dqkv == null) {
            p.dqkv = manager.zeros(p.qkv.getShape(), DataType.FLOAT32);
        }
        NativeTraining.attentionBackward(NativeLibraries.view(n.qkv), p == null ? null : NativeLibraries.view(p.qkv),
                NativeLibraries.view(n.out), NativeLibraries.view(n.lse), NativeLibraries.view(dout),
                NativeLibraries.view(n.dqkv), p == null ? null : NativeLibraries.view(p.dqkv), n.batch, n.t,
                p == null ? 0 : p.t, p == null ? 1 : p.batch, n.heads, n.kvHeads, n.headDim, accumulate,
                NativeLibraries.threads());
        // A prompt's node comes before its continuations' on the tape, so it is walked after them:
        // by now its dqkv holds what they added to its keys and values.
    }

    /** Autograd from {@code below} with the given gradient, into the leaves and parameters under it. */
    static void carry(NDArray below, NDArray grad) {
        try {
            JniUtils.backward((PtNDArray) below, (PtNDArray) grad, false, false);
        } catch (ai.djl.engine.EngineException e) {
            // No graph under it (the base weights frozen while a LoRA trains): nothing to carry.
            // DJL cannot say so beforehand: its requiresGrad answers false for every tensor that is
            // not a leaf, and asking a tensor without a graph for its grad_fn crashes the JVM.
            if (e.getMessage() == null || !e.getMessage().contains("does not require grad")) {
                throw e;
            }
        }
    }

    @Override
    public void close() {
        CURRENT.set(outer);
        manager.close();
    }
}
