/*
 * Kernels of the training step (io.tailguard.model.NativeTraining): causal grouped-query attention,
 * forward and backward, over the fused q/k/v rows of a layer; and AdamW's update of one tensor.
 *
 * Attention. qkv [B, T, NH, D] holds each position's heads in the order the fused q/k/v product
 * writes them: `heads` query heads (already normed, rotated and scaled by 1/sqrt(D)), then `kvh` key
 * heads, then `kvh` value heads (NH = heads + 2 kvh). Query head h reads key/value head h / r
 * (r = heads / kvh). Optionally a prefix pkv [Bp, P, NH, D] (Bp = 1, shared by every row, or B)
 * whose keys and values every row sees before its own: row b's query i sits at position P + i and
 * attends to prefix positions [0, P) and to its own positions [0, i]. The forward writes
 * o [B, T, heads, D] and the log-sum-exp of each query's scores, lse [B, heads, T]; the backward
 * recomputes the probabilities from lse (nothing of size T x T is kept between the two) and writes
 * the gradient of qkv and adds that of the prefix's keys and values into dpkv.
 *
 * Work is split by (row, key/value head): a unit owns its keys' gradients, so units never write the
 * same memory; a prefix shared by several rows gets per-unit partial sums, added up at the end.
 * Products are small row-major GEMMs on tg_gemm.h's micro-kernels (AVX-512 where the CPU has it, else AVX2;
 * the same sums either way), over blocks of QB queries.
 */
#include <jni.h>
#include <math.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tg_gemm.h"
#include "tg_page.h"
#include "tg_pool.h"
#include "tg_util.h"

__m256 _ZGVdN8v_expf(__m256 x);   /* glibc's libmvec, AVX2 */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

#define QB 64                      /* queries per block */

/* ----------------------------------------------------------------------------------- GEMM */

/*
 * An edge tile: rows in [1, 4], w columns in [1, 16], masked loads and stores; a loop over the
 * rows it has, where tg_tile's edge form always computes six. (The full tiles are tg_gemm.h's.)
 */
static void tile_edge(int rows, int w, int k, const float *A, long sr, long sp, const float *B, long ldb, float *C,
                      long ldc, int acc) {
    __m256i m0 = tg_tail_mask(w < 8 ? w : 8), m1 = tg_tail_mask(w > 8 ? w - 8 : 0);
    __m256 c[4][2];
    for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *b = B + p * ldb;
        __m256 b0 = _mm256_maskload_ps(b, m0);
        __m256 b1 = w > 8 ? _mm256_maskload_ps(b + 8, m1) : _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(A + r * sr + p * sp);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *o = C + r * ldc;
        if (acc) {
            c[r][0] = _mm256_add_ps(c[r][0], _mm256_maskload_ps(o, m0));
            if (w > 8) c[r][1] = _mm256_add_ps(c[r][1], _mm256_maskload_ps(o + 8, m1));
        }
        _mm256_maskstore_ps(o, m0, c[r][0]);
        if (w > 8) _mm256_maskstore_ps(o + 8, m1, c[r][1]);
    }
}

