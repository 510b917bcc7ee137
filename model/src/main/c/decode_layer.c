/*
 * The decoder layer of one decode step, everything but attention, for float32 on the CPU
 * (docs/algorithms.md, "The policy model (Qwen3)"; Qwen3Model.decode calls it when the library is loaded).
 *
 * At decode sizes (a few rows of activations against megabytes of weights) a layer is bound by
 * reading its weights once, and by the fixed cost of every tensor op: through libtorch a layer is
 * some 35 ops, each with its own dispatch and parallel region. Here a layer is two calls:
 *
 *   pre_attention   x̂ = RMSNorm(x) · w_in;  [q k v] = x̂ W_qkvᵀ;  per head RMSNorm (q_norm / k_norm),
 *                   RoPE (rotate half), q · 1/√D; k and v written into the KV cache at each
 *                   sequence's position, and the landmark (mean key) of every page this completes.
 *   post_attention  x += o W_oᵀ;  x̂ = RMSNorm(x) · w_post;  a = silu(x̂ W_gateᵀ) ⊙ (x̂ W_upᵀ);
 *                   x += a W_downᵀ.
 *
 * The weight products are split by output rows over the calling thread and the pool's helpers
 * (tg_pool.h); each rows block is read from memory once and reused from cache for every sequence.
 * Layouts (row-major, float32, contiguous) are the model's: weights [out, in] as Hugging Face stores
 * them, q/k/v rows stacked (heads·D, kvh·D, kvh·D), gate/up stacked (I, I); x [B, H]; q out
 * [B, heads, D] (= [B, kvh, r, D]); keys, values [B, kvh, cap, D]; landmarks [B, kvh, cap/PAGE, D];
 * cos, sin [positions, D].
 *
 * Built with -mavx2 -mfma; the Java side (NativeDecode) loads it only on a CPU that has both.
 */
#include <jni.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_page.h"
#include "tg_pool.h"
#include "tg_util.h"
#include "tg_packed.h"

__m256 _ZGVdN8v_expf(__m256 x);   /* glibc's libmvec, AVX2 */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

/* Scratch shared by the phases of one call (the call mutex guards it). */
static float *s_norm, *s_rows, *s_gate, *s_up;
static size_t c_norm, c_rows, c_gate, c_up;

/* ------------------------------------------------------------------------------ weight products */

/*
 * out[b * ldo + n] = (add ? out[b * ldo + n] : 0) + x[b] · W[n] for n in [n0, n1), b in [0, B):
 * four weight rows at a time, each read from memory once and from cache for every later b.
 *
 * Sequences go in pairs: each weight vector loaded feeds two FMAs (one per sequence), 8 accumulators
 * of 4 rows x 2 sequences. One sequence at a time needs a load per FMA, and at batch 8 the loads
 * from L1, not memory, bounded the product (about 6 GB/s of weights per core on this project's CI
 * VM; with pairs Qwen3's vocabulary projection at batch 8 went from 50 to 40 ms, 15 GB/s).
 */
