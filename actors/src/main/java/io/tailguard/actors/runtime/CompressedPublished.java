package io.tailguard.actors.runtime;

/**
 * The compression worker wrote compressed policy version {@code version} as a packed checkpoint
 * directory at {@code uri} in the checkpoint store ({@code store/compressed/v000010-yaqa_b4/}, or
 * {@code v000010-vnm_64_2_5/} for V:N:M, method vnm_64_2_5 with its F32 values' 32 bits);
 * {@code sha256} is that of its manifest.json, which holds the sha256 of every file. method and bits
 * say what it is; kl is its KL per token to the policy on held-out prompts. The controller offers it
 * as the compressed rollout option and names it in the leases that use it; workers load it from the
 * store. Weights never travel in a message.
 */
public record CompressedPublished(long version, String uri, String sha256, String method, int bits, double kl)
        implements Wire, Controller.Command {

    /**
     * The weight format, as the cost model prices it and the controller keeps its options: versions
     * of one format (method and bits, or the V:N:M pattern) replace each other.
     */
    public io.tailguard.rollout.sparse.WeightFormat format() {
        return io.tailguard.rollout.sparse.WeightFormat.of(method, bits);
    }

    /** "v10 yaqa_b 4-bit", or "v10 vnm_64_2_5" for a V:N:M pattern (its values are not quantized), for logs and status. */
    public String describe() {
        return "v" + version + " " + method + (method.startsWith("vnm_") ? "" : " " + bits + "-bit");
    }
}
