package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

import java.util.function.UnaryOperator;

/**
 * The two ends of a recorded training forward that touch the vocabulary, as {@link TrainingTape}
 * steps on the native kernels of {@link NativeVocabulary}: the projection of the predicting rows
 * onto the vocabulary down to each row's target log-prob, and the embedding lookup. Each returns a
 * leaf; the tape's walk back turns the leaf's gradient into the weight's gradient (added in place
 * into the tensor autograd accumulates into, so a tied weight gets both ends' shares in the one
 * buffer) and, for the projection, into the rows' gradient, which autograd carries on.
 *
 * <p>libtorch's path for the same work, at Qwen3's vocabulary of 151,936 and hidden 1024, keeps
 * [n, V] logits, log-probs and their gradients, transposes operands for its products, and builds
 * two V x H gradient tensors of 622 MB per step (the projection's and the embedding's dense
 * backward), each page-faulted afresh and then added into the tied gradient.
 */
final class VocabularyProjection {
    private VocabularyProjection() {
    }

    /** Whether the native projection can take these rows [n, H] and this weight [V, H] on the tape. */
    static boolean serves(TrainingTape tape, NDArray rows, NDArray weight) {
        return tape != null && NativeVocabulary.preferred() && rows.getShape().dimension() == 2
                && rows.getShape().get(1) == weight.getShape().get(1) && rows.getShape().get(0) > 0
                && TrainingTape.serves(rows) && NativeVocabulary.servable(weight);
    }

    /**
     * log softmax(rows wᵀ)[i, targets[i]] for each row i: a leaf [n] of the tape's, whose gradient
     * the tape's walk back carries into rows (and so into the graph below them) and into w's
     * gradient. Unless {@code entropy} is null, it receives each row's entropy [n].
     */
    static NDArray targetLogProbs(TrainingTape tape, NDArray rows, NDArray weight, int[] targets, float[] entropy) {
        int n = (int) rows.getShape().get(0);
        int h = (int) rows.getShape().get(1);
        int v = (int) weight.getShape().get(0);
        if (targets.length != n) {
            throw new IllegalArgumentException(targets.length + " targets for " + n + " rows");
        }
        NDManager m = tape.manager();
        Projection p = new Projection(rows, weight, targets.clone(), m.create(new Shape(v, n), DataType.FLOAT32),
                m.create(new Shape(n), DataType.FLOAT32), m.create(new Shape(n), DataType.FLOAT32));
        NDArray ent = entropy == null ? null : m.create(new Shape(n), DataType.FLOAT32);
        NativeVocabulary.forward(NativeLibraries.view(rows), NativeLibraries.view(weight), p.targets,
                NativeLibraries.view(p.zt), NativeLibraries.view(p.lse), NativeLibraries.view(p.picked),
                ent == null ? null : NativeLibraries.view(ent), n, h, v, NativeLibraries.threads());
        if (ent != null) {
            System.arraycopy(ent.toFloatArray(), 0, entropy, 0, n);
            ent.close();
        }
        p.picked.setRequiresGradient(true);
        tape.record(p);
        return p.picked;
    }

    /** The projection's step: its inputs, the logits it keeps for the backward, and its output leaf. */
    private record Projection(NDArray rows, NDArray weight, int[] targets, NDArray zt, NDArray lse, NDArray picked)
            implements TrainingTape.Step {
        @Override
        public void backward(TrainingTape tape) {
            PtNDArray g = JniUtils.getGradient((PtNDArray) picked);
            if (g == null) {
                return; // the loss did not depend on these log-probs
            }
            NDManager m = tape.manager();
            g.attach(m);
            int n = (int) rows.getShape().get(0);
            int h = (int) rows.getShape().get(1);
            int v = (int) weight.getShape().get(0);
            NDArray dx = m.create(new Shape(n, h), DataType.FLOAT32);
            Accumulator dw = weight.hasGradient() ? Accumulator.of(weight, m) : null;
            NativeVocabulary.backward(NativeLibraries.view(rows), NativeLibraries.view(weight), NativeLibraries.view(zt),
                    NativeLibraries.view(lse), targets, NativeLibraries.view(g), NativeLibraries.view(dx),
                    dw == null ? null : dw.view(), n, h, v, NativeLibraries.threads());
            if (dw != null) {
                dw.finish();
            }
            zt.close(); // [V, n]: the largest tensor of the step's tail, not needed past here
            TrainingTape.carry(rows, dx);
        }
    }