static void gemv_rows(const float *x, int B, int K, const float *W, int n0, int n1, float *out, int ldo, int add) {
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *w0 = W + (long) n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        int b = 0;
        for (; b + 2 <= B; b += 2) {
            const float *xa = x + (long) b * K, *xb = xa + K;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                __m256 x0 = _mm256_loadu_ps(xa + k), x1 = _mm256_loadu_ps(xb + k);
                __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k);
                __m256 v2 = _mm256_loadu_ps(w2 + k), v3 = _mm256_loadu_ps(w3 + k);
                a0 = _mm256_fmadd_ps(v0, x0, a0);
                a1 = _mm256_fmadd_ps(v1, x0, a1);
                a2 = _mm256_fmadd_ps(v2, x0, a2);
                a3 = _mm256_fmadd_ps(v3, x0, a3);
                c0 = _mm256_fmadd_ps(v0, x1, c0);
                c1 = _mm256_fmadd_ps(v1, x1, c1);
                c2 = _mm256_fmadd_ps(v2, x1, c2);
                c3 = _mm256_fmadd_ps(v3, x1, c3);
            }
            float r[8] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3), hsum(c0), hsum(c1), hsum(c2), hsum(c3)};
            for (; k < K; k++) {
                r[0] += xa[k] * w0[k]; r[1] += xa[k] * w1[k]; r[2] += xa[k] * w2[k]; r[3] += xa[k] * w3[k];
                r[4] += xb[k] * w0[k]; r[5] += xb[k] * w1[k]; r[6] += xb[k] * w2[k]; r[7] += xb[k] * w3[k];
            }
            float *oa = out + (long) b * ldo + n, *ob = oa + ldo;
            if (add) {
                oa[0] += r[0]; oa[1] += r[1]; oa[2] += r[2]; oa[3] += r[3];
                ob[0] += r[4]; ob[1] += r[5]; ob[2] += r[6]; ob[3] += r[7];
            } else {
                oa[0] = r[0]; oa[1] = r[1]; oa[2] = r[2]; oa[3] = r[3];
                ob[0] = r[4]; ob[1] = r[5]; ob[2] = r[6]; ob[3] = r[7];
            }
        }
        for (; b < B; b++) {
            const float *xb = x + (long) b * K;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
            int k = 0;
            for (; k + 16 <= K; k += 16) {
                __m256 x0 = _mm256_loadu_ps(xb + k), x1 = _mm256_loadu_ps(xb + k + 8);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
                c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), x1, c0);
                c1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), x1, c1);
                c2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), x1, c2);
                c3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), x1, c3);
            }
            for (; k + 8 <= K; k += 8) {
                __m256 x0 = _mm256_loadu_ps(xb + k);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
            }
            float r0 = hsum(_mm256_add_ps(a0, c0)), r1 = hsum(_mm256_add_ps(a1, c1));
            float r2 = hsum(_mm256_add_ps(a2, c2)), r3 = hsum(_mm256_add_ps(a3, c3));
            for (; k < K; k++) {
                r0 += xb[k] * w0[k];
                r1 += xb[k] * w1[k];
                r2 += xb[k] * w2[k];
                r3 += xb[k] * w3[k];
            }
            float *o = out + (long) b * ldo + n;
            if (add) {
                o[0] += r0; o[1] += r1; o[2] += r2; o[3] += r3;
            } else {
                o[0] = r0; o[1] = r1; o[2] = r2; o[3] = r3;
            }
        }
    }
    for (; n < n1; n++) {
        const float *w = W + (long) n * K;
        for (int b = 0; b < B; b++) {
            float r = dot(x + (long) b * K, w, K);
            float *o = out + (long) b * ldo + n;
            *o = add ? *o + r : r;
        }
    }
}

/*
 * The same product on AVX-512 (checked once at run time; gemv_allow_wide = 0 turns it off): rows in
 * blocks of three, every sequence of a group of up to eight in one pass over them, so each weight
 * vector loaded feeds up to eight FMAs and the block's rows stream from memory once, the next block
 * prefetched while this one is summed. At Qwen3-0.6B's gate/up shape (6144 × 1024, batch 8, 1.5 GB
 * of weights) on the project's Intel VM: 16 GB/s for gemv_rows above, 21 GB/s for this (both threads).
 */
#define GEMV_WIDE __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

static int gemv_allow_wide = 1;

/* rows [n, n + R) of W against sequences [0, NB) of x (R ≤ 3, NB ≤ 8: compile-time after inlining) */
static inline __attribute__((always_inline)) GEMV_WIDE void gemv_block_wide(const float *x, int K, const float *W, int n,
                                                                            float *out, int ldo, int add, const int R,
                                                                            const int NB) {
    __m512 acc[3][8];
    for (int r = 0; r < R; r++) {
        for (int b = 0; b < NB; b++) acc[r][b] = _mm512_setzero_ps();
    }
    const float *w = W + (long) n * K;
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[3];
        for (int r = 0; r < R; r++) {
            wv[r] = _mm512_loadu_ps(w + (long) r * K + k);
            _mm_prefetch((const char *) (w + (long) (r + R) * K + k), _MM_HINT_T0);   /* never faults */
        }
        for (int b = 0; b < NB; b++) {
            __m512 xv = _mm512_loadu_ps(x + (long) b * K + k);
            for (int r = 0; r < R; r++) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
        }
    }
    __mmask16 tail = (__mmask16) ((1u << (K - k)) - 1);
    if (tail) {
        __m512 wv[3];
        for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_ps(tail, w + (long) r * K + k);
        for (int b = 0; b < NB; b++) {
            __m512 xv = _mm512_maskz_loadu_ps(tail, x + (long) b * K + k);
            for (int r = 0; r < R; r++) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
        }
    }
    for (int b = 0; b < NB; b++) {
        float *o = out + (long) b * ldo + n;
        for (int r = 0; r < R; r++) {
            float v = _mm512_reduce_add_ps(acc[r][b]);
            o[r] = add ? o[r] + v : v;
        }
    }
}

