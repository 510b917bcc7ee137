package io.tailguard.model.lora;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * A LoRA's shape: rank r, alpha (the update is scaled by alpha / r, as in PEFT) and the linear
 * modules it adapts, by Hugging Face name. The default adapts all seven linear modules of every
 * layer with r = 8 and alpha = 16 (docs/algorithms.md, "DistillSparse": alpha 16 on all linear layers; the rank was not
 * published).
 */
public record LoraConfig(int rank, double alpha, List<String> targetModules) {
    /** The seven linear modules of a Qwen3 layer, in the order the model computes them. */
    public static final List<String> ALL_LINEAR =
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    public LoraConfig {
        if (rank < 1) {
            throw new IllegalArgumentException("LoRA rank must be >= 1, got " + rank);
        }
        if (!(alpha > 0) || !Double.isFinite(alpha)) {
            throw new IllegalArgumentException("LoRA alpha must be a positive number, got " + alpha);
        }
        if (targetModules == null || targetModules.isEmpty()) {
            throw new IllegalArgumentException("LoRA target modules must not be empty");
        }
        LinkedHashSet<String> seen = new LinkedHashSet<>();
        for (String m : targetModules) {
            if (!ALL_LINEAR.contains(m)) {
                throw new IllegalArgumentException("LoRA target module '" + m + "' is not one of " + ALL_LINEAR);
            }
            if (!seen.add(m)) {
                throw new IllegalArgumentException("LoRA target module '" + m + "' is listed twice");
            }
        }
        // Canonical order, so that equal configs compare equal and files list modules the same way.
        List<String> ordered = new ArrayList<>();
        for (String m : ALL_LINEAR) {
            if (seen.contains(m)) {
                ordered.add(m);
            }
        }
        targetModules = List.copyOf(ordered);
    }

    /** r = 8, alpha = 16, all linear modules. */
    public static LoraConfig defaults() {
        return new LoraConfig(8, 16, ALL_LINEAR);
    }

    /** The factor of B·A in the effective weight, alpha / r. */
    public double scale() {
        return alpha / rank;
    }

    public boolean targets(String module) {
        return targetModules.contains(module);
    }
}