    /**
     * Whether the embedding lookup of a recorded forward goes through {@link #embed}: the kernels
     * are chosen, and the weight is float32 on the CPU and trained.
     */
    static boolean embedServes(TrainingTape tape, NDArray weight) {
        return tape != null && NativeVocabulary.preferred() && weight.hasGradient() && NativeVocabulary.servable(weight);
    }

    /**
     * The embedding of ids (int64, any shape) as a leaf of the tape's [..., H], computed by
     * {@code lookup} outside the autograd graph; the walk back adds the leaf's gradient rows into
     * the weight's gradient at their ids.
     */
    static NDArray embed(TrainingTape tape, NDArray ids, NDArray weight, UnaryOperator<NDArray> lookup) {
        NDManager m = tape.manager();
        NDArray x;
        try (NDArray inGraph = lookup.apply(ids)) {
            x = inGraph.stopGradient();
        }
        x.attach(m);
        x.setRequiresGradient(true);
        NDArray idsKept = ids.toType(DataType.INT64, true);
        idsKept.attach(m);
        tape.record(new Embedding(idsKept, weight, x));
        return x;
    }

    private record Embedding(NDArray ids, NDArray weight, NDArray x) implements TrainingTape.Step {
        @Override
        public void backward(TrainingTape tape) {
            PtNDArray g = JniUtils.getGradient((PtNDArray) x);
            if (g == null) {
                return; // nothing above used these positions
            }
            NDManager m = tape.manager();
            g.attach(m);
            Accumulator dw = Accumulator.of(weight, m);
            int h = (int) weight.getShape().get(1);
            NativeVocabulary.scatterAdd(NativeLibraries.view(ids), NativeLibraries.view(g), dw.view(), ids.size(), h,
                    (int) weight.getShape().get(0), NativeLibraries.threads());
            dw.finish();
        }
    }

    /**
     * Where a weight's gradient is added: the tensor autograd accumulates into, in place. Before the
     * first backward that tensor does not exist yet; autograd is asked to make it (a zero gradient
     * through a view of the weight), once. A gradient whose memory the kernels cannot write in place
     * (not contiguous) gets the sum in a temporary, added by libtorch.
     */
    private record Accumulator(NDArray grad, NDArray temporary) {
        static Accumulator of(NDArray weight, NDManager m) {
            PtNDArray g = JniUtils.getGradient((PtNDArray) weight);
            if (g == null) {
                try (NDManager local = m.newSubManager()) {
                    NDArray zeros = local.zeros(weight.getShape(), weight.getDataType());
                    NDArray alias = weight.reshape(weight.getShape());
                    alias.attach(local);
                    JniUtils.backward((PtNDArray) alias, (PtNDArray) zeros, false, false);
                }
                g = JniUtils.getGradient((PtNDArray) weight);
                if (g == null) {
                    throw new IllegalStateException("autograd made no gradient for a trained weight " + weight.getShape());
                }
            }
            g.attach(m);
            if (NativeVocabulary.servable(g)) {
                return new Accumulator(g, null);
            }
            return new Accumulator(g, m.zeros(weight.getShape(), DataType.FLOAT32));
        }

        java.nio.ByteBuffer view() {
            return NativeLibraries.view(temporary != null ? temporary : grad);
        }

        void finish() {
            if (temporary != null) {
                grad.addi(temporary);
                temporary.close();
            }
        }
    }
}