#define GEMV_GROUP(NB)                                                                                     \
    do {                                                                                                   \
        int n = n0;                                                                                        \
        for (; n + 3 <= n1; n += 3) gemv_block_wide(xg, K, W, n, og, ldo, add, 3, NB);                     \
        for (; n < n1; n++) gemv_block_wide(xg, K, W, n, og, ldo, add, 1, NB);                             \
    } while (0)

static GEMV_WIDE void gemv_rows_wide(const float *x, int B, int K, const float *W, int n0, int n1, float *out, int ldo,
                                     int add) {
    for (int b0 = 0; b0 < B; b0 += 8) {
        const float *xg = x + (long) b0 * K;
        float *og = out + (long) b0 * ldo;
        switch (B - b0 < 8 ? B - b0 : 8) {
            case 1: GEMV_GROUP(1); break;
            case 2: GEMV_GROUP(2); break;
            case 3: GEMV_GROUP(3); break;
            case 4: GEMV_GROUP(4); break;
            case 5: GEMV_GROUP(5); break;
            case 6: GEMV_GROUP(6); break;
            case 7: GEMV_GROUP(7); break;
            default: GEMV_GROUP(8); break;
        }
    }
}

/* out rows [n0, n1) = x · W[n0, n1)ᵀ (+ out where add), on the widest kernel allowed */
static void gemv_range(const float *x, int B, int K, const float *W, int n0, int n1, float *out, int ldo, int add) {
    if (gemv_allow_wide && tg_cpu_avx512()) {
        gemv_rows_wide(x, B, K, W, n0, n1, out, ldo, add);
    } else {
        gemv_rows(x, B, K, W, n0, n1, out, ldo, add);
    }
}

typedef struct {
    const float *x;
    const float *W;
    float *out;
    int B, K, N, ldo, add, chunk;
} Gemv;

static void gemv_item(void *ctx, int item, int worker) {
    (void) worker;
    const Gemv *g = ctx;
    int n0 = item * g->chunk;
    int n1 = n0 + g->chunk < g->N ? n0 + g->chunk : g->N;
    gemv_range(g->x, g->B, g->K, g->W, n0, n1, g->out, g->ldo, g->add);
}

/* Rows per work item: about four items per thread, a multiple of 12 (whole blocks of either kernel), at least 24. */
static int chunk_for(int n, int threads) {
    int c = (n + 4 * threads - 1) / (4 * threads);
    c = (c + 11) / 12 * 12;
    if (c < 24) c = 24;
    while ((n + c - 1) / c > TG_MAX_ITEMS) c *= 2;
    return c;
}

static void gemv(const float *x, int B, int K, const float *W, int N, float *out, int ldo, int add, int threads) {
    Gemv g = {x, W, out, B, K, N, ldo, add, chunk_for(N, threads)};
    tg_run(gemv_item, &g, (N + g.chunk - 1) / g.chunk, threads);
}

/*
 * out = silu(gate) ⊙ up over n values; out may be gate (in place). The SwiGLU of decode and prefill,
 * float32 or packed weights alike (the training step's twin rounds σ on its own: train_step.c).
 */
static void swiglu(float *out, const float *gate, const float *up, long n) {
    __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(gate + i);
        __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(zero, v));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* gate and up rows i of one block, then a = silu(gate) ⊙ up in place of gate. */
typedef struct {
    const float *x;
    const float *W;   /* [2I, K]: gate rows, then up rows */
    float *gate, *up; /* [B, I] */
    int B, K, I, chunk;
} GateUp;

static void gate_up_item(void *ctx, int item, int worker) {
    (void) worker;
    const GateUp *g = ctx;
    int i0 = item * g->chunk;
    int i1 = i0 + g->chunk < g->I ? i0 + g->chunk : g->I;
    gemv_range(g->x, g->B, g->K, g->W, i0, i1, g->gate, g->I, 0);
    gemv_range(g->x, g->B, g->K, g->W + (long) g->I * g->K, i0, i1, g->up, g->I, 0);
    for (int b = 0; b < g->B; b++) {
        float *gb = g->gate + (long) b * g->I + i0;
        swiglu(gb, gb, g->up + (long) b * g->I + i0, i1 - i0);
    }
}