/* gemm_s on AVX-512 tiles of 6 x 32 (tg_tile512): the same sums, half the instructions. */
static inline __attribute__((always_inline)) TG_AVX512 void gemm_s512(int m, int n, int k, const float *A, long sr, long sp,
                                                                    const float *B, long ldb, float *C, long ldc, int acc) {
    for (int i = 0; i < m; i += 6) {
        const float *a = A + i * sr;
        float *c = C + i * ldc;
        int rows = m - i < 6 ? m - i : 6;
        for (int j = 0; j < n; j += 32) {
            int w = n - j < 32 ? n - j : 32;
            switch (rows) {
                case 6: tg_tile512(6, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
                case 5: tg_tile512(5, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
                case 4: tg_tile512(4, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
                case 3: tg_tile512(3, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
                case 2: tg_tile512(2, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
                default: tg_tile512(1, w, k, a, sr, sp, B + j, ldb, c + j, ldc, acc); break;
            }
        }
    }
}

static TG_AVX512 void gemm512(int m, int n, int k, const float *A, long lda, const float *B, long ldb, float *C, long ldc,
                              int acc) {
    gemm_s512(m, n, k, A, lda, 1, B, ldb, C, ldc, acc);
}

static TG_AVX512 void gemm_tn512(int m, int n, int k, const float *A, long lda, const float *B, long ldb, float *C,
                                 long ldc, int acc) {
    gemm_s512(m, n, k, A, 1, lda, B, ldb, C, ldc, acc);
}

/* Whether the AVX-512 tiles may run (NativeTraining.wideTiles: the tests run both and compare). */
static int wide_allowed = 1;

/*
 * C[m][n] = (acc ? C : 0) + A[m][k] B[k][n], B and C row-major with the given row strides; A's
 * element (i, p) at A[i sr + p sp] (row-major: sr = lda, sp = 1; transposed: sr = 1, sp = lda).
 * Inlined into gemm and gemm_tn, so that each has its own copy with its unit stride a constant
 * (one register and one add fewer in the tiles' inner loops).
 */
static inline __attribute__((always_inline)) void gemm_s(int m, int n, int k, const float *A, long sr, long sp, const float *B, long ldb, float *C, long ldc,
                   int acc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!acc) for (int i = 0; i < m; i++) memset(C + i * ldc, 0, sizeof(float) * n);
        return;
    }
    if (wide_allowed && tg_avx512()) {
        if (sp == 1) gemm512(m, n, k, A, sr, B, ldb, C, ldc, acc);
        else gemm_tn512(m, n, k, A, sp, B, ldb, C, ldc, acc);
        return;
    }
    int i = 0;
    for (; i + 6 <= m; i += 6) {
        int j = 0;
        for (; j + 16 <= n; j += 16) tg_tile(6, 16, k, A + i * sr, sr, sp, B + j, ldb, C + i * ldc + j, ldc, acc, 0);
        if (j < n) {
            tile_edge(4, n - j, k, A + i * sr, sr, sp, B + j, ldb, C + i * ldc + j, ldc, acc);
            tile_edge(2, n - j, k, A + (i + 4) * sr, sr, sp, B + j, ldb, C + (i + 4) * ldc + j, ldc, acc);
        }
    }
    for (; i + 4 <= m; i += 4) {
        int j = 0;
        for (; j + 16 <= n; j += 16) tg_tile(4, 16, k, A + i * sr, sr, sp, B + j, ldb, C + i * ldc + j, ldc, acc, 0);
        if (j < n) tile_edge(4, n - j, k, A + i * sr, sr, sp, B + j, ldb, C + i * ldc + j, ldc, acc);
    }
    if (i < m) {
        for (int j = 0; j < n; j += 16) {
            tile_edge(m - i, n - j < 16 ? n - j : 16, k, A + i * sr, sr, sp, B + j, ldb, C + i * ldc + j, ldc, acc);
        }
    }
}

/* C = A B with A row-major (row stride lda). */
static void gemm(int m, int n, int k, const float *A, long lda, const float *B, long ldb, float *C, long ldc, int acc) {
    gemm_s(m, n, k, A, lda, 1, B, ldb, C, ldc, acc);
}

/* C = Aᵀ B with A [k][m] row-major (row stride lda): no transposed copy of A. */
static void gemm_tn(int m, int n, int k, const float *A, long lda, const float *B, long ldb, float *C, long ldc, int acc) {
    gemm_s(m, n, k, A, 1, lda, B, ldb, C, ldc, acc);
}

/* ------------------------------------------------------------------------------ attention */

typedef struct {
    const float *qkv, *pkv, *o, *lse, *dout;
    float *out, *lseOut, *dqkv, *dpkv;
    int B, T, P, Bp, heads, kvh, D, accumulate;
    float *slab;                   /* [B][kvh][P][2][D] partial prefix gradients when Bp < B */
} attn_job;

/* Per-worker scratch, grown as needed (the call mutex keeps calls apart). */
static struct {
    float *s, *dp, *kt, *vt, *dk, *dv;
    size_t ns, ndp, nkt, nvt, ndk, ndv;
} scratch[TG_MAX_HELPERS + 1];
static int scratch_failed;

static int scratch_for(int worker, int L, int D) {
    size_t sq = (size_t) QB * L, kd = (size_t) L * D;
    int ok = grow((void **) &scratch[worker].s, &scratch[worker].ns, sq, sizeof(float))
            && grow((void **) &scratch[worker].dp, &scratch[worker].ndp, sq, sizeof(float))
            && grow((void **) &scratch[worker].kt, &scratch[worker].nkt, kd, sizeof(float))
            && grow((void **) &scratch[worker].vt, &scratch[worker].nvt, kd, sizeof(float))
            && grow((void **) &scratch[worker].dk, &scratch[worker].ndk, kd, sizeof(float))
            && grow((void **) &scratch[worker].dv, &scratch[worker].ndv, kd, sizeof(float));
    if (!ok) scratch_failed = 1;
    return ok;
}

/* The key (which = 0) or value (1) row of position j (prefix first) for row b, head g. */
static inline const float *kv_row(const attn_job *j, int b, int g, int pos, int which) {
    long nh = j->heads + 2L * j->kvh;
    long head = j->heads + (long) which * j->kvh + g;
    if (pos < j->P) return j->pkv + (((long) (j->Bp == 1 ? 0 : b) * j->P + pos) * nh + head) * j->D;
    return j->qkv + (((long) b * j->T + pos - j->P) * nh + head) * j->D;
}

/* dst[D][L] = the transposed keys (which = 0) or values (1) of row b, head g. */
static void transpose_kv(const attn_job *j, int b, int g, int which, float *dst, int L) {
    int D = j->D;
    for (int pos = 0; pos < L; pos++) {
        const float *src = kv_row(j, b, g, pos, which);
        for (int d = 0; d < D; d++) dst[(long) d * L + pos] = src[d];
    }
}

/*
 * Row i of a block of scores s (width n, query at own index qi): probabilities over the vis = P + qi + 1
 * visible keys, zero beyond. With lse_in, p = exp(s - lse); else the softmax, its lse stored in *lse_out.
 */
static void softmax_row(float *s, int n, int vis, const float *lse_in, float *lse_out) {
    int j;
    float sub;
    if (lse_in) {
        sub = *lse_in;
    } else {
        /* the largest score, four vectors at a time (a scalar loop waits on each comparison) */
        __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
        for (j = 0; j + 32 <= vis; j += 32) {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + j));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(s + j + 8));
            m2 = _mm256_max_ps(m2, _mm256_loadu_ps(s + j + 16));
            m3 = _mm256_max_ps(m3, _mm256_loadu_ps(s + j + 24));
        }
        for (; j + 8 <= vis; j += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + j));
        m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
        float lanes[8];
        _mm256_storeu_ps(lanes, m0);
        float mx = -INFINITY;
        for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
        for (; j < vis; j++) mx = s[j] > mx ? s[j] : mx;
        sub = mx;
    }
    __m256 vsub = _mm256_set1_ps(sub);
    __m256 vsum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= vis; j += 8) {
        __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(s + j), vsub));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (; j < vis; j++) {
        s[j] = expf(s[j] - sub);
        sum += s[j];
    }
    for (j = vis; j < n; j++) s[j] = 0.0f;
    if (!lse_in) {
        float inv = 1.0f / sum;
        __m256 vi = _mm256_set1_ps(inv);
        for (j = 0; j + 8 <= vis; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), vi));
        for (; j < vis; j++) s[j] *= inv;
        *lse_out = sub + logf(sum);
    }
}

