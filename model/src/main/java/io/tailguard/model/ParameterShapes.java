package io.tailguard.model;

import java.util.LinkedHashMap;
import java.util.Map;

/** Every tensor a Qwen3 checkpoint holds, by Hugging Face name, with its shape, in a stable order. */
public final class ParameterShapes {
    private ParameterShapes() {}

    public static Map<String, long[]> of(ModelConfig c) {
        long h = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long i = c.intermediateSize();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {c.vocabSize(), h});
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {h});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {q, h});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {kv, h});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {kv, h});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {h, q});
            shapes.put(p + "self_attn.q_norm.weight", new long[] {c.headDim()});
            shapes.put(p + "self_attn.k_norm.weight", new long[] {c.headDim()});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {h});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {i, h});
            shapes.put(p + "mlp.up_proj.weight", new long[] {i, h});
            shapes.put(p + "mlp.down_proj.weight", new long[] {h, i});
        }
        shapes.put("model.norm.weight", new long[] {h});
        if (!c.tieWordEmbeddings()) {
            shapes.put("lm_head.weight", new long[] {c.vocabSize(), h});
        }
        return shapes;
    }

    /** True for the RMSNorm gains, which start at one rather than random. */
    public static boolean isNorm(String name) {
        return name.endsWith("norm.weight") || name.endsWith("layernorm.weight");
    }
}
