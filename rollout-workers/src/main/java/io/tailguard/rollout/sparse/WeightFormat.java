package io.tailguard.rollout.sparse;

import io.tailguard.model.ModelConfig;
import io.tailguard.model.Projection;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The weights a rollout decodes with, as far as the {@link CostModel} prices them: the policy's own
 * float32 weights ({@link #plain()}), group-quantized linears at {@code bits} bits with a float16
 * step per {@code groupSize} input columns ({@link #quantized}), a V:N:M pattern ({@link #vnm}), or
 * float weights of another width (a copy of the policy, {@link #dense}). Only the decoder linears are
 * compressed; the embedding (the LM head when tied), the norms and everything else stay float32.
 *
 * <p>{@link #weightBytes} is what the native decoder holds and reads per decode step for each
 * format (model/src/main/c/tg_packed.h, {@code lin_bytes}), one packed linear per Hugging Face
 * module: quantized, rows · ⌈cols·bits/8⌉ code bytes (every row starts on a byte), 2 · rows ·
 * ⌈cols/group⌉ bytes of float16 steps and ⌈rows/8⌉ + ⌈cols/8⌉ bytes of sign bits; V:N:M with
 * cb = ⌈cols/M⌉ column blocks, 4 · rows · cb · N bytes of float32 kept values, rows · ⌈cb/2⌉ bytes
 * of 2:4 positions (4 bits per block) and rows/V · cb · 4 one-byte column offsets.
 *
 * <p>{@code cacheBits} is the element width of the KV cache the option decodes on: 32, or 16 for a
 * float16 cache ({@link #withHalfCache}, labelled "+kv16"), which the cost model prices at 2 bytes per
 * key and value ({@link CostModel#withKvBytes}). A rollout option is the pair: weights and cache.
 */
public record WeightFormat(Kind kind, String label, int bits, int groupSize, int v, int n, int m, int cacheBits) {
    /** The compression worker's group size (compression's YaqaQuantizer.DEFAULT_GROUP_SIZE). */
    public static final int GROUP_SIZE = 32;
    private static final Pattern VNM = Pattern.compile("vnm_(\\d+)_(\\d+)_(\\d+)");
    /** What a float16-cache option's label adds to its weights' label. */
    public static final String HALF_CACHE = "+kv16";

    public enum Kind { PLAIN, QUANTIZED, VNM, DENSE }

    public WeightFormat {
        if (label == null || label.isBlank()) {
            throw new IllegalArgumentException("weight format: a label is needed");
        }
        switch (kind) {
            case QUANTIZED -> {
                if (bits < 2 || bits > 8 || groupSize < 1) {
                    throw new IllegalArgumentException("weight format " + label + ": quantized needs bits in 2..8 and a group size >= 1, got "
                            + bits + " bits, group " + groupSize);
                }
            }
            case VNM -> {
                if (v < 1 || n < 1 || m < 4 || n > 4) {
                    throw new IllegalArgumentException("weight format " + label + ": not a V:N:M pattern: " + v + ":" + n + ":" + m);
                }
            }
            case DENSE -> {
                if (bits < 1 || bits > 32) {
                    throw new IllegalArgumentException("weight format " + label + ": bits must be in 1..32, got " + bits);
                }
            }
            default -> {
            }
        }
        if (cacheBits != 32 && cacheBits != 16) {
            throw new IllegalArgumentException("weight format " + label + ": the KV cache is 32 or 16 bits, got " + cacheBits);
        }
    }

    /** The policy's own float32 weights. */
    public static WeightFormat plain() {
        return new WeightFormat(Kind.PLAIN, "plain", 32, 0, 0, 0, 0, 32);
    }

    public static WeightFormat quantized(String label, int bits, int groupSize) {
        return new WeightFormat(Kind.QUANTIZED, label, bits, groupSize, 0, 0, 0, 32);
    }

    public static WeightFormat vnm(String label, int v, int n, int m) {
        return new WeightFormat(Kind.VNM, label, 32, 0, v, n, m, 32);
    }

    public static WeightFormat dense(String label, int bits) {
        return new WeightFormat(Kind.DENSE, label, bits, 0, 0, 0, 0, 32);
    }

    /**
     * A compressed version as the compression worker names it: method {@code vnm_V_N_M} is that
     * V:N:M pattern; any other method at 2..8 bits is group-quantized ({@link #GROUP_SIZE}), labelled
     * method + bits ("yaqa_b4"); at more bits, float weights of that width. The label names the
     * format in leases, status and metrics: versions of one label replace each other.
     */
    public static WeightFormat of(String method, int bits) {
        Matcher vnm = VNM.matcher(method);
        if (vnm.matches()) {
            return vnm(method, Integer.parseInt(vnm.group(1)), Integer.parseInt(vnm.group(2)), Integer.parseInt(vnm.group(3)));
        }
        String label = method + bits;
        return bits <= 8 ? quantized(label, bits, GROUP_SIZE) : dense(label, bits);
    }

    /** The policy's own float32 weights on a float32 cache: what a run falls back to. */
    public boolean isPlain() {
        return kind == Kind.PLAIN && cacheBits == 32;
    }

    /** The policy's own float32 weights (on either cache). */
    public boolean ownWeights() {
        return kind == Kind.PLAIN;
    }

    /** The same weights on a float16 KV cache, labelled with {@link #HALF_CACHE}. */
    public WeightFormat withHalfCache() {
        if (cacheBits == 16) {
            return this;
        }
        return new WeightFormat(kind, label + HALF_CACHE, bits, groupSize, v, n, m, 16);
    }

    /** The same weights on a float32 KV cache (the label without {@link #HALF_CACHE}). */
    public WeightFormat weights() {
        if (cacheBits == 32) {
            return this;
        }
        return new WeightFormat(kind, label.substring(0, label.length() - HALF_CACHE.length()), bits, groupSize, v, n, m, 32);
    }

    /** Bytes per key or value element in the option's KV cache. */
    public int cacheBytes() {
        return cacheBits / 8;
    }

    /** Bytes of every weight a decode step reads: the decoder linears in this format, everything else float32. */
    public double weightBytes(ModelConfig c) {
        long all = c.parameterCount();
        long linearParams = 0;
        double linearBytes = 0;
        for (Projection p : Projection.values()) {
            for (String module : p.modules()) {
                long[] s = Projection.shape(c, module);
                linearParams += s[0] * s[1];
                linearBytes += moduleBytes(s[0], s[1]);
            }
        }
        return CostModel.BYTES_PER_VALUE * (double) (all - c.numLayers() * linearParams) + c.numLayers() * linearBytes;
    }

    /** Bytes of one [rows, cols] linear in this format. */
    double moduleBytes(long rows, long cols) {
        return switch (kind) {
            case PLAIN -> CostModel.BYTES_PER_VALUE * (double) rows * cols;
            case DENSE -> rows * Math.ceil(cols * bits / 8.0);
            case QUANTIZED -> rows * Math.ceil(cols * bits / 8.0) + 2.0 * rows * Math.ceil(cols / (double) groupSize)
                    + Math.ceil(rows / 8.0) + Math.ceil(cols / 8.0);
            case VNM -> {
                double cb = Math.ceil(cols / (double) m);
                yield 4.0 * rows * cb * n + rows * Math.ceil(cb / 2) + Math.floor(rows / (double) v) * cb * 4;
            }
        };
    }

    @Override
    public String toString() {
        String w = switch (kind) {
            case PLAIN -> "plain";
            case QUANTIZED -> String.format(Locale.ROOT, "%s (%d-bit, group %d)", label, bits, groupSize);
            case VNM -> String.format(Locale.ROOT, "%s (V:N:M %d:%d:%d)", label, v, n, m);
            case DENSE -> String.format(Locale.ROOT, "%s (%d-bit)", label, bits);
        };
        return cacheBits == 16 ? w + ", float16 KV cache" : w;
    }
}
