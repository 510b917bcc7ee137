/**
 * Post-training compression of Qwen3 checkpoints: YAQA adaptive rounding and its baselines
 * (docs/algorithms.md, "YAQA, LDLQ and RTN"), and V:N:M sparsity (docs/algorithms.md, "V:N:M sparsity"). Engine only; the actor, the {@code compress} CLI and
 * the V:N:M LoRA recovery (which trains, so needs {@code learner}) live in {@code actors}.
 *
 * <p>V:N:M choices where §8 leaves a detail open:
 * <ul>
 *   <li>A block's 4 columns are the best of the C(M, 4) choices scored by what the block finally
 *       keeps after 2:4 (not by plain column sums), so each block gets its best mask
 *       ({@link io.tailguard.compression.VnmSelector}); ties go to the lower columns.</li>
 *   <li>Columns that do not fill a last block form a narrower block (zero-padded on disk); rows are
 *       not padded: V must divide every layer's rows.</li>
 *   <li>Scores: |W|, or |W|·‖x‖ with ‖x‖ per input channel over the calibration tokens of the
 *       original model.</li>
 *   <li>Permutation: only what folds exactly (see {@link io.tailguard.compression.VnmPruner}); the
 *       search frees one column per block and reassigns by the Hungarian method, keeping a round
 *       only if the exact objective (column side and row side) rises.</li>
 *   <li>V and M: the memory-traffic speedup model and the diversity rule of
 *       {@link io.tailguard.compression.VnmHeuristic}.</li>
 *   <li>Kept values are stored as float32 (the model's precision), so loading is exact.</li>
 * </ul>
 *
 * <p>YAQA choices where §7 leaves a detail open:
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
