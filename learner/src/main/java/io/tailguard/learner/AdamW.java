package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.tailguard.model.NativeTraining;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter): Adam moments with bias correction and decoupled weight decay,
 * applied in place to each parameter; 1-D parameters (norm gains) are not decayed. Gradients are
 * clipped to a global norm first. Must run with gradient recording off.
 */
public final class AdamW implements AutoCloseable {
    public record Options(double beta1, double beta2, double eps, double weightDecay, double clipNorm) {
        public static Options defaults() {
            return new Options(0.9, 0.95, 1e-8, 0.1, 1.0);
        }
    }

    private final Options o;
    private final NDManager manager;
    private final Map<String, NDArray> params;
    private final Map<String, NDArray> m = new LinkedHashMap<>();
    private final Map<String, NDArray> v = new LinkedHashMap<>();
    private long t;
    private long skipped;

    public AdamW(Map<String, NDArray> params, Options options, NDManager parent) {
        this.o = options;
        this.params = params;
        this.manager = parent.newSubManager();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            m.put(e.getKey(), manager.zeros(e.getValue().getShape()));
            v.put(e.getKey(), manager.zeros(e.getValue().getShape()));
        }
    }

    /** Steps skipped because the gradient was not finite. */
    public long skippedSteps() {
        return skipped;
    }

    /** Steps taken so far. */
    public long steps() {
        return t;
    }

    /** The first and second moments by parameter name (live tensors, for checkpoints). */
    public Map<String, NDArray> firstMoments() {
        return m;
    }

    public Map<String, NDArray> secondMoments() {
        return v;
    }

    /** Restores the step count (moments are restored through their live tensors). */
    public void setSteps(long steps) {
        this.t = steps;
    }

    /**
     * One update with learning rate lr from the gradients held by the parameters; returns the
     * pre-clip global norm. A non-finite gradient (an overflow somewhere in the batch) would turn
     * every parameter into NaN through the clip factor, so such a step is skipped: nothing changes,
     * the step count does not advance, and the NaN/infinite norm is returned for the caller to report.
     *
     * <p>Float32 parameters on the CPU update in one native pass each ({@link NativeTraining#adamw}:
     * no temporaries); others through libtorch ops, whose temporaries are freed parameter by
     * parameter. Either way the step needs no memory beyond the largest parameter's few temporaries:
     * keeping every parameter's temporaries to the end of the step took about twelve times the
     * parameters' size (some 29 GB at Qwen3-0.6B's 0.6B parameters).
     */
    public double step(double lr) {
        try (io.tailguard.model.GradMode.Scope noGrad = io.tailguard.model.GradMode.off();
             NDManager scope = manager.newSubManager()) {
            Map<String, NDArray> grads = new LinkedHashMap<>();
            Map<String, Boolean> fused = new LinkedHashMap<>();
            boolean nativeKernels = NativeTraining.preferred();
            double sq = 0;
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                String name = e.getKey();
                NDArray g = e.getValue().getGradient();
                scope.attachAll(g);
                grads.put(name, g);
                boolean f = nativeKernels && NativeTraining.servable(e.getValue(), g, m.get(name), v.get(name));
                fused.put(name, f);
                if (f) {
                    sq += NativeTraining.sumOfSquares(g);
                } else {
                    try (NDManager local = scope.newSubManager()) {
                        NDArray square = g.square();
                        local.attachAll(square);
                        sq += square.sum().getFloat();
                    }
                }
            }
            double norm = Math.sqrt(sq);
            if (!Double.isFinite(norm)) {
                skipped++;
                return norm;
            }
            t++;
            double clip = o.clipNorm() > 0 && norm > o.clipNorm() ? o.clipNorm() / norm : 1.0;
            double bc1 = 1 - Math.pow(o.beta1(), t);
            double bc2 = 1 - Math.pow(o.beta2(), t);
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                String name = e.getKey();
                NDArray p = e.getValue();
                double decay = o.weightDecay() > 0 && p.getShape().dimension() > 1 ? lr * o.weightDecay() : 0;
                if (fused.get(name)) {
                    NativeTraining.adamw(p, grads.get(name), m.get(name), v.get(name), clip, o.beta1(), o.beta2(), bc1, bc2,
                            o.eps(), lr, decay);
                } else {
                    try (NDManager local = scope.newSubManager()) {
                        update(p, grads.get(name), m.get(name), v.get(name), clip, bc1, bc2, lr, decay, local);
                    }
                }
            }
            return norm;
        }
    }

    /**
     * The libtorch twin of {@link NativeTraining#adamw}, one parameter: every temporary goes into
     * {@code local}, freed when the parameter is done (an op's result belongs to its first operand's
     * manager, and the moments and parameters live as long as the run).
     */
    private void update(NDArray p, NDArray grad, NDArray mi, NDArray vi, double clip, double bc1, double bc2, double lr,
                        double decay, NDManager local) {
        NDArray g = grad.mul(clip);
        local.attachAll(g);
        NDArray gm = g.mul(1 - o.beta1());
        local.attachAll(gm);
        mi.muli(o.beta1()).addi(gm);
        NDArray g2 = g.square();
        local.attachAll(g2);
        NDArray g2v = g2.mul(1 - o.beta2());
        local.attachAll(g2v);
        vi.muli(o.beta2()).addi(g2v);
        NDArray mHat = mi.div(bc1);
        local.attachAll(mHat);
        NDArray vHat = vi.div(bc2);
        local.attachAll(vHat);
        NDArray root = vHat.sqrt();
        local.attachAll(root);
        NDArray denom = root.add(o.eps());
        local.attachAll(denom);
        NDArray update = mHat.div(denom);
        local.attachAll(update);
        if (decay > 0) {
            NDArray d = p.mul(decay);
            local.attachAll(d);
            p.subi(d);
        }
        NDArray delta = update.mul(lr);
        local.attachAll(delta);
        p.subi(delta);
    }

    @Override
    public void close() {
        manager.close();
    }
}