static void attn_forward_unit(void *ctx, int item, int worker) {
    attn_job *j = (attn_job *) ctx;
    int b = item / j->kvh, g = item % j->kvh;
    int D = j->D, T = j->T, P = j->P, L = P + T, r = j->heads / j->kvh;
    long nh = j->heads + 2L * j->kvh, qs = nh * D, os = (long) j->heads * D;
    if (!scratch_for(worker, L, D)) return;
    float *s = scratch[worker].s, *kt = scratch[worker].kt;
    transpose_kv(j, b, g, 0, kt, L);
    for (int hh = 0; hh < r; hh++) {
        int h = g * r + hh;
        for (int i0 = 0; i0 < T; i0 += QB) {
            int rows = T - i0 < QB ? T - i0 : QB;
            int lvis = P + i0 + rows;
            const float *q = j->qkv + ((long) b * T + i0) * qs + (long) h * D;
            gemm(rows, lvis, D, q, qs, kt, L, s, lvis, 0);
            for (int i = 0; i < rows; i++) {
                softmax_row(s + (long) i * lvis, lvis, P + i0 + i + 1, NULL,
                            j->lseOut + ((long) b * j->heads + h) * T + i0 + i);
            }
            float *o = j->out + ((long) b * T + i0) * os + (long) h * D;
            if (P > 0) gemm(rows, D, P, s, lvis, kv_row(j, b, g, 0, 1), qs, o, os, 0);
            gemm(rows, D, lvis - P, s + P, lvis, kv_row(j, b, g, P, 1), qs, o, os, P > 0);
        }
    }
}

static void attn_backward_unit(void *ctx, int item, int worker) {
    attn_job *j = (attn_job *) ctx;
    int b = item / j->kvh, g = item % j->kvh;
    int D = j->D, T = j->T, P = j->P, L = P + T, r = j->heads / j->kvh;
    long nh = j->heads + 2L * j->kvh, qs = nh * D, os = (long) j->heads * D;
    if (!scratch_for(worker, L, D)) return;
    float *s = scratch[worker].s, *dp = scratch[worker].dp;
    float *kt = scratch[worker].kt, *vt = scratch[worker].vt, *dk = scratch[worker].dk, *dv = scratch[worker].dv;
    transpose_kv(j, b, g, 0, kt, L);
    transpose_kv(j, b, g, 1, vt, L);
    memset(dk, 0, sizeof(float) * L * D);
    memset(dv, 0, sizeof(float) * L * D);
    float delta[QB];
    for (int hh = 0; hh < r; hh++) {
        int h = g * r + hh;
        for (int i0 = 0; i0 < T; i0 += QB) {
            int rows = T - i0 < QB ? T - i0 : QB;
            int lvis = P + i0 + rows;
            const float *q = j->qkv + ((long) b * T + i0) * qs + (long) h * D;
            const float *dO = j->dout + ((long) b * T + i0) * os + (long) h * D;
            const float *O = j->o + ((long) b * T + i0) * os + (long) h * D;
            const float *lse = j->lse + ((long) b * j->heads + h) * T + i0;
            gemm(rows, lvis, D, q, qs, kt, L, s, lvis, 0);
            gemm(rows, lvis, D, dO, os, vt, L, dp, lvis, 0);
            for (int i = 0; i < rows; i++) {
                float *si = s + (long) i * lvis, *dpi = dp + (long) i * lvis;
                int vis = P + i0 + i + 1;
                softmax_row(si, lvis, vis, lse + i, NULL);
                delta[i] = dot(dO + i * os, O + i * os, D);
                __m256 dl = _mm256_set1_ps(delta[i]);
                int c = 0;
                for (; c + 8 <= vis; c += 8) {
                    __m256 pv = _mm256_loadu_ps(si + c);
                    _mm256_storeu_ps(dpi + c, _mm256_mul_ps(pv, _mm256_sub_ps(_mm256_loadu_ps(dpi + c), dl)));
                }
                for (; c < vis; c++) dpi[c] = si[c] * (dpi[c] - delta[i]);
                for (; c < lvis; c++) dpi[c] = 0.0f;
            }
            /* dq = dS K over the visible keys: prefix rows, then the row's own */
            float *dq = j->dqkv + ((long) b * T + i0) * qs + (long) h * D;
            if (P > 0) gemm(rows, D, P, dp, lvis, kv_row(j, b, g, 0, 0), qs, dq, qs, j->accumulate);
            gemm(rows, D, lvis - P, dp + P, lvis, kv_row(j, b, g, P, 0), qs, dq, qs, P > 0 || j->accumulate);
            /* dK += dSᵀ q, dV += Pᵀ dO */
            gemm_tn(lvis, D, rows, dp, lvis, q, qs, dk, D, 1);
            gemm_tn(lvis, D, rows, s, lvis, dO, os, dv, D, 1);
        }
    }
    for (int pos = P; pos < L; pos++) {
        float *kd = j->dqkv + (((long) b * T + pos - P) * nh + j->heads + g) * D;
        float *vd = kd + (long) j->kvh * D;
        const float *ks = dk + (long) pos * D, *vs = dv + (long) pos * D;
        if (j->accumulate) {
            for (int d = 0; d < D; d++) { kd[d] += ks[d]; vd[d] += vs[d]; }
        } else {
            memcpy(kd, ks, sizeof(float) * D);
            memcpy(vd, vs, sizeof(float) * D);
        }
    }
    if (P > 0) {
        if (j->slab) {
            float *sl = j->slab + ((long) b * j->kvh + g) * P * 2 * D;
            for (int pos = 0; pos < P; pos++) {
                memcpy(sl + (long) pos * 2 * D, dk + (long) pos * D, sizeof(float) * D);
                memcpy(sl + (long) pos * 2 * D + D, dv + (long) pos * D, sizeof(float) * D);
            }
        } else {                                           /* Bp == B: this unit owns row b's prefix */
            for (int pos = 0; pos < P; pos++) {
                float *kd = j->dpkv + (((long) b * P + pos) * nh + j->heads + g) * D;
                float *vd = kd + (long) j->kvh * D;
                for (int d = 0; d < D; d++) { kd[d] += dk[(long) pos * D + d]; vd[d] += dv[(long) pos * D + d]; }
            }
        }
    }
}

