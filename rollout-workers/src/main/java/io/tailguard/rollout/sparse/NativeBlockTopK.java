package io.tailguard.rollout.sparse;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

import io.tailguard.model.NativeLibraries;

import java.nio.ByteBuffer;

/**
 * The fused native Block-Top-k kernel (src/main/c/block_topk.c): for every sequence and KV head it
 * scores the landmarks, selects the kept pages and attends over them where the KV cache holds
 * them, with no copy of any page, on the calling thread and a small pool of helper threads.
 *
 * <p>The build compiles it with the system C compiler into the jar (native/linux-x86_64/); it is
 * loaded once per JVM on Linux x86-64 with AVX2 and FMA. Where it is missing (no compiler at build
 * time, another platform) or turned off with {@code -Dtailguard.sparse.kernel=torch}, the sparse
 * kernel computes the same attention with libtorch ops instead ({@link BlockTopKAttention}).
 */
final class NativeBlockTopK {
    static final String PROPERTY = "tailguard.sparse.kernel";
    static final String RESOURCE = "/native/linux-x86_64/libtailguard_sparse.so";

    static final NativeLibraries.Library LIBRARY = NativeLibraries.load(NativeBlockTopK.class, RESOURCE, PROPERTY,
            NativeBlockTopK::pageSize);

    /**
     * Whether calls may use the kernel's AVX-512 loop where the CPU has it (the default); {@code
     * -Dtailguard.native.wide=off} keeps every call on the AVX2 loop. Both compute the same
     * attention in float32 (in another summation order); tests switch it to check both.
     */
    static volatile boolean wide = !"off".equals(System.getProperty("tailguard.native.wide", "on"));

    private NativeBlockTopK() {
    }

    /** The flags of {@link #attend} for a cache of this element type: bit 0 float16, bit 1 AVX2 only. */
    static int flags(DataType cacheType) {
        if (cacheType != DataType.FLOAT32 && cacheType != DataType.FLOAT16) {
            throw new IllegalArgumentException("the native sparse kernel reads float32 or float16 caches, not " + cacheType);
        }
        return (cacheType == DataType.FLOAT16 ? 1 : 0) | (wide ? 0 : 2);
    }

    /**
     * Whether the native kernel can serve these tensors: float32 queries and a float32 or float16
     * cache on the CPU, few enough (sequence, head) pairs.
     */
    static boolean serves(NDArray q, NDArray keys) {
        boolean cacheType = keys.getDataType() == DataType.FLOAT32
                || keys.getDataType() == DataType.FLOAT16 && keys.getShape().get(3) <= 256;
        return cacheType && serves(q.getDevice(), q.getDataType(), q.getShape().get(0) * q.getShape().get(1))
                && serves(keys.getDevice(), DataType.FLOAT32, 0);
    }

    /** The rule: float32 in host memory (never a GPU tensor), fewer than 65,536 (sequence, head) pairs. */
    static boolean serves(ai.djl.Device device, DataType type, long pairs) {
        return ai.djl.Device.Type.CPU.equals(device.getDeviceType()) && type == DataType.FLOAT32 && pairs < 65_536;
    }

    /** Whether this CPU runs the AVX-512 loop (F, BW, DQ, VL). */
    static native boolean wideVectors();

    /** The page in tokens the library was compiled with (model/src/main/c/tg_page.h); must be KvCache.PAGE. */
    static native int pageSize();

    /**
     * Sparse attention of one layer. keys, values [B, kvh, cap, D], float32 or float16 ({@link
     * #flags}); marks [B, kvh, cap/PAGE, D] float32; q and out [B, kvh, r, D] float32; lengths[b]
     * tokens of sequence b; keep[b] pages it keeps (≥ its page count: all of them). Writes out.
     */
    static native void attend(ByteBuffer keys, ByteBuffer values, ByteBuffer marks, ByteBuffer q, ByteBuffer out,
                              int[] lengths, int[] keep, int batch, int kvh, int r, int d, int cap, int threads, int flags);
}
