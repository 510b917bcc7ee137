package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * One decoder layer of a training forward, run whole on the {@link TrainingTape} with its backward
 * written out: the products are libtorch's GEMMs (outside autograd), everything between them is one
 * native pass each ({@link NativeTraining}: RMSNorm, the q/k norms with RoPE, the attention,
 * SwiGLU, each forward and backward). Through autograd the same layer was about forty tensor ops
 * forward and as many backward, every one a pass over memory into a fresh tensor.
 *
 * <p>The forward keeps what the backward reads: the input, the normed inputs of the two fused
 * products, the q/k/v product, the attention's rows, output and log-sum-exp, the residual after
 * attention, the gate/up product and SwiGLU's output, and each norm's 1/rms. The backward takes the
 * gradient of the output (from autograd where the graph above reads it, and from the layer above),
 * adds each weight's gradient into the parameter's (through autograd's own accumulation, so a
 * parameter's first gradient is made as autograd makes it), and hands the input's gradient to the
 * layer below, or carries it into the graph under the input (the embedding).
 */
final class TapedLayer {
    private final TrainingTape tape;
    private final DecoderLayer layer;
    private final TapedLayer below;
    private final int batch;
    private final int t;
    private final int start;
    private final NDArray cos;
    private final NDArray sin;

    private NDArray x;        // [B, T, H] input
    private NDArray rstd1;    // [B, T]
    private NDArray n1;       // [B, T, H]
    private NDArray qkv;      // [B, T, NH·D] product
    private NDArray rstdQk;   // [B, T, heads + kvh]
    private TrainingTape.Node attention;
    private NDArray h;        // [B, T, H] x + attention
    private NDArray rstd2;    // [B, T]
    private NDArray n2;       // [B, T, H]
    private NDArray gu;       // [B, T, 2I]
    private NDArray a;        // [B, T, I]
    private final NDArray out; // [B, T, H] h + mlp, a leaf
    private NDArray pending;   // the gradient of out handed down by the layer above
    private boolean outTaken;  // whether the layer above took out's autograd gradient into pending

    TapedLayer(TrainingTape tape, DecoderLayer layer, NDArray x, TapedLayer below, boolean overPrefix) {
        this.tape = tape;
        this.layer = layer;
        this.below = below;
        Attention at = layer.attention();
        Mlp mlp = layer.mlp();
        NDManager m = tape.manager();
        Shape s = x.getShape();
        this.batch = (int) s.get(0);
        this.t = (int) s.get(1);
        int hidden = (int) s.get(2);
        int rows = batch * t;
        int heads = at.heads();
        int kvh = at.kvHeads();
        int d = at.headDim();
        this.start = overPrefix ? tape.prefixLength(at.layer()) : 0;
        at.rotary().ensure(start + t);
        this.cos = at.rotary().cosTable();
        this.sin = at.rotary().sinTable();
        int threads = NativeLibraries.threads();
        try (GradMode.Scope off = GradMode.off()) {
            x.attach(m);
            this.x = x;
            rstd1 = m.create(new Shape(batch, t), DataType.FLOAT32);
            n1 = m.create(s, DataType.FLOAT32);
            RmsNorm norm1 = layer.inputNorm();
            NativeTraining.rmsForward(view(x), view(norm1.weight()), view(n1), view(rstd1), rows, hidden, norm1.eps(), threads);
            qkv = Linear.apply(n1, at.qkvProj());
            NDArray rowsQkv = m.create(new Shape(batch, t, heads + 2L * kvh, d), DataType.FLOAT32);
            rstdQk = m.create(new Shape(batch, t, heads + kvh), DataType.FLOAT32);
            NativeTraining.qkForward(view(qkv), view(at.qNorm().weight()), view(at.kNorm().weight()), view(cos), view(sin),
                    view(rowsQkv), view(rstdQk), batch, t, start, heads, kvh, d, at.qNorm().eps(),
                    (float) (1.0 / Math.sqrt(d)), threads);
            attention = tape.attend(at.layer(), rowsQkv, heads, kvh, d, overPrefix);
            h = Linear.apply(attention.out, at.oProj()).addi(x);
            rstd2 = m.create(new Shape(batch, t), DataType.FLOAT32);
            n2 = m.create(s, DataType.FLOAT32);
            RmsNorm norm2 = layer.postAttentionNorm();
            NativeTraining.rmsForward(view(h), view(norm2.weight()), view(n2), view(rstd2), rows, hidden, norm2.eps(), threads);
            gu = Linear.apply(n2, mlp.gateUp());
            a = m.create(new Shape(batch, t, mlp.intermediate()), DataType.FLOAT32);
            NativeTraining.swigluForward(view(gu), view(a), rows, mlp.intermediate(), threads);
            NDArray y = Linear.apply(a, mlp.down()).addi(h);
            y.setRequiresGradient(true);
            this.out = y;
        }
    }

    NDArray out() {
        return out;
    }

    /**
     * The layer's backward, once the layer above (if any) has run its own: the weights' gradients
     * into the parameters, the input's to the layer below or into the graph under it. Frees what
     * the forward kept.
     */
    void backward() {
        NDManager m = tape.manager();
        try (NDManager tmp = m.newSubManager(); GradMode.Scope off = GradMode.off()) {
            for (NDArray k : new NDArray[] {rstd1, n1, qkv, rstdQk, attention.out, attention.lse, h, rstd2, n2, gu, a}) {
                k.attach(tmp);
            }
            NDArray dout = outTaken ? null : gradientOf(out);
            if (dout != null) {
                dout.attach(tmp);
            }
            if (pending != null) {
                pending.attach(tmp);
                dout = dout == null ? pending : dout.addi(pending);
            }
            if (dout == null) {
                dout = tmp.zeros(out.getShape(), DataType.FLOAT32);
            }
            dout = contiguous(dout, tmp);
            NDArray dx = backward(dout, tmp);
            if (below != null) {
                // this input is the layer below's output: its gradient from autograd, if the graph read it, goes with dx
                NDArray own = gradientOf(x);
                if (own != null) {
                    own.attach(tmp);
                    dx.addi(own);
                }
                below.outTaken = true;
                dx.attach(m);
                if (below.pending == null) {
                    below.pending = dx;
                } else {
                    below.pending.addi(dx);
                }
            } else {
                TrainingTape.carry(x, dx);
            }
            if (attention.dqkv != null) {
                attention.dqkv.attach(tmp);
            }
            attention.qkv.attach(tmp);
        }
    }

    /** dout [B, T, H] (becomes the residual's gradient, then the input's) -> the input's gradient. */
    private NDArray backward(NDArray dout, NDManager tmp) {
        Attention at = layer.attention();
        Mlp mlp = layer.mlp();
        int rows = batch * t;
        int hidden = (int) out.getShape().get(2);
        int inter = mlp.intermediate();
        int heads = at.heads();
        int kvh = at.kvHeads();
        int d = at.headDim();
        int threads = NativeLibraries.threads();
        // the MLP: out = h + down(swiglu(gate_up(norm2(h))))
        addWeightGradient(mlp.down(), dout, a, rows);
        NDArray da = dout.matMul(mlp.down());                                    // [B, T, I]
        NDArray dgu = gu;                                                        // in place: gu is not read again
        NativeTraining.swigluBackward(view(gu), view(da), view(dgu), rows, inter, threads);
        da.close();
        addWeightGradient(mlp.gateUp(), dgu, n2, rows);
        NDArray dn2 = dgu.matMul(mlp.gateUp());                                  // [B, T, H]
        dgu.close();
        RmsNorm norm2 = layer.postAttentionNorm();
        NDArray dw = tmp.create(new Shape(hidden), DataType.FLOAT32);
        NativeTraining.rmsBackward(view(h), view(norm2.weight()), view(rstd2), view(dn2), view(dout), view(dw), rows, hidden,
                true, threads);
        addGradient(norm2.weight(), dw);
        dn2.close();
        // attention: h = x + o_proj(attention(rows(qkv(norm1(x)))))
        addWeightGradient(at.oProj(), dout, attention.out, rows);
        NDArray dO = dout.matMul(at.oProj());                                    // [B, T, heads·D]
        tape.attendBackward(attention, dO);
        dO.close();
        NDArray dqkv = attention.dqkv;                                           // [B, T, NH, D]
        NDArray dwq = tmp.create(new Shape(d), DataType.FLOAT32);
        NDArray dwk = tmp.create(new Shape(d), DataType.FLOAT32);
        NativeTraining.qkBackward(view(qkv), view(at.qNorm().weight()), view(at.kNorm().weight()), view(cos), view(sin),
                view(rstdQk), view(dqkv), view(dwq), view(dwk), batch, t, start, heads, kvh, d, (float) (1.0 / Math.sqrt(d)),
                threads);
        addGradient(at.qNorm().weight(), dwq);
        addGradient(at.kNorm().weight(), dwk);
        NDArray dproduct = dqkv.reshape(batch, t, (heads + 2L * kvh) * d);      // now the product's gradient
        addWeightGradient(at.qkvProj(), dproduct, n1, rows);
        NDArray dn1 = dproduct.matMul(at.qkvProj());                             // [B, T, H]
        RmsNorm norm1 = layer.inputNorm();
        // a fresh tensor: autograd may keep the one it was given as the parameter's first gradient
        NDArray dw1 = tmp.create(new Shape(hidden), DataType.FLOAT32);
        NativeTraining.rmsBackward(view(x), view(norm1.weight()), view(rstd1), view(dn1), view(dout), view(dw1), rows, hidden,
                true, threads);
        addGradient(norm1.weight(), dw1);
        dn1.close();
        return dout;
    }

    /** W's gradient += dyᵀ in, over the rows (dy [.., out], in [.., in]), when W takes one. */
    private static void addWeightGradient(NDArray weight, NDArray dy, NDArray in, int rows) {
        if (!requiresGradient(weight)) {
            return;
        }
        try (NDArray dy2 = dy.reshape(rows, -1); NDArray in2 = in.reshape(rows, -1); NDArray dyT = dy2.transpose();
             NDArray g = dyT.matMul(in2)) {
            addGradient(weight, g);
        }
    }

    /**
     * p's gradient += g, by autograd's own accumulation (a backward from the leaf p): it makes the
     * gradient where the parameter has none yet, as autograd does.
     */
    private static void addGradient(NDArray p, NDArray g) {
        if (requiresGradient(p)) {
            JniUtils.backward((PtNDArray) p, (PtNDArray) g, false, false);
        }
    }

    private static boolean requiresGradient(NDArray p) {
        return JniUtils.requiresGrad((PtNDArray) p);
    }

    /** The gradient autograd left in a leaf, or null where it left none. */
    private static NDArray gradientOf(NDArray leaf) {
        return JniUtils.requiresGrad((PtNDArray) leaf) ? JniUtils.getGradient((PtNDArray) leaf) : null;
    }

    /** a itself where the kernels can write it in place, else a contiguous copy in tmp. */
    private static NDArray contiguous(NDArray a, NDManager tmp) {
        if (NativeTraining.servable(a)) {
            return a;
        }
        NDArray c = tmp.zeros(a.getShape(), DataType.FLOAT32);
        return c.addi(a);
    }

    private static java.nio.ByteBuffer view(NDArray a) {
        return NativeLibraries.view(a);
    }
}