/* Adds the per-row partial prefix gradients: item = (head g, a chunk of prefix positions). */
#define SLAB_CHUNK 64
static void slab_reduce(void *ctx, int item, int worker) {
    (void) worker;
    attn_job *j = (attn_job *) ctx;
    int chunks = (j->P + SLAB_CHUNK - 1) / SLAB_CHUNK;
    int g = item / chunks, p0 = (item % chunks) * SLAB_CHUNK, p1 = p0 + SLAB_CHUNK < j->P ? p0 + SLAB_CHUNK : j->P;
    long nh = j->heads + 2L * j->kvh;
    int D = j->D;
    for (int pos = p0; pos < p1; pos++) {
        float *kd = j->dpkv + ((long) pos * nh + j->heads + g) * D;
        float *vd = kd + (long) j->kvh * D;
        for (int b = 0; b < j->B; b++) {
            const float *sl = j->slab + (((long) b * j->kvh + g) * j->P + pos) * 2 * D;
            for (int d = 0; d < D; d++) { kd[d] += sl[d]; vd[d] += sl[D + d]; }
        }
    }
}

JNIEXPORT jboolean JNICALL Java_io_tailguard_model_NativeTraining_wideTiles(JNIEnv *env, jclass cls, jboolean allow) {
    (void) env; (void) cls;
    pthread_mutex_lock(&call_mu);
    wide_allowed = allow ? 1 : 0;
    pthread_mutex_unlock(&call_mu);
    return wide_allowed && tg_avx512() ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT jint JNICALL Java_io_tailguard_model_NativeTraining_pageSize(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    return PAGE;
}

JNIEXPORT jlong JNICALL Java_io_tailguard_model_NativeTraining_address(JNIEnv *env, jclass cls, jobject buf) {
    (void) cls;
    return (jlong) (intptr_t) (*env)->GetDirectBufferAddress(env, buf);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_attentionForward(JNIEnv *env, jclass cls,
        jobject qkvBuf, jobject pkvBuf, jobject outBuf, jobject lseBuf,
        jint B, jint T, jint P, jint Bp, jint heads, jint kvh, jint D, jint threads) {
    (void) cls;
    attn_job j;
    memset(&j, 0, sizeof j);
    j.qkv = addr(env, qkvBuf, "qkv");
    if (!j.qkv) return;
    if (P > 0 && !(j.pkv = addr(env, pkvBuf, "prefix"))) return;
    if (!(j.out = addr(env, outBuf, "out"))) return;
    if (!(j.lseOut = addr(env, lseBuf, "lse"))) return;
    j.B = B; j.T = T; j.P = P; j.Bp = Bp; j.heads = heads; j.kvh = kvh; j.D = D;
    pthread_mutex_lock(&call_mu);
    scratch_failed = 0;
    tg_run(attn_forward_unit, &j, B * kvh, threads);
    int failed = scratch_failed;
    pthread_mutex_unlock(&call_mu);
    if (failed) throw_new(env, "java/lang/OutOfMemoryError", "native attention scratch");
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_attentionBackward(JNIEnv *env, jclass cls,
        jobject qkvBuf, jobject pkvBuf, jobject oBuf, jobject lseBuf, jobject doutBuf, jobject dqkvBuf, jobject dpkvBuf,
        jint B, jint T, jint P, jint Bp, jint heads, jint kvh, jint D, jboolean accumulate, jint threads) {
    (void) cls;
    attn_job j;
    memset(&j, 0, sizeof j);
    if (!(j.qkv = addr(env, qkvBuf, "qkv"))) return;
    if (P > 0 && !(j.pkv = addr(env, pkvBuf, "prefix"))) return;
    if (P > 0 && !(j.dpkv = addr(env, dpkvBuf, "prefix gradient"))) return;
    if (!(j.o = addr(env, oBuf, "out"))) return;
    if (!(j.lse = addr(env, lseBuf, "lse"))) return;
    if (!(j.dout = addr(env, doutBuf, "out gradient"))) return;
    if (!(j.dqkv = addr(env, dqkvBuf, "qkv gradient"))) return;
    j.B = B; j.T = T; j.P = P; j.Bp = Bp; j.heads = heads; j.kvh = kvh; j.D = D; j.accumulate = accumulate ? 1 : 0;
    if (P > 0 && Bp < B) {
        j.slab = malloc(sizeof(float) * (size_t) B * kvh * P * 2 * D);
        if (!j.slab) {
            throw_new(env, "java/lang/OutOfMemoryError", "native attention prefix gradients");
            return;
        }
    }
    pthread_mutex_lock(&call_mu);
    scratch_failed = 0;
    tg_run(attn_backward_unit, &j, B * kvh, threads);
    int failed = scratch_failed;
    if (!failed && j.slab) tg_run(slab_reduce, &j, kvh * ((P + SLAB_CHUNK - 1) / SLAB_CHUNK), threads);
    pthread_mutex_unlock(&call_mu);
    free(j.slab);
    if (failed) throw_new(env, "java/lang/OutOfMemoryError", "native attention scratch");
}

/* ---------------------------------------------------------------------------------- AdamW */

typedef struct {
    float *p, *m, *v;
    const float *g;
    long n;
    float clip, b1, c1, b2, c2, bc1, bc2, eps, lr, decay;
    double *partial;
} adam_job;

#define ADAM_CHUNK 65536

/*
 * One chunk of AdamW, in the order and float precision of the libtorch twin (AdamW.java), every
 * product and sum rounded on its own:
 * g' = g clip; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; p -= p (lr wd); p -= lr (m / bc1) / (sqrt(v / bc2) + eps).
 */
__attribute__((optimize("fp-contract=off")))
static void adam_chunk(void *ctx, int item, int worker) {
    (void) worker;
    adam_job *j = (adam_job *) ctx;
    long i0 = (long) item * ADAM_CHUNK, i1 = i0 + ADAM_CHUNK < j->n ? i0 + ADAM_CHUNK : j->n;
    __m256 clip = _mm256_set1_ps(j->clip), b1 = _mm256_set1_ps(j->b1), c1 = _mm256_set1_ps(j->c1);
    __m256 b2 = _mm256_set1_ps(j->b2), c2 = _mm256_set1_ps(j->c2), bc1 = _mm256_set1_ps(j->bc1);
    __m256 bc2 = _mm256_set1_ps(j->bc2), eps = _mm256_set1_ps(j->eps), lr = _mm256_set1_ps(j->lr);
    __m256 decay = _mm256_set1_ps(j->decay);
    long i = i0;
    /* each product and sum rounded on its own (no fused multiply-add), as the tensor ops round them */
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(j->g + i), clip);
        __m256 m = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(j->m + i), b1), _mm256_mul_ps(g, c1));
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(j->v + i), b2), _mm256_mul_ps(_mm256_mul_ps(g, g), c2));
        _mm256_storeu_ps(j->m + i, m);
        _mm256_storeu_ps(j->v + i, v);
        __m256 update = _mm256_div_ps(_mm256_div_ps(m, bc1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(v, bc2)), eps));
        __m256 p = _mm256_loadu_ps(j->p + i);
        p = _mm256_sub_ps(p, _mm256_mul_ps(p, decay));
        _mm256_storeu_ps(j->p + i, _mm256_sub_ps(p, _mm256_mul_ps(update, lr)));
    }
    for (; i < i1; i++) {
        float g = j->g[i] * j->clip;
        float m = j->m[i] * j->b1 + g * j->c1;
        float v = j->v[i] * j->b2 + (g * g) * j->c2;
        j->m[i] = m;
        j->v[i] = v;
        float update = (m / j->bc1) / (sqrtf(v / j->bc2) + j->eps);
        float p = j->p[i];
        p = p - p * j->decay;
        j->p[i] = p - update * j->lr;
    }
}

