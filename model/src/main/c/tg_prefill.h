/*
 * Causal attention of a prefill (or any pass of several query positions per sequence), float32,
 * AVX2/FMA: the queries of one call at absolute positions [start, start + T) over keys
 * [0, start + T), as a flash-attention style loop. Included at the end of decode_layer.c (its call
 * mutex, pool, oom and its pointwise helpers: rms_norm, head_norm_rope, swiglu); Java side:
 * model.NativePrefill.
 *
 * Work items are (sequence, KV head, tile of query positions). An item takes the queries of all r
 * query heads of its KV head at those positions (grouped-query attention: each key and value is
 * read once for the r heads, never copied per head) as the rows of one tile, and walks the keys in
 * tiles of PF_KEYS with an online softmax (running max and sum per row, the output rescaled when
 * the max grows). Key tiles past a tile's last query position are never visited; only the tiles
 * that straddle the diagonal are masked.
 *
 * Layout: the tile works transposed, rows last. Qt [D][R] (the queries of R rows, copied once per
 * item), St [keys][R] (scores, then probabilities), Ot [D][R] (the output). So the score product
 * broadcasts a key element against 8 rows at a time (keys are read in place, row by row, never
 * transposed), the softmax's max and sum run across vectors of rows without horizontal reductions,
 * and the value product broadcasts a value element against the rows' probabilities (values read in
 * place too). Rows are padded to a multiple of 16 (two vectors); padded rows compute on zero
 * queries and are never written out.
 *
 * q and out are [B, T, heads, D] (query head h = g·r + i of KV head g); keys and values are
 * addressed by strides: element (b, g, j, d) at b·sb + g·sh + j·sj + d, which serves both the KV
 * cache [B, kvh, cap, D] (sh = cap·D, sj = D) and a pass's own keys [B, T, kvh, D]. q is already
 * scaled by 1/√D.
 */
#ifndef TG_PREFILL_H
#define TG_PREFILL_H

#include <math.h>
#include <stdatomic.h>

#include "tg_pool.h"
#include "tg_util.h"

#define PF_KEYS 64          /* keys per tile */
#define PF_ROW_FLOATS 4096  /* rows per item: about this many floats of Qt (16 KB, half of L1) */

typedef struct {
    const float *q;
    float *out;
    const float *k, *v;
    long sb, sh, sj;
    int B, T, start, heads, kvh, r, D;
    int mq;        /* query positions per item */
    int tiles;     /* items per (sequence, KV head) */
    int R;         /* rows per item, padded to a multiple of 16 */
    atomic_int failed;
} PfAttn;

static float *pf_scratch[TG_MAX_HELPERS + 1];
static size_t pf_have[TG_MAX_HELPERS + 1];

/*
 * e^x for x ≤ 0 (scores minus their running max), Cephes' single-precision polynomial (relative
 * error about 1e-7); below -87 the result is exactly 0 (a masked score is -inf); NaN stays NaN.
 */
