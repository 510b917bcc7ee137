package io.tailguard.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import java.nio.ByteBuffer;
import java.util.Map;

/**
 * The native decoder layer (src/main/c/decode_layer.c): everything of a decode step's layer but the
 * attention kernel, in two calls per layer instead of some 35 libtorch ops. {@link Qwen3Model#decode}
 * uses it for float32 models on the CPU while no weight adapter is active, unless
 * {@code -Dtailguard.decode.kernel=torch}; the libtorch layer is the reference it is tested against.
 */
final class NativeDecode {
    static final String PROPERTY = "tailguard.decode.kernel";
    static final String RESOURCE = "/native/linux-x86_64/libtailguard_decode.so";
    static final NativeLibraries.Library LIBRARY = NativeLibraries.load(NativeDecode.class, RESOURCE, PROPERTY,
            NativeDecode::pageSize);

    private NativeDecode() {
    }

    /**
     * One model's decode weights, per layer, in the order the native calls take them. Views of their
     * memory are taken afresh for every step: an in-place update keeps a tensor's memory, but
     * {@code NDArray.set} (restoring a checkpoint, say) may give it new memory, and a view kept
     * from before would then read freed memory.
     */
    record Weights(NDArray[][] perLayer) {
        static final String[] NAMES = {"input_layernorm.weight", "self_attn.qkv_proj.weight", "self_attn.q_norm.weight",
                "self_attn.k_norm.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                "mlp.gate_up_proj.weight", "mlp.down_proj.weight"};

        /** The weights, or null where the native layer cannot serve the model (not float32 on the CPU). */
        static Weights of(ModelConfig c, Map<String, NDArray> parameters) {
            NDArray[][] w = new NDArray[c.numLayers()][NAMES.length];
            for (int l = 0; l < c.numLayers(); l++) {
                for (int j = 0; j < NAMES.length; j++) {
                    NDArray a = parameters.get("model.layers." + l + "." + NAMES[j]);
                    if (a == null || !servable(a)) {
                        return null;
                    }
                    w[l][j] = a;
                }
            }
            return new Weights(w);
        }

        /** Views of layer l's weights for this step, in {@link #NAMES} order. */
        ByteBuffer[] views(int l) {
            ByteBuffer[] v = new ByteBuffer[NAMES.length];
            for (int j = 0; j < NAMES.length; j++) {
                v[j] = NativeLibraries.view(perLayer[l][j]);
            }
            return v;
        }
    }

    static boolean servable(NDArray a) {
        return servable(a.getDevice(), a.getDataType());
    }

    /** Whether the native decoder layer writes this cache: float32 or float16 in host memory. */
    static boolean servesCache(KvCache cache) {
        NDArray k = cache.keys(0);
        return servable(k.getDevice(), DataType.FLOAT32)
                && (k.getDataType() == DataType.FLOAT32 || k.getDataType() == DataType.FLOAT16);
    }

    /** The rule: float32 in host memory. A GPU tensor never reaches the C code (its memory is not the host's). */
    static boolean servable(ai.djl.Device device, DataType type) {
        return ai.djl.Device.Type.CPU.equals(device.getDeviceType()) && type == DataType.FLOAT32;
    }

    /** The page in tokens the library was compiled with (src/main/c/tg_page.h); must be {@link KvCache#PAGE}. */
    static native int pageSize();

    /**
     * out [rows, n] = x [rows, k] · w [n, k]ᵀ, split by output rows over the library's threads: the
     * decode step's vocabulary projection. All float32, contiguous, native order.
     */
    static native void project(ByteBuffer x, ByteBuffer w, ByteBuffer out, int rows, int k, int n, int threads);

    /**
     * Norm, q/k/v product, q/k norms, RoPE and q's 1/√D of one layer; writes q [B, heads, D] and this
     * step's keys and values into the cache at positions[b] (with the landmark of every page that
     * fills). x [B, H]; keys, values [B, kvh, cap, D], float32 or (f16Cache) float16, rounded to
     * nearest even as libtorch converts; marks [B, kvh, cap/PAGE, D] float32, the mean of the keys as stored.
     */
    static native void preAttention(ByteBuffer x, ByteBuffer inNorm, ByteBuffer qkv, ByteBuffer qNorm, ByteBuffer kNorm,
                                    ByteBuffer cos, ByteBuffer sin, int[] positions, ByteBuffer q,
                                    ByteBuffer keys, ByteBuffer values, ByteBuffer marks,
                                    int batch, int hidden, int heads, int kvHeads, int headDim, int cap,
                                    float eps, float scale, int threads, boolean f16Cache);

    /** x += o W_oᵀ; x += down(silu(gate(n(x))) ⊙ up(n(x))) with n the post-attention norm. o [B, heads·D]. */
    static native void postAttention(ByteBuffer x, ByteBuffer o, ByteBuffer oProj, ByteBuffer postNorm,
                                     ByteBuffer gateUp, ByteBuffer down,
                                     int batch, int hidden, int qDim, int intermediate, float eps, int threads);

    /** {@link #preAttention} with q/k/v as three packed linears (handles of {@link PackedLinear}). */
    static native void preAttentionPacked(ByteBuffer x, ByteBuffer inNorm, long[] qkv, ByteBuffer qNorm, ByteBuffer kNorm,
                                          ByteBuffer cos, ByteBuffer sin, int[] positions, ByteBuffer q,
                                          ByteBuffer keys, ByteBuffer values, ByteBuffer marks,
                                          int batch, int hidden, int heads, int kvHeads, int headDim, int cap,
                                          float eps, float scale, int threads, boolean f16Cache);

    /** {@link #postAttention} with o, gate/up (two) and down as packed linears. */
    static native void postAttentionPacked(ByteBuffer x, ByteBuffer o, long[] oProj, ByteBuffer postNorm,
                                           long[] gateUp, long[] down,
                                           int batch, int hidden, int qDim, int intermediate, float eps, int threads);

    /** A group-quantized linear from its stored arrays (see {@link PackedLinear#quantized}); never 0. */
    static native long packedQuantized(int rows, int cols, int bits, int groupSize, byte[] codes, byte[] scalesF16,
                                       byte[] signsOut, byte[] signsIn, boolean int8Activations);

    /**
     * Whether int8-activation products may use the AVX-512 VNNI kernels (true, the default) or must use
     * the portable ones (false; the same int8 arithmetic); returns whether the VNNI kernels are in use now.
     */
    static native boolean setWideVectors(boolean allow);

    /**
     * Lets float32 weight products ({@link #project}, the layers' q/k/v, o, gate/up and down) use the
     * AVX-512 kernel (true, the default) or forces the AVX2 one; returns whether the AVX-512 kernel is
     * in use now. Both sum each product in a different order; for tests and diagnosis.
     */
    static native boolean setWideFloat(boolean allow);

    /** A V:N:M linear from its stored arrays (see {@link PackedLinear#vnm}); never 0. */
    static native long packedVnm(int rows, int cols, int v, int m, float[] values, byte[] meta, byte[] columns);

    static native void packedFree(long handle);

    /** Bytes a packed linear holds in memory. */
    static native long packedBytes(long handle);

    /** out [B, rows] = x [B, cols] Wᵀ. */
    static native void packedMultiply(long handle, ByteBuffer x, int batch, ByteBuffer out, int threads);

    /** The weight [rows, cols] in the original basis into out. */
    static native void packedDequantize(long handle, ByteBuffer out, int threads);
}