static void sumsq_chunk(void *ctx, int item, int worker) {
    (void) worker;
    adam_job *j = (adam_job *) ctx;
    long i0 = (long) item * ADAM_CHUNK, i1 = i0 + ADAM_CHUNK < j->n ? i0 + ADAM_CHUNK : j->n;
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    long i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256 x = _mm256_loadu_ps(j->g + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < i1; i++) s += (double) j->g[i] * j->g[i];
    j->partial[item] = s;
}

JNIEXPORT jdouble JNICALL Java_io_tailguard_model_NativeTraining_sumOfSquares(JNIEnv *env, jclass cls,
        jobject gBuf, jlong n, jint threads) {
    (void) cls;
    adam_job j;
    memset(&j, 0, sizeof j);
    if (!(j.g = addr(env, gBuf, "gradient"))) return 0;
    j.n = n;
    int items = (int) ((n + ADAM_CHUNK - 1) / ADAM_CHUNK);
    double one;
    j.partial = items > 1 ? malloc(sizeof(double) * items) : &one;
    if (!j.partial) {
        throw_new(env, "java/lang/OutOfMemoryError", "native sum of squares");
        return 0;
    }
    pthread_mutex_lock(&call_mu);
    if (items > TG_MAX_ITEMS) {
        for (int i = 0; i < items; i++) sumsq_chunk(&j, i, 0);
    } else {
        tg_run(sumsq_chunk, &j, items, threads);
    }
    pthread_mutex_unlock(&call_mu);
    double s = 0;
    for (int i = 0; i < items; i++) s += j.partial[i];   /* in order: the same sum at any thread count */
    if (items > 1) free(j.partial);
    return s;
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_adamw(JNIEnv *env, jclass cls,
        jobject pBuf, jobject gBuf, jobject mBuf, jobject vBuf, jlong n,
        jfloat clip, jfloat b1, jfloat c1, jfloat b2, jfloat c2, jfloat bc1, jfloat bc2, jfloat eps, jfloat lr,
        jfloat decay, jint threads) {
    (void) cls;
    adam_job j;
    memset(&j, 0, sizeof j);
    if (!(j.p = addr(env, pBuf, "parameter"))) return;
    if (!(j.g = addr(env, gBuf, "gradient"))) return;
    if (!(j.m = addr(env, mBuf, "first moment"))) return;
    if (!(j.v = addr(env, vBuf, "second moment"))) return;
    j.n = n; j.clip = clip; j.b1 = b1; j.c1 = c1; j.b2 = b2; j.c2 = c2; j.bc1 = bc1; j.bc2 = bc2; j.eps = eps;
    j.lr = lr; j.decay = decay;
    int items = (int) ((n + ADAM_CHUNK - 1) / ADAM_CHUNK);
    pthread_mutex_lock(&call_mu);
    if (items > TG_MAX_ITEMS) {
        for (int i = 0; i < items; i++) adam_chunk(&j, i, 0);
    } else {
        tg_run(adam_chunk, &j, items, threads);
    }
    pthread_mutex_unlock(&call_mu);
}

/* ------------------------------------------------------------------- a layer's pointwise passes */

/*
 * The rest of a decoder layer's training step around its products (TrainingTape's layer entries):
 * RMSNorm, the per-head q/k RMSNorm with RoPE and q's 1/sqrt(D), and SwiGLU, each forward and
 * backward in one pass over its rows. Through libtorch's autograd each was several ops forward and
 * more backward, every one a pass over memory into a fresh tensor.
 *
 * Rows are split into items of a fixed number of rows (a function of the row count alone, never of
 * the threads), and a norm weight's gradient is summed per item and then over the items in order,
 * so the result is the same at any thread count.
 */

typedef struct {
    const float *x, *w, *wk, *rstd, *dy, *cosT, *sinT;   /* w: a norm's weight (q_norm), wk: k_norm */
    float *y, *rstdOut, *dx, *partial, *partial2;
    int rows, n, chunk, accumulate, T, start, heads, kvh, D;
    float eps, scale;
} lp_job;

/* Rows per item: 16, doubled until the items fit the pool's ticket. */
static int lp_chunk(long rows) {
    int c = 16;
    while ((rows + c - 1) / c > TG_MAX_ITEMS) c *= 2;
    return c;
}

/* 1 / sqrt(mean(x²) + eps) over n values (the libtorch twin's x / sqrt(...), as a reciprocal). */
static inline float rstd_of(const float *x, int n, float eps) {
    return 1.0f / sqrtf(dot(x, x, n) / (float) n + eps);
}

/*
 * The backward of y = w ⊙ x ⊙ r over one row: dx (+)= r (g - x̂ mean(g ⊙ x̂)), g = dy ⊙ w, x̂ = x r;
 * adds dy ⊙ x̂ into dw (the weight's gradient, this item's partial). dx may be dy (in place).
 */
static void norm_row_backward(const float *x, const float *w, float r, const float *dy, float *dx, float *dw, int n,
                              int accumulate) {
    __m256 vr = _mm256_set1_ps(r), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xh = _mm256_mul_ps(_mm256_loadu_ps(x + i), vr), d = _mm256_loadu_ps(dy + i);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_loadu_ps(w + i)), xh, acc);
        _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(d, xh, _mm256_loadu_ps(dw + i)));
    }
    float c = hsum(acc);
    for (; i < n; i++) {
        float xh = x[i] * r;
        c += dy[i] * w[i] * xh;
        dw[i] += dy[i] * xh;
    }
    c /= (float) n;
    __m256 vc = _mm256_set1_ps(c);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 xh = _mm256_mul_ps(_mm256_loadu_ps(x + i), vr);
        __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(w + i));
        __m256 v = _mm256_mul_ps(vr, _mm256_sub_ps(g, _mm256_mul_ps(xh, vc)));
        if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(dx + i));
        _mm256_storeu_ps(dx + i, v);
    }
    for (; i < n; i++) {
        float v = r * (dy[i] * w[i] - x[i] * r * c);
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

static void rms_forward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    int n = j->n, r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    for (int r = item * j->chunk; r < r1; r++) {
        const float *x = j->x + (long) r * n;
        float *y = j->y + (long) r * n;
        float s = rstd_of(x, n, j->eps);
        j->rstdOut[r] = s;
        for (int i = 0; i < n; i++) y[i] = x[i] * s * j->w[i];
    }
}

