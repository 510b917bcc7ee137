/*
 * The AVX2 GEMM micro-kernels of the training step's kernels (train_step.c, vocab_step.c):
 * C (+)= A B over one tile of at most 6 rows and 16 columns, B and C row-major, A read by strides
 * (A(r, p) = A[r sr + p sp], so row-major A and transposed A take the same kernel, without a copy).
 * Each library keeps its own driver around them (how it walks the tiles and splits the depth
 * decides the order of the sums, so the drivers are not shared).
 *
 * Every output element is Σ_p A(r, p) B[p][c] accumulated in p order with fused multiply-adds
 * from zero, then added to C when acc: the same sums whichever kernel computes a tile.
 *
 * Header-only and static, like tg_pool.h.
 */
#ifndef TG_GEMM_H
#define TG_GEMM_H

#include <immintrin.h>

static inline __m256i tg_tail_mask(int w) {   /* first w of 8 lanes, w in [0, 8] */
    static const int lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *) (lanes + 8 - w));
}

/*
 * C[rows][w] = (acc ? C : 0) + Σ_p A(r, p) B[p][0..w) over depth k; rows <= 6, w <= 16.
 * edge = 0 is a full tile of `rows` rows and 16 columns with plain loads and stores; edge = 1 masks
 * the columns past w. Always inlined with constant rows and edge, so each call site compiles to its
 * own loop with the accumulators in registers: twelve for six rows (of the 16 registers), which
 * keep both FMA units busy through the FMA latency where the eight of four rows leave them waiting;
 * each B row loaded feeds 2 rows FMAs. Rows a tile does not have read row 0 again; their sums are
 * never stored (and with constant rows the compiler drops them). The twelve accumulators are
 * written out by name: a loop over an array of them is shorter to read but compiles to other
 * instruction sequences than the ones these kernels were measured with.
 */
static inline __attribute__((always_inline)) void tg_tile(int rows, int w, int k, const float *A, long sr, long sp,
                                                          const float *B, long ldb, float *C, long ldc, int acc,
                                                          int edge) {
    __m256i m0 = tg_tail_mask(w < 8 ? w : 8), m1 = tg_tail_mask(w > 8 ? w - 8 : 0);
    const float *a0 = A, *a1 = A + (rows > 1 ? sr : 0), *a2 = A + (rows > 2 ? 2 * sr : 0);
    const float *a3 = A + (rows > 3 ? 3 * sr : 0), *a4 = A + (rows > 4 ? 4 * sr : 0), *a5 = A + (rows > 5 ? 5 * sr : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *b = B + p * ldb;
        long o = p * sp;
        __m256 b0 = edge ? _mm256_maskload_ps(b, m0) : _mm256_loadu_ps(b);
        __m256 b1 = edge ? _mm256_maskload_ps(b + 8, m1) : _mm256_loadu_ps(b + 8);
        __m256 x = _mm256_broadcast_ss(a0 + o);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + o);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + o);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + o);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4 + o);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5 + o);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 c[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < rows; r++) {
        float *out = C + r * ldc;
        if (edge) {
            if (acc) {
                c[r][0] = _mm256_add_ps(c[r][0], _mm256_maskload_ps(out, m0));
                c[r][1] = _mm256_add_ps(c[r][1], _mm256_maskload_ps(out + 8, m1));
            }
            _mm256_maskstore_ps(out, m0, c[r][0]);
            _mm256_maskstore_ps(out + 8, m1, c[r][1]);
        } else {
            if (acc) {
                c[r][0] = _mm256_add_ps(c[r][0], _mm256_loadu_ps(out));
                c[r][1] = _mm256_add_ps(c[r][1], _mm256_loadu_ps(out + 8));
            }
            _mm256_storeu_ps(out, c[r][0]);
            _mm256_storeu_ps(out + 8, c[r][1]);
        }
    }
}

/*
 * The same tile on AVX-512 (where the CPU has it; tg_avx512 says): rows <= 6 and w <= 32 columns,
 * twelve 16-lane accumulators, columns past w masked. Each output element is the same sum as
 * tg_tile's (Σ_p in p order with fused multiply-adds from zero, then C added when acc), so the two
 * give the same bits; this one does twice the multiply-adds per instruction. Inlined with constant
 * rows into a caller compiled for AVX-512 (TG_AVX512).
 */
#define TG_AVX512 __attribute__((target("avx512f")))

static inline int tg_avx512(void) {
    static int has = -1;
    if (has < 0) has = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return has;
}

static inline __attribute__((always_inline)) TG_AVX512 void tg_tile512(int rows, int w, int k, const float *A, long sr,
                                                                       long sp, const float *B, long ldb, float *C,
                                                                       long ldc, int acc) {
    __mmask16 m0 = (__mmask16) (w >= 16 ? 0xFFFF : (1u << w) - 1u);
    __mmask16 m1 = (__mmask16) (w <= 16 ? 0 : w >= 32 ? 0xFFFF : (1u << (w - 16)) - 1u);
    const float *a0 = A, *a1 = A + (rows > 1 ? sr : 0), *a2 = A + (rows > 2 ? 2 * sr : 0);
    const float *a3 = A + (rows > 3 ? 3 * sr : 0), *a4 = A + (rows > 4 ? 4 * sr : 0), *a5 = A + (rows > 5 ? 5 * sr : 0);
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *b = B + p * ldb;
        long o = p * sp;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        __m512 x = _mm512_set1_ps(a0[o]);
        c00 = _mm512_fmadd_ps(x, b0, c00);
        c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(a1[o]);
        c10 = _mm512_fmadd_ps(x, b0, c10);
        c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(a2[o]);
        c20 = _mm512_fmadd_ps(x, b0, c20);
        c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(a3[o]);
        c30 = _mm512_fmadd_ps(x, b0, c30);
        c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(a4[o]);
        c40 = _mm512_fmadd_ps(x, b0, c40);
        c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(a5[o]);
        c50 = _mm512_fmadd_ps(x, b0, c50);
        c51 = _mm512_fmadd_ps(x, b1, c51);
    }
    __m512 c[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < rows; r++) {
        float *out = C + r * ldc;
        if (acc) {
            c[r][0] = _mm512_add_ps(c[r][0], _mm512_maskz_loadu_ps(m0, out));
            c[r][1] = _mm512_add_ps(c[r][1], _mm512_maskz_loadu_ps(m1, out + 16));
        }
        _mm512_mask_storeu_ps(out, m0, c[r][0]);
        _mm512_mask_storeu_ps(out + 16, m1, c[r][1]);
    }
}

#endif
