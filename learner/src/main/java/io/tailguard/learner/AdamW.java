package io.tailguard.learner;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

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
     */
    public double step(double lr) {
        try (io.tailguard.model.GradMode.Scope noGrad = io.tailguard.model.GradMode.off();
             NDManager scope = manager.newSubManager()) {
            Map<String, NDArray> grads = new LinkedHashMap<>();
            double sq = 0;
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                NDArray g = e.getValue().getGradient();
                scope.attachAll(g);
                grads.put(e.getKey(), g);
                sq += g.square().sum().getFloat();
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
                NDArray g = grads.get(name).mul(clip);
                NDArray mi = m.get(name);
                NDArray vi = v.get(name);
                mi.muli(o.beta1()).addi(g.mul(1 - o.beta1()));
                vi.muli(o.beta2()).addi(g.square().mul(1 - o.beta2()));
                // Every temporary goes into scope: an op's result belongs to its first operand's
                // manager, and the moments and parameters live as long as the run (a leak of
                // several parameter-sized arrays per step otherwise).
                NDArray mHat = mi.div(bc1);
                scope.attachAll(mHat);
                NDArray vHat = vi.div(bc2);
                scope.attachAll(vHat);
                NDArray root = vHat.sqrt();
                scope.attachAll(root);
                NDArray denom = root.add(o.eps());
                scope.attachAll(denom);
                NDArray update = mHat.div(denom);
                scope.attachAll(g, update);
                if (o.weightDecay() > 0 && p.getShape().dimension() > 1) {
                    NDArray decay = p.mul(lr * o.weightDecay());
                    scope.attachAll(decay);
                    p.subi(decay);
                }
                NDArray delta = update.mul(lr);
                scope.attachAll(delta);
                p.subi(delta);
            }
            return norm;
        }
    }

    @Override
    public void close() {
        manager.close();
    }
}