/* --------------------------------------------------------------------------- small pointwise ops */

/* y = x / sqrt(mean(x²) + eps) · w over n values */
static void rms_norm(const float *x, const float *w, float *y, int n, float eps) {
    __m256 s0 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(v, v, s0);
    }
    float s = hsum(s0);
    for (; i < n; i++) s += x[i] * x[i];
    float inv = 1.0f / sqrtf(s / (float) n + eps);
    for (i = 0; i < n; i++) y[i] = x[i] * inv * w[i];
}

/* One head: y = RoPE(RMSNorm(x) · w) · scale, rotate-half form, d even. */
static void head_norm_rope(const float *x, const float *w, const float *cos, const float *sin,
                           int d, float eps, float scale, float *y, float *tmp) {
    rms_norm(x, w, tmp, d, eps);
    int half = d / 2;
    for (int i = 0; i < half; i++) {
        y[i] = (tmp[i] * cos[i] - tmp[i + half] * sin[i]) * scale;
        y[i + half] = (tmp[i + half] * cos[i + half] + tmp[i] * sin[i + half]) * scale;
    }
}

/*
 * out[B, N] = x[B, K] · W[N, K]ᵀ: the vocabulary projection of a decode step (lm_head, where N is
 * the vocabulary: 151,936 rows for Qwen3, more weight bytes than any layer). At B = 8 on a quiet
 * 2-vCPU host, libtorch's GEMM took 105-113 ms for Qwen3's, gemv 40 ms. No scratch; the call mutex
 * serializes the pool's use (tg_pool.h).
 */
JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_project(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jobject outBuf, jint B, jint K, jint N, jint threads) {
    (void) cls;
    const float *x, *w;
    float *out;
    if (!(x = addr(env, xBuf, "x")) || !(w = addr(env, wBuf, "weight")) || !(out = addr(env, outBuf, "out"))) return;
    pthread_mutex_lock(&call_mu);
    gemv(x, B, K, w, N, out, N, 0, threads);
    pthread_mutex_unlock(&call_mu);
}

/* --------------------------------------------------------------------------------------- JNI */

static void oom(JNIEnv *env) {
    throw_new(env, "java/lang/OutOfMemoryError", "native decode scratch");
}

JNIEXPORT jint JNICALL Java_io_tailguard_model_NativeDecode_pageSize(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    return PAGE;
}


/* ----------------------------------------------------------------------------- layer bodies */

/* One weight product of a layer: a float32 matrix, or packed parts stacked by rows (q, k, v; gate, up). */
typedef struct {
    const float *W;
    Lin *parts[3];
    int n;
} Prod;

/* out[b · ldo + n] = (add ? out : 0) + x_b · W_n for the product's rows; 0 when out of memory. */
static int prod_apply(const Prod *p, const float *x, int B, int K, int N, float *out, int ldo, int add, int threads) {
    if (p->W) {
        gemv(x, B, K, p->W, N, out, ldo, add, threads);
        return 1;
    }
    float *outs[3];
    int ldos[3];
    int off = 0;
    for (int i = 0; i < p->n; i++) {
        outs[i] = out + off;
        ldos[i] = ldo;
        off += p->parts[i]->rows;
    }
    return lin_apply_n(p->parts, p->n, x, B, K, outs, ldos, add, threads);
}