static inline __m256 pf_exp(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f);
    __m256 keep = _mm256_cmp_ps(x, lo, _CMP_NLT_UQ);
    x = _mm256_max_ps(lo, x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), f);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(f, f), _mm256_add_ps(f, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

/*
 * The micro-kernels: NB keys (scores) or NB value columns (values) against 16 rows, 2·NB
 * accumulators. Fully unrolled by the compiler for each constant NB (6, 4, 1): 12 accumulators keep
 * both FMA pipes busy despite the FMA's latency, where 8 left the score product at half the rate.
 */
static inline __attribute__((always_inline)) void pf_scores_block(const float *Qt, const float *k0, long sj, int D, int R,
                                                                float *St, const int NB) {
    __m256 acc[6][2];
    for (int u = 0; u < NB; u++) acc[u][0] = acc[u][1] = _mm256_setzero_ps();
    const float *qt = Qt;
    for (int d = 0; d < D; d++, qt += R) {
        __m256 q0 = _mm256_loadu_ps(qt), q1 = _mm256_loadu_ps(qt + 8);
        for (int u = 0; u < NB; u++) {
            __m256 x = _mm256_broadcast_ss(k0 + u * sj + d);
            acc[u][0] = _mm256_fmadd_ps(x, q0, acc[u][0]);
            acc[u][1] = _mm256_fmadd_ps(x, q1, acc[u][1]);
        }
    }
    for (int u = 0; u < NB; u++) {
        _mm256_storeu_ps(St + (long) u * R, acc[u][0]);
        _mm256_storeu_ps(St + (long) u * R + 8, acc[u][1]);
    }
}

/* St[j][0, R) = Σ_d K[j][d] · Qt[d][0, R) for keys j in [0, nk). */
static void pf_scores(const float *Qt, const float *k0, long sj, int nk, int D, int R, float *St) {
    for (int rs = 0; rs < R; rs += 16) {
        int j = 0;
        for (; j + 6 <= nk; j += 6) pf_scores_block(Qt + rs, k0 + j * sj, sj, D, R, St + (long) j * R + rs, 6);
        for (; j + 4 <= nk; j += 4) pf_scores_block(Qt + rs, k0 + j * sj, sj, D, R, St + (long) j * R + rs, 4);
        for (; j < nk; j++) pf_scores_block(Qt + rs, k0 + j * sj, sj, D, R, St + (long) j * R + rs, 1);
    }
}

static inline __attribute__((always_inline)) void pf_values_block(const float *Pt, const float *v0, long sj, int nk, int R,
                                                                __m256 al0, __m256 al1, float *o, const int NB) {
    __m256 acc[6][2];
    for (int u = 0; u < NB; u++) {
        acc[u][0] = _mm256_mul_ps(al0, _mm256_loadu_ps(o + (long) u * R));
        acc[u][1] = _mm256_mul_ps(al1, _mm256_loadu_ps(o + (long) u * R + 8));
    }
    const float *vj = v0, *pt = Pt;
    for (int j = 0; j < nk; j++, vj += sj, pt += R) {
        __m256 p0 = _mm256_loadu_ps(pt), p1 = _mm256_loadu_ps(pt + 8);
        for (int u = 0; u < NB; u++) {
            __m256 x = _mm256_broadcast_ss(vj + u);
            acc[u][0] = _mm256_fmadd_ps(x, p0, acc[u][0]);
            acc[u][1] = _mm256_fmadd_ps(x, p1, acc[u][1]);
        }
    }
    for (int u = 0; u < NB; u++) {
        _mm256_storeu_ps(o + (long) u * R, acc[u][0]);
        _mm256_storeu_ps(o + (long) u * R + 8, acc[u][1]);
    }
}

/* Ot[d][0, R) = alpha[0, R) · Ot[d][0, R) + Σ_j V[j][d] · Pt[j][0, R). */
static void pf_values(const float *Pt, const float *v0, long sj, int nk, int D, int R, const float *alpha, float *Ot) {
    for (int rs = 0; rs < R; rs += 16) {
        __m256 al0 = _mm256_loadu_ps(alpha + rs), al1 = _mm256_loadu_ps(alpha + rs + 8);
        int d = 0;
        for (; d + 6 <= D; d += 6) pf_values_block(Pt + rs, v0 + d, sj, nk, R, al0, al1, Ot + (long) d * R + rs, 6);
        for (; d + 4 <= D; d += 4) pf_values_block(Pt + rs, v0 + d, sj, nk, R, al0, al1, Ot + (long) d * R + rs, 4);
        for (; d < D; d++) pf_values_block(Pt + rs, v0 + d, sj, nk, R, al0, al1, Ot + (long) d * R + rs, 1);
    }
}

static void pf_item(void *ctx, int item, int worker) {
    PfAttn *a = ctx;
    const int R = a->R, D = a->D, r = a->r;
    /*
     * Items of one (sequence, KV head) are neighbours, so the threads share its keys and values in
     * cache; within it the heaviest tiles (the last query positions, the most keys) go first, so the
     * call ends on a light item.
     */
    int bg = item / a->tiles;
    int tile = a->tiles - 1 - item % a->tiles;
    int b = bg / a->kvh, g = bg % a->kvh;
    int t0 = tile * a->mq;
    int nq = a->T - t0 < a->mq ? a->T - t0 : a->mq;
    int n = nq * r;                                           /* real rows */
    size_t need = (size_t) R * (2 * (size_t) D + PF_KEYS + 4);
    if (!grow((void **) &pf_scratch[worker], &pf_have[worker], need, sizeof(float))) {
        atomic_store(&a->failed, 1);
        return;
    }
    float *Qt = pf_scratch[worker], *Ot = Qt + (size_t) R * D, *St = Ot + (size_t) R * D;
    float *m = St + (size_t) R * PF_KEYS, *l = m + R, *alpha = l + R, *pos = alpha + R;
    for (int row = 0; row < R; row++) {
        int p = row < n ? row / r : nq - 1;
        pos[row] = (float) (a->start + t0 + p);
        m[row] = -INFINITY;
        l[row] = 0.0f;
    }
    memset(Ot, 0, sizeof(float) * (size_t) R * D);
    for (int p = 0; p < nq; p++) {
        const float *qrow = a->q + (((long) b * a->T + t0 + p) * a->heads + (long) g * r) * D;
        for (int i = 0; i < r; i++) {
            int row = p * r + i;
            for (int d = 0; d < D; d++) Qt[(long) d * R + row] = qrow[(long) i * D + d];
        }
    }
    for (int row = n; row < R; row++) {
        for (int d = 0; d < D; d++) Qt[(long) d * R + row] = 0.0f;
    }
    const float *kb = a->k + (long) b * a->sb + (long) g * a->sh;
    const float *vb = a->v + (long) b * a->sb + (long) g * a->sh;
    int first = a->start + t0, span = a->start + t0 + nq;   /* rows' lowest position; keys [0, span) */
    for (int j0 = 0; j0 < span; j0 += PF_KEYS) {
        int nk = span - j0 < PF_KEYS ? span - j0 : PF_KEYS;
        pf_scores(Qt, kb + (long) j0 * a->sj, a->sj, nk, D, R, St);
        if (j0 + nk - 1 > first) {                            /* straddles the diagonal: hide later keys */
            const __m256 ninf = _mm256_set1_ps(-INFINITY);
            for (int j = 0; j < nk; j++) {
                __m256 key = _mm256_set1_ps((float) (j0 + j));
                float *s = St + (long) j * R;
                for (int rs = 0; rs < R; rs += 8) {
                    __m256 hide = _mm256_cmp_ps(key, _mm256_loadu_ps(pos + rs), _CMP_GT_OQ);
                    _mm256_storeu_ps(s + rs, _mm256_blendv_ps(_mm256_loadu_ps(s + rs), ninf, hide));
                }
            }
        }
        for (int rs = 0; rs < R; rs += 8) {
            __m256 mo = _mm256_loadu_ps(m + rs), mx = mo;
            for (int j = 0; j < nk; j++) mx = _mm256_max_ps(mx, _mm256_loadu_ps(St + (long) j * R + rs));
            __m256 sum = _mm256_setzero_ps();
            for (int j = 0; j < nk; j++) {
                float *s = St + (long) j * R + rs;
                __m256 e = pf_exp(_mm256_sub_ps(_mm256_loadu_ps(s), mx));
                _mm256_storeu_ps(s, e);
                sum = _mm256_add_ps(sum, e);
            }
            __m256 al = pf_exp(_mm256_sub_ps(mo, mx));      /* first tile: e^-inf = 0 */
            _mm256_storeu_ps(alpha + rs, al);
            _mm256_storeu_ps(l + rs, _mm256_fmadd_ps(_mm256_loadu_ps(l + rs), al, sum));
            _mm256_storeu_ps(m + rs, mx);
        }
        pf_values(St, vb + (long) j0 * a->sj, a->sj, nk, D, R, alpha, Ot);
    }
    for (int p = 0; p < nq; p++) {
        float *orow = a->out + (((long) b * a->T + t0 + p) * a->heads + (long) g * r) * D;
        for (int i = 0; i < r; i++) {
            int row = p * r + i;
            float inv = 1.0f / l[row];
            for (int d = 0; d < D; d++) orow[(long) i * D + d] = Ot[(long) d * R + row] * inv;
        }
    }
}

/* The caller holds call_mu. 0 when out of memory. */
static int pf_attention(const float *q, const float *k, const float *v, float *out, long sb, long sh, long sj,
                        int B, int T, int start, int heads, int kvh, int D, int threads) {
    int r = heads / kvh;
    int rows = PF_ROW_FLOATS / D;
    int mq = rows / r > 0 ? rows / r : 1;
    if (mq > T) mq = T;
    int tiles = (T + mq - 1) / mq;
    while ((long) B * kvh * tiles > TG_MAX_ITEMS) {           /* the pool's ticket holds at most 65535 items */
        mq *= 2;
        tiles = (T + mq - 1) / mq;
    }
    PfAttn a = {q, out, k, v, sb, sh, sj, B, T, start, heads, kvh, r, D, mq, tiles, (mq * r + 15) / 16 * 16, 0};
    tg_run(pf_item, &a, B * kvh * tiles, threads);
    return !atomic_load(&a.failed);
}

/*
 * The pointwise rest of a prefill layer around its products (the rows of a prefill are many, so
 * through libtorch each of these was several passes over memory and a parallel region per op):
 *
 *   pf_qkv     from the fused q/k/v product [B·T, (heads + 2·kvh)·D]: per head RMSNorm (q_norm,
 *              k_norm), RoPE (rotate half) at positions start + t, q · 1/√D into q [B, T, heads, D];
 *              keys and values written straight to their place (the KV cache, or a pass's own
 *              [B, T, kvh, D]), addressed like the attention's keys.
 *   pf_norm    RMSNorm of rows.
 *   pf_swiglu  silu(gate) ⊙ up from the fused gate/up product [rows, 2I] into [rows, I].
 *
 * All split by rows over the pool's threads.
 */
typedef struct {
    const float *qkv, *wQ, *wK, *cosT, *sinT;
    float *q, *keys, *values;
    long sb, sh, sj;
    int T, start, kv0, heads, kvh, D, rows, chunk;
    float eps, scale;
} PfQkv;

static void pf_qkv_item(void *ctx, int item, int worker) {
    (void) worker;
    const PfQkv *a = ctx;
    const int D = a->D, width = (a->heads + 2 * a->kvh) * D;
    float tmp[D];
    int r1 = (item + 1) * a->chunk < a->rows ? (item + 1) * a->chunk : a->rows;
    for (int r = item * a->chunk; r < r1; r++) {
        int b = r / a->T, t = r % a->T;
        const float *row = a->qkv + (long) r * width;
        const float *c = a->cosT + (long) (a->start + t) * D, *s = a->sinT + (long) (a->start + t) * D;
        if (a->q) {
            for (int h = 0; h < a->heads; h++) {
                head_norm_rope(row + (long) h * D, a->wQ, c, s, D, a->eps, a->scale, a->q + ((long) r * a->heads + h) * D, tmp);
            }
        }
        for (int g = 0; g < a->kvh; g++) {
            long at = (long) b * a->sb + (long) g * a->sh + (long) (a->kv0 + t) * a->sj;
            head_norm_rope(row + (long) (a->heads + g) * D, a->wK, c, s, D, a->eps, 1.0f, a->keys + at, tmp);
            memcpy(a->values + at, row + (long) (a->heads + a->kvh + g) * D, sizeof(float) * (size_t) D);
        }
    }
}

/* Rows per work item: about four items per thread. */
static int pf_chunk(int rows, int threads) {
    int c = (rows + 4 * threads - 1) / (4 * threads);
    if (c < 1) c = 1;
    while ((rows + c - 1) / c > TG_MAX_ITEMS) c *= 2;
    return c;
}

/* Runs fn over rows in items of chunk rows (pf_chunk's), under the call mutex. */
static void pf_run_rows(tg_fn fn, void *ctx, int rows, int chunk, int threads) {
    pthread_mutex_lock(&call_mu);
    tg_run(fn, ctx, (rows + chunk - 1) / chunk, threads);
    pthread_mutex_unlock(&call_mu);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativePrefill_qkv(JNIEnv *env, jclass cls,
        jobject qkvBuf, jobject qNormBuf, jobject kNormBuf, jobject cosBuf, jobject sinBuf, jobject qBuf,
        jobject keysBuf, jobject valuesBuf, jlong sb, jlong sh, jlong sj,
        jint B, jint T, jint start, jint kv0, jint heads, jint kvh, jint D, jfloat eps, jfloat scale, jint threads) {
    (void) cls;
    const float *qkv, *wQ, *wK, *cosT, *sinT;
    float *q = NULL, *keys, *values;                          /* q: none when the pass needs only keys and values */
    if (!(qkv = addr(env, qkvBuf, "qkv product")) || !(wQ = addr(env, qNormBuf, "q_norm"))
            || !(wK = addr(env, kNormBuf, "k_norm")) || !(cosT = addr(env, cosBuf, "rotary cos"))
            || !(sinT = addr(env, sinBuf, "rotary sin")) || (qBuf != NULL && !(q = addr(env, qBuf, "queries")))
            || !(keys = addr(env, keysBuf, "keys")) || !(values = addr(env, valuesBuf, "values"))) return;
    int rows = B * T;
    PfQkv a = {qkv, wQ, wK, cosT, sinT, q, keys, values, sb, sh, sj, T, start, kv0, heads, kvh, D, rows, pf_chunk(rows, threads), eps, scale};
    pf_run_rows(pf_qkv_item, &a, rows, a.chunk, threads);
}

typedef struct {
    const float *x, *w;
    float *out;
    int rows, n, chunk;
    float eps;
} PfRows;

static void pf_norm_item(void *ctx, int item, int worker) {
    (void) worker;
    const PfRows *a = ctx;
    int r1 = (item + 1) * a->chunk < a->rows ? (item + 1) * a->chunk : a->rows;
    for (int r = item * a->chunk; r < r1; r++) rms_norm(a->x + (long) r * a->n, a->w, a->out + (long) r * a->n, a->n, a->eps);
}

/* out[r][i] = silu(gu[r][i]) · gu[r][n + i], i < n = I (decode_layer.c's swiglu, row by row). */
static void pf_swiglu_item(void *ctx, int item, int worker) {
    (void) worker;
    const PfRows *a = ctx;
    const int n = a->n;
    int r1 = (item + 1) * a->chunk < a->rows ? (item + 1) * a->chunk : a->rows;
    for (int r = item * a->chunk; r < r1; r++) {
        const float *g = a->x + (long) r * 2 * n;
        swiglu(a->out + (long) r * n, g, g + n, n);
    }
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativePrefill_rmsNorm(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jobject outBuf, jint rows, jint n, jfloat eps, jint threads) {
    (void) cls;
    const float *x, *w;
    float *out;
    if (!(x = addr(env, xBuf, "x")) || !(w = addr(env, wBuf, "norm weight")) || !(out = addr(env, outBuf, "out"))) return;
    PfRows a = {x, w, out, rows, n, pf_chunk(rows, threads), eps};
    pf_run_rows(pf_norm_item, &a, rows, a.chunk, threads);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativePrefill_swiglu(JNIEnv *env, jclass cls,
        jobject guBuf, jobject outBuf, jint rows, jint n, jint threads) {
    (void) cls;
    const float *gu;
    float *out;
    if (!(gu = addr(env, guBuf, "gate/up product")) || !(out = addr(env, outBuf, "out"))) return;
    PfRows a = {gu, NULL, out, rows, n, pf_chunk(rows, threads), 0.0f};
    pf_run_rows(pf_swiglu_item, &a, rows, a.chunk, threads);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativePrefill_attention(JNIEnv *env, jclass cls,
        jobject qBuf, jobject kBuf, jobject vBuf, jobject outBuf, jlong sb, jlong sh, jlong sj,
        jint B, jint T, jint start, jint heads, jint kvh, jint D, jint threads) {
    (void) cls;
    const float *q, *k, *v;
    float *out;
    if (!(q = addr(env, qBuf, "queries")) || !(k = addr(env, kBuf, "keys")) || !(v = addr(env, vBuf, "values"))
            || !(out = addr(env, outBuf, "attention output"))) return;
    pthread_mutex_lock(&call_mu);
    int ok = pf_attention(q, k, v, out, sb, sh, sj, B, T, start, heads, kvh, D, threads);
    pthread_mutex_unlock(&call_mu);
    if (!ok) oom(env);
}

#endif
