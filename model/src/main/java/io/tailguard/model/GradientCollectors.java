package io.tailguard.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;

import java.util.concurrent.locks.ReentrantLock;

/**
 * The JVM's one GradientCollector, taken in turn. DJL's PyTorch engine lets one collector collect at
 * a time in the whole JVM (a second one fails with "A PtGradientCollector is already collecting").
 * In one process the learner's steps and the compression worker's YAQA Hessian sketches (gradients
 * of the model's own sampled labels) both need one, on different threads. Every holder takes it
 * here, for one micro-batch or one sequence at a time, so they wait for each other (fair: in
 * arrival order) instead of failing.
 */
public final class GradientCollectors {
    private static final ReentrantLock LOCK = new ReentrantLock(true);

    private GradientCollectors() {
    }

    /** A new GradientCollector once no other thread holds one; closing it lets the next one in. */
    public static GradientCollector exclusive() {
        LOCK.lock();
        try {
            return new Exclusive(Engine.getInstance().newGradientCollector());
        } catch (RuntimeException | Error e) {
            LOCK.unlock();
            throw e;
        }
    }

    private static final class Exclusive implements GradientCollector {
        private final GradientCollector inner;
        private boolean closed;

        Exclusive(GradientCollector inner) {
            this.inner = inner;
        }

        @Override
        public void backward(NDArray target) {
            inner.backward(target);
        }

        @Override
        public void zeroGradients() {
            inner.zeroGradients();
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            try {
                inner.close();
            } finally {
                LOCK.unlock();
            }
        }
    }
}