static void rms_backward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    int n = j->n, r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    float *dw = j->partial + (long) item * n;
    memset(dw, 0, sizeof(float) * n);
    for (int r = item * j->chunk; r < r1; r++) {
        long o = (long) r * n;
        norm_row_backward(j->x + o, j->w, j->rstd[r], j->dy + o, j->dx + o, dw, n, j->accumulate);
    }
}

/* out[i] = Σ over items of partial[item][i], in item order, in double. */
static void sum_partials(const float *partial, int items, int n, float *out) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < items; k++) s += partial[(long) k * n + i];
        out[i] = (float) s;
    }
}

/*
 * One head, forward: y = RoPE(x ⊙ r ⊙ w) · scale (rotate half; d even), r returned. The order of
 * operations is the libtorch twin's: normalize, weight, rotate, scale.
 */
static float head_forward(const float *x, const float *w, const float *c, const float *s, int d, float eps,
                          float scale, float *y, float *t) {
    float r = rstd_of(x, d, eps);
    for (int i = 0; i < d; i++) t[i] = x[i] * r * w[i];
    int half = d / 2;
    for (int i = 0; i < half; i++) {
        y[i] = (t[i] * c[i] - t[i + half] * s[i]) * scale;
        y[i + half] = (t[i + half] * c[i + half] + t[i] * s[i + half]) * scale;
    }
    return r;
}

