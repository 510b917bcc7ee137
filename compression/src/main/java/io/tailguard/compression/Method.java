package io.tailguard.compression;

/** How a linear layer is rounded; every method uses the same quantizer and incoherence processing. */
public enum Method {
    /** Round to nearest: no error feedback. */
    RTN,
    /** LDLQ/GPTQ: H_I = Σ x xᵀ, H_O = I. */
    LDLQ,
    /** YAQA, Sketch A: alternating Kronecker power iteration over per-token (g, x). */
    YAQA_A,
    /** YAQA, Sketch B: per-sequence gradients G_s = Σ_t g_t x_tᵀ (unbiased, one pass). */
    YAQA_B
}
