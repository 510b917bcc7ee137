package io.tailguard.model;

import ai.djl.pytorch.jni.JniUtils;

/**
 * libtorch's autograd switch, which is per thread. DJL turns it off only on the thread that
 * initialises the engine; every other thread (an actor's dispatcher thread, a test's second JVM
 * thread) starts with libtorch's default, on. There, an in-place update of a parameter that requires
 * a gradient (an optimizer step, a LoRA merge) fails with "a leaf Variable that requires grad is
 * being used in an in-place operation", and plain forwards record graphs nobody uses. Code that
 * updates parameters in place, and every actor message that runs tensor work, runs inside
 * {@link #off()}; a GradientCollector turns it on for its own scope and restores it.
 */
public final class GradMode {
    static {
        ai.djl.engine.Engine.getInstance(); // loads libtorch, whose natives the switch calls
    }

    private GradMode() {
    }

    /** Autograd off on this thread until the returned scope closes (then as it was). */
    public static Scope off() {
        boolean was = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        return new Scope(was);
    }

    /** Restores the thread's previous autograd mode. */
    public static final class Scope implements AutoCloseable {
        private final boolean was;

        private Scope(boolean was) {
            this.was = was;
        }

        @Override
        public void close() {
            JniUtils.setGradMode(was);
        }
    }
}