/* One head, backward, in place: dy (the rows' gradient) becomes the raw product's; dw += this head's part. */
static void head_backward(const float *x, const float *w, const float *c, const float *s, int d, float r, float scale,
                          float *dy, float *dw, float *t) {
    int half = d / 2;
    for (int i = 0; i < half; i++) {           /* RoPE's transpose, and the scale */
        float a = dy[i] * scale, b = dy[i + half] * scale;
        t[i] = a * c[i] + b * s[i + half];
        t[i + half] = b * c[i + half] - a * s[i];
    }
    norm_row_backward(x, w, r, t, dy, dw, d, 0);
}

static void qk_forward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    const int D = j->D, nh = j->heads + 2 * j->kvh, width = nh * D, normed = j->heads + j->kvh;
    float t[D];
    int r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    for (int r = item * j->chunk; r < r1; r++) {
        long pos = j->start + r % j->T;
        const float *row = j->x + (long) r * width, *c = j->cosT + pos * D, *s = j->sinT + pos * D;
        float *out = j->y + (long) r * width;
        for (int h = 0; h < normed; h++) {
            int q = h < j->heads;
            j->rstdOut[(long) r * normed + h] = head_forward(row + (long) h * D, q ? j->w : j->wk, c, s, D, j->eps,
                                                             q ? j->scale : 1.0f, out + (long) h * D, t);
        }
        memcpy(out + (long) normed * D, row + (long) normed * D, sizeof(float) * (size_t) j->kvh * D);
    }
}

static void qk_backward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    const int D = j->D, nh = j->heads + 2 * j->kvh, width = nh * D, normed = j->heads + j->kvh;
    float t[D];
    float *dwq = j->partial + (long) item * D, *dwk = j->partial2 + (long) item * D;
    memset(dwq, 0, sizeof(float) * D);
    memset(dwk, 0, sizeof(float) * D);
    int r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    for (int r = item * j->chunk; r < r1; r++) {
        long pos = j->start + r % j->T;
        const float *row = j->x + (long) r * width, *c = j->cosT + pos * D, *s = j->sinT + pos * D;
        float *d = j->dx + (long) r * width;
        for (int h = 0; h < normed; h++) {
            int q = h < j->heads;
            head_backward(row + (long) h * D, q ? j->w : j->wk, c, s, D, j->rstd[(long) r * normed + h],
                          q ? j->scale : 1.0f, d + (long) h * D, q ? dwq : dwk, t);
        }
    }
}

static void swiglu_forward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    const int n = j->n;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    for (int r = item * j->chunk; r < r1; r++) {
        const float *g = j->x + (long) r * 2 * n, *u = g + n;
        float *o = j->y + (long) r * n;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(g + i);
            __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_sub_ps(zero, v))));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(v, sg), _mm256_loadu_ps(u + i)));
        }
        for (; i < n; i++) o[i] = g[i] * (1.0f / (1.0f + expf(-g[i]))) * u[i];
    }
}

/* d gate = da u σ (1 + g (1 - σ)), d up = da g σ, into dgu [rows, 2I], which may be gu itself. */
static void swiglu_backward_item(void *ctx, int item, int worker) {
    (void) worker;
    const lp_job *j = ctx;
    const int n = j->n;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int r1 = (item + 1) * j->chunk < j->rows ? (item + 1) * j->chunk : j->rows;
    for (int r = item * j->chunk; r < r1; r++) {
        const float *g = j->x + (long) r * 2 * n, *u = g + n, *da = j->dy + (long) r * n;
        float *dg = j->dx + (long) r * 2 * n, *du = dg + n;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(g + i), d = _mm256_loadu_ps(da + i);
            __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, _ZGVdN8v_expf(_mm256_sub_ps(zero, v))));
            __m256 dsg = _mm256_mul_ps(sg, _mm256_add_ps(one, _mm256_mul_ps(v, _mm256_sub_ps(one, sg))));
            _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(u + i)), dsg));
            _mm256_storeu_ps(du + i, _mm256_mul_ps(d, _mm256_mul_ps(v, sg)));
        }
        for (; i < n; i++) {                   /* dgu may be gu: read both before writing */
            float gi = g[i], ui = u[i], sg = 1.0f / (1.0f + expf(-gi));
            dg[i] = da[i] * ui * (sg * (1.0f + gi * (1.0f - sg)));
            du[i] = da[i] * (gi * sg);
        }
    }
}

