/**
 * Post-training compression of Qwen3 checkpoints (ALGORITHMS.md §7): YAQA adaptive rounding and
 * its baselines. Engine only; the actor and the {@code compress} CLI live in {@code actors}.
 *
 * <p>Choices where §7 leaves a detail open:
 * <ul>
 *   <li>Quantizer: uniform mid-rise grid, one float16 step per row per group of 32 input columns
 *       (0.5 bit/weight of scales), step = Gaussian-optimal uniform step × the group's RMS in the
 *       rotated basis, fixed before rounding; codes clamp at the grid ends. 2..8 bits.</li>
 *   <li>Incoherence: random ±1 signs on both sides, then an orthonormal Sylvester Hadamard; a
 *       dimension that is not a power of two gets a block-diagonal Hadamard whose block is the
 *       largest power of two dividing it (1536 → 3 × 512), no padding. RTN and LDLQ get the same.</li>
 *   <li>Factors: symmetrised, divided by their mean diagonal, damped with 0.01·I, the damping
 *       doubled until Cholesky succeeds; block LDL with 16 × 16 blocks from the Cholesky factor.</li>
 *   <li>Hessians are collected on the original model (not re-collected as layers are quantized);
 *       labels are sampled once per sequence from a seeded stream, so Sketch A's passes see the
 *       same labels. Sketch A runs one power-iteration round (H_O, then H_I) after H_I = Σ x xᵀ.</li>
 *   <li>Only decoder linear layers are quantized; embeddings, norms and lm_head stay float32.</li>
 * </ul>
 */
package io.tailguard.compression;
