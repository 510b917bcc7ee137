package io.tailguard.model;

import java.util.List;

/**
 * The four weight products of a decoder layer, as the model computes them: q/k/v and gate/up are
 * fused into one product each. {@link #modules()} lists the Hugging Face modules a product stacks,
 * in row order (rows of q, then k, then v; gate, then up).
 */
public enum Projection {
    QKV("self_attn", List.of("q_proj", "k_proj", "v_proj")),
    O("self_attn", List.of("o_proj")),
    GATE_UP("mlp", List.of("gate_proj", "up_proj")),
    DOWN("mlp", List.of("down_proj"));

    private final String block;
    private final List<String> modules;

    Projection(String block, List<String> modules) {
        this.block = block;
        this.modules = modules;
    }

    /** The Hugging Face sub-module that holds these weights: {@code self_attn} or {@code mlp}. */
    public String block() {
        return block;
    }

    /** Hugging Face module names in row order. */
    public List<String> modules() {
        return modules;
    }

    /** Output rows of one module of this product, [out, in] as Hugging Face stores it. */
    public static long[] shape(ModelConfig c, String module) {
        long h = c.hiddenSize();
        long qw = (long) c.numHeads() * c.headDim();
        long kw = (long) c.numKvHeads() * c.headDim();
        long i = c.intermediateSize();
        return switch (module) {
            case "q_proj" -> new long[] {qw, h};
            case "k_proj", "v_proj" -> new long[] {kw, h};
            case "o_proj" -> new long[] {h, qw};
            case "gate_proj", "up_proj" -> new long[] {i, h};
            case "down_proj" -> new long[] {h, i};
            default -> throw new IllegalArgumentException("not a Qwen3 linear module: " + module);
        };
    }

    /** The product a Hugging Face module belongs to. */
    public static Projection of(String module) {
        for (Projection p : values()) {
            if (p.modules.contains(module)) {
                return p;
            }
        }
        throw new IllegalArgumentException("not a Qwen3 linear module: " + module);
    }
}
