package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import java.nio.ByteBuffer;

/**
 * The training step's vocabulary projection in native kernels (src/main/c/vocab_step.c): the
 * predicting rows' log-probs of their targets through the lm_head (tied or not), the log-softmax
 * over the whole vocabulary and the entropy in one pass over the weight; the backward's gradient of
 * the rows and its weight gradient added straight into the weight's gradient; and the embedding
 * lookup's backward as a scatter-add into the same gradient. {@link TrainingTape} uses them while
 * it records (the same switch, {@code -Dtailguard.train.kernel}); the libtorch ops they replace
 * (lm_head product, log-softmax, gather, autograd's embedding backward) are their reference.
 */
final class NativeVocabulary {
    static final String RESOURCE = "/native/linux-x86_64/libtailguard_vocab.so";
    // The kernels keep nothing page-sized: the page check of the loader has nothing to compare.
    static final NativeLibraries.Library LIBRARY = NativeLibraries.load(NativeVocabulary.class, RESOURCE,
            NativeTraining.PROPERTY, () -> KvCache.PAGE);

    private NativeVocabulary() {
    }

    /** Whether the kernels run (loaded, and {@code -Dtailguard.train.kernel} does not choose libtorch). */
    static boolean preferred() {
        return LIBRARY.preferred();
    }

    /** Float32, on the CPU, contiguous and non-empty: the kernels read and write the tensor itself. */
    static boolean servable(NDArray... arrays) {
        for (NDArray a : arrays) {
            if (a.getDevice().isGpu() || a.getDataType() != DataType.FLOAT32 || a.size() == 0
                    || address(NativeLibraries.view(a)) != address(NativeLibraries.view(a))) {
                return false;
            }
        }
        return true;
    }

    private static native long address(ByteBuffer buffer);

    /**
     * rows x [n, H] and weight w [V, H]: writes the logits zt [V, n] (vocabulary-major), each row's
     * log-sum-exp lse [n], the log-prob of its target picked [n] and, unless entropy is null, the
     * entropy of its distribution [n]. Targets outside [0, V) throw IllegalArgumentException.
     */
    static native void forward(ByteBuffer x, ByteBuffer w, int[] targets, ByteBuffer zt, ByteBuffer lse,
                               ByteBuffer picked, ByteBuffer entropy, int n, int h, int v, int threads);

    /**
     * The backward of {@link #forward} from g [n] = dL/d(picked): writes dx [n, H] and, unless dw is
     * null, adds the weight's gradient into dw [V, H]. Overwrites zt.
     */
    static native void backward(ByteBuffer x, ByteBuffer w, ByteBuffer zt, ByteBuffer lse, int[] targets, ByteBuffer g,
                                ByteBuffer dx, ByteBuffer dw, int n, int h, int v, int threads);

    /** dw[ids[t]] += rows[t] for t in [0, count): ids int64, rows [count, H], dw [V, H]. */
    static native void scatterAdd(ByteBuffer ids, ByteBuffer rows, ByteBuffer dw, long count, int h, int v, int threads);
}