/* Runs fn over the job's rows in items of j->chunk rows under the call mutex. */
static void lp_run(tg_fn fn, lp_job *j, int threads) {
    int items = (j->rows + j->chunk - 1) / j->chunk;
    pthread_mutex_lock(&call_mu);
    tg_run(fn, j, items, threads);
    pthread_mutex_unlock(&call_mu);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_rmsForward(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jobject yBuf, jobject rstdBuf, jint rows, jint n, jfloat eps, jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    if (!(j.x = addr(env, xBuf, "x")) || !(j.w = addr(env, wBuf, "norm weight")) || !(j.y = addr(env, yBuf, "y"))
            || !(j.rstdOut = addr(env, rstdBuf, "rstd"))) return;
    j.rows = rows; j.n = n; j.eps = eps; j.chunk = lp_chunk(rows);
    lp_run(rms_forward_item, &j, threads);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_rmsBackward(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jobject rstdBuf, jobject dyBuf, jobject dxBuf, jobject dwBuf, jint rows, jint n,
        jboolean accumulate, jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    float *dw;
    if (!(j.x = addr(env, xBuf, "x")) || !(j.w = addr(env, wBuf, "norm weight")) || !(j.rstd = addr(env, rstdBuf, "rstd"))
            || !(j.dy = addr(env, dyBuf, "dy")) || !(j.dx = addr(env, dxBuf, "dx"))
            || !(dw = addr(env, dwBuf, "norm weight gradient"))) return;
    j.rows = rows; j.n = n; j.chunk = lp_chunk(rows); j.accumulate = accumulate ? 1 : 0;
    int items = (rows + j.chunk - 1) / j.chunk;
    j.partial = malloc(sizeof(float) * (size_t) items * n);
    if (!j.partial) {
        throw_new(env, "java/lang/OutOfMemoryError", "native RMSNorm backward");
        return;
    }
    lp_run(rms_backward_item, &j, threads);
    sum_partials(j.partial, items, n, dw);
    free(j.partial);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_qkForward(JNIEnv *env, jclass cls,
        jobject qkvBuf, jobject wqBuf, jobject wkBuf, jobject cosBuf, jobject sinBuf, jobject rowsBuf, jobject rstdBuf,
        jint B, jint T, jint start, jint heads, jint kvh, jint D, jfloat eps, jfloat scale, jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    if (!(j.x = addr(env, qkvBuf, "qkv product")) || !(j.w = addr(env, wqBuf, "q_norm"))
            || !(j.wk = addr(env, wkBuf, "k_norm")) || !(j.cosT = addr(env, cosBuf, "rotary cos"))
            || !(j.sinT = addr(env, sinBuf, "rotary sin")) || !(j.y = addr(env, rowsBuf, "rows"))
            || !(j.rstdOut = addr(env, rstdBuf, "rstd"))) return;
    j.rows = B * T; j.T = T; j.start = start; j.heads = heads; j.kvh = kvh; j.D = D; j.eps = eps; j.scale = scale;
    j.chunk = lp_chunk(j.rows);
    lp_run(qk_forward_item, &j, threads);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_qkBackward(JNIEnv *env, jclass cls,
        jobject qkvBuf, jobject wqBuf, jobject wkBuf, jobject cosBuf, jobject sinBuf, jobject rstdBuf, jobject dBuf,
        jobject dwqBuf, jobject dwkBuf, jint B, jint T, jint start, jint heads, jint kvh, jint D, jfloat scale,
        jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    float *dwq, *dwk;
    if (!(j.x = addr(env, qkvBuf, "qkv product")) || !(j.w = addr(env, wqBuf, "q_norm"))
            || !(j.wk = addr(env, wkBuf, "k_norm")) || !(j.cosT = addr(env, cosBuf, "rotary cos"))
            || !(j.sinT = addr(env, sinBuf, "rotary sin")) || !(j.rstd = addr(env, rstdBuf, "rstd"))
            || !(j.dx = addr(env, dBuf, "rows gradient")) || !(dwq = addr(env, dwqBuf, "q_norm gradient"))
            || !(dwk = addr(env, dwkBuf, "k_norm gradient"))) return;
    j.rows = B * T; j.T = T; j.start = start; j.heads = heads; j.kvh = kvh; j.D = D; j.scale = scale;
    j.chunk = lp_chunk(j.rows);
    int items = (j.rows + j.chunk - 1) / j.chunk;
    j.partial = malloc(sizeof(float) * (size_t) items * D * 2);
    if (!j.partial) {
        throw_new(env, "java/lang/OutOfMemoryError", "native q/k norm backward");
        return;
    }
    j.partial2 = j.partial + (size_t) items * D;
    lp_run(qk_backward_item, &j, threads);
    sum_partials(j.partial, items, D, dwq);
    sum_partials(j.partial2, items, D, dwk);
    free(j.partial);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_swigluForward(JNIEnv *env, jclass cls,
        jobject guBuf, jobject aBuf, jint rows, jint n, jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    if (!(j.x = addr(env, guBuf, "gate/up product")) || !(j.y = addr(env, aBuf, "out"))) return;
    j.rows = rows; j.n = n; j.chunk = lp_chunk(rows);
    lp_run(swiglu_forward_item, &j, threads);
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeTraining_swigluBackward(JNIEnv *env, jclass cls,
        jobject guBuf, jobject daBuf, jobject dguBuf, jint rows, jint n, jint threads) {
    (void) cls;
    lp_job j;
    memset(&j, 0, sizeof j);
    if (!(j.x = addr(env, guBuf, "gate/up product")) || !(j.dy = addr(env, daBuf, "out gradient"))
            || !(j.dx = addr(env, dguBuf, "gate/up gradient"))) return;
    j.rows = rows; j.n = n; j.chunk = lp_chunk(rows);
    lp_run(swiglu_backward_item, &j, threads);
}