/* The caller holds call_mu. 0 when out of memory. */
/* float32 to float16, rounded to nearest even (as libtorch converts), saturated at ±65504 (the cache's range). */
static inline uint16_t to_f16(float f) {
    if (f > 65504.0f) f = 65504.0f;
    if (f < -65504.0f) f = -65504.0f;
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

/*
 * keys and values are the cache [B, kvh, cap, D], float32, or float16 where f16 (this step's key
 * and value rounded to nearest even, the page's landmark the mean of the rounded keys).
 * The caller holds call_mu. 0 when out of memory.
 */
static int pre_attention(const float *x, const float *wIn, const Prod *qkv, const float *wQ, const float *wK,
                         const float *cosT, const float *sinT, const int *pos, float *qOut, void *keys, void *values,
                         float *marks, int B, int H, int heads, int kvh, int d, int cap, float eps, float scale, int threads,
                         int f16) {
    int rows = (heads + 2 * kvh) * d;
    if (!grow((void **) &s_norm, &c_norm, (size_t) B * H + 2 * (size_t) d, sizeof(float)) || !grow((void **) &s_rows, &c_rows, (size_t) B * rows, sizeof(float))) {
        return 0;
    }
    float *tmp = s_norm + (size_t) B * H, *krow = tmp + d;
    for (int b = 0; b < B; b++) rms_norm(x + (long) b * H, wIn, s_norm + (long) b * H, H, eps);
    if (!prod_apply(qkv, s_norm, B, H, rows, s_rows, rows, 0, threads)) return 0;
    int pages = cap / PAGE;
    for (int b = 0; b < B; b++) {
        const float *row = s_rows + (long) b * rows;
        int p = pos[b];
        const float *c = cosT + (long) p * d, *s = sinT + (long) p * d;
        for (int h = 0; h < heads; h++) {
            head_norm_rope(row + (long) h * d, wQ, c, s, d, eps, scale, qOut + ((long) b * heads + h) * d, tmp);
        }
        for (int h = 0; h < kvh; h++) {
            long bh = (long) b * kvh + h;
            long at = (bh * cap + p) * d;
            const float *vrow = row + (long) (heads + kvh + h) * d;
            if (f16) {
                head_norm_rope(row + (long) (heads + h) * d, wK, c, s, d, eps, 1.0f, krow, tmp);
                uint16_t *k16 = (uint16_t *) keys + at, *v16 = (uint16_t *) values + at;
                for (int j = 0; j < d; j++) {
                    k16[j] = to_f16(krow[j]);
                    v16[j] = to_f16(vrow[j]);
                }
            } else {
                head_norm_rope(row + (long) (heads + h) * d, wK, c, s, d, eps, 1.0f, (float *) keys + at, tmp);
                memcpy((float *) values + at, vrow, sizeof(float) * (size_t) d);
            }
            if ((p + 1) % PAGE == 0) {
                int page = p / PAGE;
                long first = (bh * cap + (long) page * PAGE) * d;
                float *m = marks + (bh * pages + page) * d;
                for (int j = 0; j < d; j++) {
                    float sum = 0;
                    for (int t = 0; t < PAGE; t++) {
                        long e = first + (long) t * d + j;
                        sum += f16 ? _cvtsh_ss(((const uint16_t *) keys)[e]) : ((const float *) keys)[e];
                    }
                    m[j] = sum / PAGE;
                }
            }
        }
    }
    return 1;
}

/* The caller holds call_mu. 0 when out of memory. */
static int post_attention(float *x, const float *o, const Prod *oP, const float *wPost, const Prod *gu, const Prod *down,
                          int B, int H, int qd, int I, float eps, int threads) {
    if (!grow((void **) &s_norm, &c_norm, (size_t) B * H, sizeof(float)) || !grow((void **) &s_gate, &c_gate, (size_t) B * I, sizeof(float)) || !grow((void **) &s_up, &c_up, (size_t) B * I, sizeof(float))) {
        return 0;
    }
    if (!prod_apply(oP, o, B, qd, H, x, H, 1, threads)) return 0;
    for (int b = 0; b < B; b++) rms_norm(x + (long) b * H, wPost, s_norm + (long) b * H, H, eps);
    if (gu->W) {
        GateUp g = {s_norm, gu->W, s_gate, s_up, B, H, I, chunk_for(I, threads)};
        tg_run(gate_up_item, &g, (I + g.chunk - 1) / g.chunk, threads);
    } else {
        float *outs[2] = {s_gate, s_up};
        int ldos[2] = {I, I};
        if (!lin_apply_n(gu->parts, 2, s_norm, B, H, outs, ldos, 0, threads)) return 0;
        swiglu(s_gate, s_gate, s_up, (long) B * I);
    }
    return prod_apply(down, s_gate, B, I, H, x, H, 1, threads);
}

/* --------------------------------------------------------------------------------------- JNI */

/*
 * A product's float32 weight from its direct buffer, unless the product is packed (its parts came
 * from handles): 0 with an IllegalArgumentException pending when the buffer is not direct.
 */
static int prod_view(JNIEnv *env, Prod *p, jobject buf, const char *name) {
    return p->n > 0 || (p->W = addr(env, buf, name)) != NULL;
}

/*
 * Both preAttention entry points: qkv is packed (its parts set, qkvBuf unused) or float32 (n = 0,
 * its weight read from qkvBuf). The buffers are looked at in argument order, so a call with several
 * bad ones names the first.
 */
static void pre_attention_jni(JNIEnv *env, jobject xBuf, jobject inNormBuf, jobject qkvBuf, Prod *qkv, jobject qNormBuf,
        jobject kNormBuf, jobject cosBuf, jobject sinBuf, jintArray positionsArr, jobject qOutBuf, jobject keysBuf,
        jobject valuesBuf, jobject marksBuf, int B, int H, int heads, int kvh, int d, int cap, float eps, float scale,
        int threads, int f16) {
    const float *x, *wIn, *wQ, *wK, *cosT, *sinT;
    float *qOut, *marks;
    void *keys, *values;
    if (!(x = addr(env, xBuf, "x")) || !(wIn = addr(env, inNormBuf, "input_layernorm"))
            || !prod_view(env, qkv, qkvBuf, "qkv_proj") || !(wQ = addr(env, qNormBuf, "q_norm"))
            || !(wK = addr(env, kNormBuf, "k_norm")) || !(cosT = addr(env, cosBuf, "rotary cos"))
            || !(sinT = addr(env, sinBuf, "rotary sin")) || !(qOut = addr(env, qOutBuf, "q"))
            || !(keys = addr(env, keysBuf, "keys")) || !(values = addr(env, valuesBuf, "values"))
            || !(marks = addr(env, marksBuf, "landmarks"))) return;
    int *pos = malloc(sizeof(int) * (size_t) B);
    if (!pos) { oom(env); return; }
    (*env)->GetIntArrayRegion(env, positionsArr, 0, B, pos);
    pthread_mutex_lock(&call_mu);
    int ok = pre_attention(x, wIn, qkv, wQ, wK, cosT, sinT, pos, qOut, keys, values, marks, B, H, heads, kvh, d, cap, eps, scale,
                           threads, f16);
    pthread_mutex_unlock(&call_mu);
    free(pos);
    if (!ok) oom(env);
}

/* Both postAttention entry points; each product packed or float32, as in pre_attention_jni. */
static void post_attention_jni(JNIEnv *env, jobject xBuf, jobject oBuf, jobject oProjBuf, Prod *oP, jobject postNormBuf,
        jobject gateUpBuf, Prod *gu, jobject downBuf, Prod *dn, int B, int H, int qd, int I, float eps, int threads) {
    float *x;
    const float *o, *wPost;
    if (!(x = addr(env, xBuf, "x")) || !(o = addr(env, oBuf, "attention output"))
            || !prod_view(env, oP, oProjBuf, "o_proj") || !(wPost = addr(env, postNormBuf, "post_attention_layernorm"))
            || !prod_view(env, gu, gateUpBuf, "gate_up_proj") || !prod_view(env, dn, downBuf, "down_proj")) return;
    pthread_mutex_lock(&call_mu);
    int ok = post_attention(x, o, oP, wPost, gu, dn, B, H, qd, I, eps, threads);
    pthread_mutex_unlock(&call_mu);
    if (!ok) oom(env);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_preAttention(JNIEnv *env, jclass cls,
        jobject xBuf, jobject inNormBuf, jobject qkvBuf, jobject qNormBuf, jobject kNormBuf, jobject cosBuf, jobject sinBuf,
        jintArray positionsArr, jobject qOutBuf, jobject keysBuf, jobject valuesBuf, jobject marksBuf,
        jint B, jint H, jint heads, jint kvh, jint d, jint cap, jfloat eps, jfloat scale, jint threads, jboolean f16) {
    (void) cls;
    Prod qkv = {NULL, {0}, 0};
    pre_attention_jni(env, xBuf, inNormBuf, qkvBuf, &qkv, qNormBuf, kNormBuf, cosBuf, sinBuf, positionsArr, qOutBuf, keysBuf,
                      valuesBuf, marksBuf, B, H, heads, kvh, d, cap, eps, scale, threads, f16);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_postAttention(JNIEnv *env, jclass cls,
        jobject xBuf, jobject oBuf, jobject oProjBuf, jobject postNormBuf, jobject gateUpBuf, jobject downBuf,
        jint B, jint H, jint qd, jint I, jfloat eps, jint threads) {
    (void) cls;
    Prod oP = {NULL, {0}, 0}, gu = {NULL, {0}, 0}, dn = {NULL, {0}, 0};
    post_attention_jni(env, xBuf, oBuf, oProjBuf, &oP, postNormBuf, gateUpBuf, &gu, downBuf, &dn, B, H, qd, I, eps, threads);
}

/* A product of packed parts from their handles; 0 with an IllegalArgumentException pending if malformed. */
static int packed_prod(JNIEnv *env, jlongArray handles, int want, const char *name, Prod *p) {
    int n = (*env)->GetArrayLength(env, handles);
    if (n != want) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: %d packed parts, expected %d", name, n, want);
        throw_new(env, "java/lang/IllegalArgumentException", msg);
        return 0;
    }
    jlong h[3];
    (*env)->GetLongArrayRegion(env, handles, 0, n, h);
    p->W = NULL;
    p->n = n;
    for (int i = 0; i < n; i++) p->parts[i] = (Lin *) (intptr_t) h[i];
    return 1;
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_preAttentionPacked(JNIEnv *env, jclass cls,
        jobject xBuf, jobject inNormBuf, jlongArray qkvHandles, jobject qNormBuf, jobject kNormBuf, jobject cosBuf, jobject sinBuf,
        jintArray positionsArr, jobject qOutBuf, jobject keysBuf, jobject valuesBuf, jobject marksBuf,
        jint B, jint H, jint heads, jint kvh, jint d, jint cap, jfloat eps, jfloat scale, jint threads, jboolean f16) {
    (void) cls;
    Prod qkv;
    if (!packed_prod(env, qkvHandles, 3, "qkv", &qkv)) return;
    pre_attention_jni(env, xBuf, inNormBuf, NULL, &qkv, qNormBuf, kNormBuf, cosBuf, sinBuf, positionsArr, qOutBuf, keysBuf,
                      valuesBuf, marksBuf, B, H, heads, kvh, d, cap, eps, scale, threads, f16);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_postAttentionPacked(JNIEnv *env, jclass cls,
        jobject xBuf, jobject oBuf, jlongArray oHandles, jobject postNormBuf, jlongArray gateUpHandles, jlongArray downHandles,
        jint B, jint H, jint qd, jint I, jfloat eps, jint threads) {
    (void) cls;
    Prod oP, gu, dn;
    if (!packed_prod(env, oHandles, 1, "o_proj", &oP) || !packed_prod(env, gateUpHandles, 2, "gate_up", &gu)
        || !packed_prod(env, downHandles, 1, "down_proj", &dn)) return;
    post_attention_jni(env, xBuf, oBuf, NULL, &oP, postNormBuf, NULL, &gu, NULL, &dn, B, H, qd, I, eps, threads);
}

/* ------------------------------------------------------------------------- packed linears (JNI) */

JNIEXPORT jlong JNICALL Java_io_tailguard_model_NativeDecode_packedQuantized(JNIEnv *env, jclass cls,
        jint rows, jint cols, jint bits, jint group, jbyteArray codesArr, jbyteArray scalesArr, jbyteArray signsOutArr,
        jbyteArray signsInArr, jboolean act8) {
    (void) cls;
    jbyte *codes = (*env)->GetPrimitiveArrayCritical(env, codesArr, NULL);
    jbyte *scales = (*env)->GetPrimitiveArrayCritical(env, scalesArr, NULL);
    jbyte *so = (*env)->GetPrimitiveArrayCritical(env, signsOutArr, NULL);
    jbyte *si = (*env)->GetPrimitiveArrayCritical(env, signsInArr, NULL);
    Lin *L = NULL;
    if (codes && scales && so && si) {
        L = lin_quantized(rows, cols, bits, group, (const uint8_t *) codes, (const uint16_t *) scales,
                          (const uint8_t *) so, (const uint8_t *) si, act8 == JNI_TRUE);
    }
    if (si) (*env)->ReleasePrimitiveArrayCritical(env, signsInArr, si, JNI_ABORT);
    if (so) (*env)->ReleasePrimitiveArrayCritical(env, signsOutArr, so, JNI_ABORT);
    if (scales) (*env)->ReleasePrimitiveArrayCritical(env, scalesArr, scales, JNI_ABORT);
    if (codes) (*env)->ReleasePrimitiveArrayCritical(env, codesArr, codes, JNI_ABORT);
    if (!L) oom(env);
    return (jlong) (intptr_t) L;
}

JNIEXPORT jlong JNICALL Java_io_tailguard_model_NativeDecode_packedVnm(JNIEnv *env, jclass cls,
        jint rows, jint cols, jint v, jint m, jfloatArray valuesArr, jbyteArray metaArr, jbyteArray columnsArr) {
    (void) cls;
    jfloat *values = (*env)->GetPrimitiveArrayCritical(env, valuesArr, NULL);
    jbyte *meta = (*env)->GetPrimitiveArrayCritical(env, metaArr, NULL);
    jbyte *columns = (*env)->GetPrimitiveArrayCritical(env, columnsArr, NULL);
    Lin *L = NULL;
    if (values && meta && columns) {
        L = lin_vnm(rows, cols, v, m, values, (const uint8_t *) meta, (const uint8_t *) columns);
    }
    if (columns) (*env)->ReleasePrimitiveArrayCritical(env, columnsArr, columns, JNI_ABORT);
    if (meta) (*env)->ReleasePrimitiveArrayCritical(env, metaArr, meta, JNI_ABORT);
    if (values) (*env)->ReleasePrimitiveArrayCritical(env, valuesArr, values, JNI_ABORT);
    if (!L) oom(env);
    return (jlong) (intptr_t) L;
}

/*
 * Whether int8-activation products may take the AVX-512 VNNI kernels (allow; the default) or must take
 * the portable ones; returns whether the VNNI kernels are in use now (allowed and the CPU has them).
 */
JNIEXPORT jboolean JNICALL Java_io_tailguard_model_NativeDecode_setWideVectors(JNIEnv *env, jclass cls, jboolean allow) {
    (void) env;
    (void) cls;
    pthread_mutex_lock(&call_mu);
    a8_allow_wide = allow == JNI_TRUE;
    int wide = a8_allow_wide && a8_cpu_wide();
    pthread_mutex_unlock(&call_mu);
    return wide ? JNI_TRUE : JNI_FALSE;
}

/*
 * Whether float32 weight products may take the AVX-512 kernel (allow; the default) or must take the
 * AVX2 one; returns whether the AVX-512 kernel is in use now (allowed and the CPU has it).
 */
JNIEXPORT jboolean JNICALL Java_io_tailguard_model_NativeDecode_setWideFloat(JNIEnv *env, jclass cls, jboolean allow) {
    (void) env;
    (void) cls;
    pthread_mutex_lock(&call_mu);
    gemv_allow_wide = allow == JNI_TRUE;
    int wide = gemv_allow_wide && tg_cpu_avx512();
    pthread_mutex_unlock(&call_mu);
    return wide ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_packedFree(JNIEnv *env, jclass cls, jlong h) {
    (void) env;
    (void) cls;
    pthread_mutex_lock(&call_mu);
    lin_free((Lin *) (intptr_t) h);
    pthread_mutex_unlock(&call_mu);
}

JNIEXPORT jlong JNICALL Java_io_tailguard_model_NativeDecode_packedBytes(JNIEnv *env, jclass cls, jlong h) {
    (void) env;
    (void) cls;
    return (jlong) lin_bytes((const Lin *) (intptr_t) h);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_packedMultiply(JNIEnv *env, jclass cls, jlong h,
        jobject xBuf, jint B, jobject outBuf, jint threads) {
    (void) cls;
    Lin *L = (Lin *) (intptr_t) h;
    const float *x;
    float *out;
    if (!(x = addr(env, xBuf, "x")) || !(out = addr(env, outBuf, "out"))) return;
    pthread_mutex_lock(&call_mu);
    int ok = lin_apply(L, x, B, L->cols, out, L->rows, 0, threads);
    pthread_mutex_unlock(&call_mu);
    if (!ok) oom(env);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeDecode_packedDequantize(JNIEnv *env, jclass cls, jlong h, jobject outBuf,
        jint threads) {
    (void) cls;
    float *out = addr(env, outBuf, "out");
    if (!out) return;
    pthread_mutex_lock(&call_mu);
    lin_dequantize((const Lin *) (intptr_t) h, out, threads);
    pthread_mutex_unlock(&call_mu);
}
#include "tg_prefill.h"
