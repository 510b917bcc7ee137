package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.nio.ByteBuffer;
import java.util.Locale;

/**
 * Causal attention over many query positions at once (a prefill's chunk, a teacher-forced extension,
 * a forward pass without autograd) in the native decoder library (src/main/c/tg_prefill.h, built into
 * libtailguard_decode.so beside the decoder layer): tiles of queries against tiles of keys with an
 * online softmax, key tiles above the diagonal skipped, the r query heads of a KV head sharing its keys
 * and values in place. The libtorch path of {@link Attention} (scores per chunk of queries, a mask,
 * softmax) is the reference it is tested against and runs wherever this does not serve:
 * {@code -Dtailguard.prefill.kernel=torch}, the library not loaded, a GPU, a dtype other than float32,
 * autograd recording on the thread, a forward mask or a shared prefix.
 */
final class NativePrefill {
    static final String PROPERTY = "tailguard.prefill.kernel";

    private NativePrefill() {
    }

    /** Whether the property ({@code native}, the default, or {@code torch}) and the library let the kernel run. */
    static boolean preferred() {
        String v = System.getProperty(PROPERTY, "native").trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "native" -> NativeDecode.LIBRARY.loaded();
            case "torch" -> false;
            default -> throw new IllegalArgumentException("-D" + PROPERTY + ": expected native or torch, got '" + v + "'");
        };
    }

    /** Whether the kernel serves these tensors now: preferred, all float32 on the CPU, and no autograd recording. */
    static boolean serves(NDArray... tensors) {
        if (!preferred() || ai.djl.pytorch.jni.JniUtils.isGradMode()) {
            return false;
        }
        for (NDArray a : tensors) {
            if (a.getDevice().isGpu() || a.getDataType() != DataType.FLOAT32) {
                return false;
            }
        }
        return true;
    }

    /**
     * Causal attention of queries q [B, T, heads, D] (scaled by 1/√D) at positions [start, start + T)
     * over keys and values [0, start + T), whose element (b, g, j, d) is at b·sb + g·sh + j·sj + d of
     * {@code keys} and {@code values}. Returns [B, T, heads·D] on q's manager.
     */
    static NDArray attend(NDArray q, NDArray keys, NDArray values, long sb, long sh, long sj, int start, int kvHeads) {
        Shape s = q.getShape();
        int b = (int) s.get(0);
        int t = (int) s.get(1);
        int heads = (int) s.get(2);
        int d = (int) s.get(3);
        NDArray out = q.getManager().create(new Shape(b, t, (long) heads * d), DataType.FLOAT32);
        attention(NativeLibraries.view(q), NativeLibraries.view(keys), NativeLibraries.view(values), NativeLibraries.view(out),
                sb, sh, sj, b, t, start, heads, kvHeads, d, NativeLibraries.threads());
        return out;
    }

    /**
     * From the fused q/k/v product [B, T, (heads + 2 kvh)·D] of positions [start, start + T): q
     * [B, T, heads, D] normed (q_norm), rotated and scaled, into {@code q} (null: not computed); keys
     * normed (k_norm) and rotated, and values, at element (b, g, kv0 + t, d) = b·sb + g·sh + (kv0 + t)·sj + d
     * of {@code keys} and {@code values}. cos and sin are the rotary tables [positions, D].
     */
    static native void qkv(ByteBuffer qkv, ByteBuffer qNorm, ByteBuffer kNorm, ByteBuffer cos, ByteBuffer sin, ByteBuffer q,
                           ByteBuffer keys, ByteBuffer values, long sb, long sh, long sj,
                           int batch, int t, int start, int kv0, int heads, int kvHeads, int headDim, float eps, float scale,
                           int threads);

    /** RMSNorm of x [..., n] with weight w [n] (eps as the model's), a new tensor on x's manager. */
    static NDArray rmsNorm(NDArray x, NDArray w, float eps) {
        int n = (int) x.getShape().get(x.getShape().dimension() - 1);
        int rows = (int) (x.getShape().size() / n);
        NDArray out = x.getManager().create(x.getShape(), DataType.FLOAT32);
        rmsNorm(NativeLibraries.view(x), NativeLibraries.view(w), NativeLibraries.view(out), rows, n, eps, NativeLibraries.threads());
        return out;
    }

    /** silu(gate) ⊙ up of the fused gate/up product gu [..., 2I]: [..., I] on gu's manager. */
    static NDArray swiglu(NDArray gu, int intermediate) {
        Shape s = gu.getShape();
        int rows = (int) (s.size() / (2L * intermediate));
        long[] dims = s.getShape();
        dims[dims.length - 1] = intermediate;
        NDArray out = gu.getManager().create(new Shape(dims), DataType.FLOAT32);
        swiglu(NativeLibraries.view(gu), NativeLibraries.view(out), rows, intermediate, NativeLibraries.threads());
        return out;
    }

    static native void rmsNorm(ByteBuffer x, ByteBuffer w, ByteBuffer out, int rows, int n, float eps, int threads);

    static native void swiglu(ByteBuffer gu, ByteBuffer out, int rows, int intermediate, int threads);

    /** See {@link #attend}; all buffers float32, native order; out [B, T, heads, D]. */
    static native void attention(ByteBuffer q, ByteBuffer keys, ByteBuffer values, ByteBuffer out, long sb, long sh, long sj,
                                 int batch, int t, int start, int heads, int kvHeads, int headDim, int threads);
}
