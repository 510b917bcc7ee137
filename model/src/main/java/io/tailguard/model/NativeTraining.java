package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import java.nio.ByteBuffer;

/**
 * The training step's native kernels (src/main/c/train_step.c): causal grouped-query attention
 * forward and backward for {@link TrainingTape}, and AdamW's update of one tensor in one pass. They
 * serve float32 tensors on the CPU while the library is loaded, unless
 * {@code -Dtailguard.train.kernel=torch}; their libtorch twins (the autograd graph of
 * {@link Attention}'s chunked attention, AdamW's tensor ops) are the references they are tested
 * against, and run everywhere else.
 */
public final class NativeTraining {
    static final String PROPERTY = "tailguard.train.kernel";
    static final String RESOURCE = "/native/linux-x86_64/libtailguard_train.so";
    static final NativeLibraries.Library LIBRARY = NativeLibraries.load(NativeTraining.class, RESOURCE, PROPERTY,
            NativeTraining::pageSize);

    private NativeTraining() {
    }

    /** Whether the kernels run (the library loaded, and the property does not choose libtorch). */
    public static boolean preferred() {
        return LIBRARY.preferred();
    }

    /** Why the library is not loaded, or null. */
    public static String unavailableReason() {
        return LIBRARY.unavailableReason();
    }

    /**
     * Whether the kernels can read and write these tensors where they are: float32, on the CPU, and
     * contiguous (a view of a strided tensor would be a copy, and a write into it would be lost).
     */
    public static boolean servable(NDArray... arrays) {
        for (NDArray a : arrays) {
            if (a.getDevice().isGpu() || a.getDataType() != DataType.FLOAT32 || !inPlace(a)) {
                return false;
            }
        }
        return true;
    }

    /** A contiguous tensor's views share its memory; a strided one's are fresh copies, one per call. */
    private static boolean inPlace(NDArray a) {
        if (a.size() == 0) {
            return false;
        }
        return address(NativeLibraries.view(a)) == address(NativeLibraries.view(a));
    }

    /** Σ g², accumulated in double, chunk by chunk in a fixed order (the same at any thread count). */
    public static double sumOfSquares(NDArray g) {
        return sumOfSquares(NativeLibraries.view(g), g.size(), NativeLibraries.threads());
    }

    /**
     * One AdamW update of p in place, with its moments m and v, from gradient g: the same float32
     * operations, in the same order, as AdamW's libtorch twin. {@code decay} is lr × weight decay
     * (0 for parameters that are not decayed); bc1, bc2 the bias corrections.
     */
    public static void adamw(NDArray p, NDArray g, NDArray m, NDArray v, double clip, double beta1, double beta2,
                             double bc1, double bc2, double eps, double lr, double decay) {
        adamw(NativeLibraries.view(p), NativeLibraries.view(g), NativeLibraries.view(m), NativeLibraries.view(v), p.size(),
                (float) clip, (float) beta1, (float) (1 - beta1), (float) beta2, (float) (1 - beta2), (float) bc1, (float) bc2,
                (float) eps, (float) lr, (float) decay, NativeLibraries.threads());
    }

    /**
     * Lets the attention's products run on AVX-512 tiles where the CPU has them (the default) or
     * keeps them on the AVX2 tiles; the sums are the same either way (tests compare the two).
     * Returns whether AVX-512 tiles run now.
     */
    static native boolean wideTiles(boolean allow);

    /** The page in tokens the library was compiled with (src/main/c/tg_page.h); must be {@link KvCache#PAGE}. */
    static native int pageSize();

    /** The address of a direct buffer. */
    private static native long address(ByteBuffer buffer);

    /**
     * Causal attention over fused q/k/v rows qkv [B, T, heads + 2 kvh, D] (q normed, rotated and
     * pre-scaled), after an optional prefix pkv [Bp, P, heads + 2 kvh, D] (P = 0: none; Bp 1 or B)
     * that every row sees first. Writes out [B, T, heads, D] and lse [B, heads, T].
     */
    static native void attentionForward(ByteBuffer qkv, ByteBuffer pkv, ByteBuffer out, ByteBuffer lse,
                                        int batch, int t, int p, int prefixBatch, int heads, int kvHeads, int headDim,
                                        int threads);

    /**
     * The gradients of {@link #attentionForward}: from out's gradient dout [B, T, heads, D], writes
     * (or with accumulate, adds) dqkv [B, T, heads + 2 kvh, D], and adds the prefix's key and value
     * gradients into dpkv's key and value heads.
     */
    static native void attentionBackward(ByteBuffer qkv, ByteBuffer pkv, ByteBuffer out, ByteBuffer lse, ByteBuffer dout,
                                         ByteBuffer dqkv, ByteBuffer dpkv, int batch, int t, int p, int prefixBatch,
                                         int heads, int kvHeads, int headDim, boolean accumulate, int threads);

    private static native double sumOfSquares(ByteBuffer g, long n, int threads);

    private static native void adamw(ByteBuffer p, ByteBuffer g, ByteBuffer m, ByteBuffer v, long n, float clip,
                                     float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float bc1,
                                     float bc2, float eps, float lr, float decay, int threads);
    /** RMSNorm of rows: y = w ⊙ x / sqrt(mean(x²) + eps) over n values, and each row's 1 / sqrt(...) into rstd [rows]. */
    static native void rmsForward(ByteBuffer x, ByteBuffer w, ByteBuffer y, ByteBuffer rstd, int rows, int n, float eps,
                                  int threads);

    /**
     * The backward of {@link #rmsForward}: from dy, writes (or with accumulate, adds) dx, and writes the
     * weight's gradient dw [n] (summed over the rows). dx may be dy.
     */
    static native void rmsBackward(ByteBuffer x, ByteBuffer w, ByteBuffer rstd, ByteBuffer dy, ByteBuffer dx, ByteBuffer dw,
                                   int rows, int n, boolean accumulate, int threads);

    /**
     * From the fused q/k/v product qkv [B, T, (heads + 2 kvh) D], the attention's rows [B, T, heads + 2 kvh, D]:
     * q heads RMSNormed with wq, rotated at positions start + t and scaled; k heads normed with wk and
     * rotated; v heads as they are. Each q and k head's 1 / sqrt(mean square + eps) into rstd [B, T, heads + kvh].
     */
    static native void qkForward(ByteBuffer qkv, ByteBuffer wq, ByteBuffer wk, ByteBuffer cos, ByteBuffer sin, ByteBuffer rows,
                                 ByteBuffer rstd, int batch, int t, int start, int heads, int kvHeads, int headDim, float eps,
                                 float scale, int threads);

    /**
     * The backward of {@link #qkForward}, in place: d holds the rows' gradient and becomes the
     * product's; the norm weights' gradients go to dwq and dwk [D].
     */
    static native void qkBackward(ByteBuffer qkv, ByteBuffer wq, ByteBuffer wk, ByteBuffer cos, ByteBuffer sin, ByteBuffer rstd,
                                  ByteBuffer d, ByteBuffer dwq, ByteBuffer dwk, int batch, int t, int start, int heads,
                                  int kvHeads, int headDim, float scale, int threads);

    /** a [rows, n] = silu(gate) ⊙ up from the fused gate/up product gu [rows, 2n]. */
    static native void swigluForward(ByteBuffer gu, ByteBuffer a, int rows, int n, int threads);

    /** The backward of {@link #swigluForward}: from da [rows, n], writes dgu [rows, 2n] (which may be gu, in place). */
    static native void swigluBackward(ByteBuffer gu, ByteBuffer da, ByteBuffer dgu, int rows, int n, int threads);
}
