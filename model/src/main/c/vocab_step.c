/*
 * The vocabulary projection of the training step (io.tailguard.model.NativeVocabulary): the
 * predicting rows' final hidden states x [n, H] times the lm_head (or tied embedding) W [V, H],
 * the log-softmax over the V logits, each row's target log-prob, and the backward of all that,
 * plus the backward of the embedding lookup.
 *
 * Forward: zt [V, n] = W xᵀ (the logits stored vocabulary-major, so every product below reads
 * both W and zt by rows), block by block of VB vocabulary rows; each block keeps per-row partial
 * maxima, sums of exp and sums of exp times logit, combined in block order into lse, the picked
 * log-prob z[t_i] - lse_i and the entropy. Backward: from g_i = dL/d(picked_i), block by block,
 * gt = g (onehot(t) - softmax(z)) in place of zt; dx += gtᵀ W_block (per slice of blocks, summed
 * in slice order at the end, so the result is the same at any thread count); dW_block += gt x,
 * added straight into W's gradient: no [n, V] temporaries beyond zt, no transposed copy of W,
 * and no V x H gradient tensor of its own (libtorch's path allocates two at a tied vocabulary of
 * 151,936 x 1024: 622 MB each, page-faulted afresh every step, then added into the gradient).
 *
 * scatterAdd: dW[ids[t]] += rows[t], the embedding lookup's backward, split by columns so that
 * workers never write the same memory and repeated ids add up in token order.
 *
 * Products run on tg_gemm.h's 6 x 16 AVX2 micro-kernel: C (+)= A B, B and C row-major, A by strides.
 */
#include <jni.h>
#include <math.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_gemm.h"
#include "tg_pool.h"
#include "tg_util.h"

__m256 _ZGVdN8v_expf(__m256 x);   /* glibc's libmvec, AVX2 */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

#define VB 60        /* vocabulary rows per block (ten row tiles of 6) */
#define KC 256       /* depth of one pass over the forward product (its B panel stays in L1) */
#define SLICES 8     /* backward work items: fixed, so the dx sum's order does not depend on threads */
#define GROUP 4      /* blocks per pass of the backward's products */
#define COLS 64      /* columns per scatter-add item */

/*
 * C[m][n] = (acc ? C : 0) + A B over depth k, A(i, p) = A[i sr + p sp], B [k][n] and C [m][n]
 * row-major with strides ldb and ldc. Depth in passes of KC; within a pass a column panel of B
 * (KC x 16) is reused by every row tile.
 */
static void gemm(int m, int n, int k, const float *A, long sr, long sp, const float *B, long ldb, float *C, long ldc,
                 int acc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (!acc) for (int i = 0; i < m; i++) memset(C + (long) i * ldc, 0, sizeof(float) * n);
        return;
    }
    for (int p0 = 0; p0 < k; p0 += KC) {
        int kc = k - p0 < KC ? k - p0 : KC;
        int ac = acc || p0 > 0;
        for (int j = 0; j < n; j += 16) {
            int w = n - j < 16 ? n - j : 16;
            const float *b = B + (long) p0 * ldb + j;
            for (int i = 0; i < m; i += 6) {
                int rows = m - i < 6 ? m - i : 6;
                const float *a = A + (long) i * sr + (long) p0 * sp;
                float *c = C + (long) i * ldc + j;
                if (rows == 6 && w == 16) tg_tile(6, 16, kc, a, sr, sp, b, ldb, c, ldc, ac, 0);
                else tg_tile(rows, w, kc, a, sr, sp, b, ldb, c, ldc, ac, 1);
            }
        }
    }
}

/* ------------------------------------------------------------------------------- scratch */

static float *s_xt, *s_part, *s_dx, *s_xp;
static size_t c_xt, c_part, c_dx, c_xp;

/* ------------------------------------------------------------------------------- forward */

typedef struct {
    const float *x, *w, *xt;
    float *zt;
    float *part;           /* [blocks][3][n]: max, Σ exp(z - max), Σ exp(z - max) z of each block */
    int n, h, v, blocks;
} fwd_job;

static void fwd_block(void *ctx, int item, int worker) {
    (void) worker;
    const fwd_job *j = ctx;
    int n = j->n;
    int v0 = item * VB;
    int vb = j->v - v0 < VB ? j->v - v0 : VB;
    float *zt = j->zt + (long) v0 * n;
    gemm(vb, n, j->h, j->w + (long) v0 * j->h, j->h, 1, j->xt, n, zt, n, 0);
    float *mx = j->part + (long) item * 3 * n, *se = mx + n, *sz = se + n;
    for (int i = 0; i < n; i += 8) {
        int w = n - i < 8 ? n - i : 8;
        __m256i mk = tg_tail_mask(w);
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (int r = 0; r < vb; r++) m = _mm256_max_ps(m, _mm256_maskload_ps(zt + (long) r * n + i, mk));
        __m256 s = _mm256_setzero_ps(), t = _mm256_setzero_ps();
        for (int r = 0; r < vb; r++) {
            __m256 z = _mm256_maskload_ps(zt + (long) r * n + i, mk);
            __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(z, m));
            s = _mm256_add_ps(s, e);
            t = _mm256_fmadd_ps(e, z, t);
        }
        _mm256_maskstore_ps(mx + i, mk, m);
        _mm256_maskstore_ps(se + i, mk, s);
        _mm256_maskstore_ps(sz + i, mk, t);
    }
}

typedef struct {
    const float *x;
    float *xt;
    int n, h;
} transpose_job;

#define TB 64
static void transpose_item(void *ctx, int item, int worker) {   /* xt[p][i] = x[i][p], a band of TB columns of x */
    (void) worker;
    const transpose_job *j = ctx;
    int p0 = item * TB, p1 = p0 + TB < j->h ? p0 + TB : j->h;
    for (int i0 = 0; i0 < j->n; i0 += TB) {
        int i1 = i0 + TB < j->n ? i0 + TB : j->n;
        for (int p = p0; p < p1; p++) {
            for (int i = i0; i < i1; i++) j->xt[(long) p * j->n + i] = j->x[(long) i * j->h + p];
        }
    }
}

JNIEXPORT jlong JNICALL Java_io_tailguard_model_NativeVocabulary_address(JNIEnv *env, jclass cls, jobject buf) {
    (void) cls;
    return (jlong) (intptr_t) (*env)->GetDirectBufferAddress(env, buf);
}

/* A target outside [0, v): IllegalArgumentException naming it, and 0. */
static int targets_ok(JNIEnv *env, const jint *t, int n, int v) {
    for (int i = 0; i < n; i++) {
        if (t[i] < 0 || t[i] >= v) {
            char msg[128];
            snprintf(msg, sizeof msg, "target %d of row %d is outside the vocabulary [0, %d)", t[i], i, v);
            throw_new(env, "java/lang/IllegalArgumentException", msg);
            return 0;
        }
    }
    return 1;
}

/*
 * The checks that forward and backward share before they run: a non-empty shape, and the n targets,
 * each in [0, v). The targets pinned, or NULL with an exception pending (nothing to release).
 */
static jint *targets_get(JNIEnv *env, jintArray targetsArr, int n, int h, int v) {
    if (n <= 0 || h <= 0 || v <= 0) {
        throw_new(env, "java/lang/IllegalArgumentException", "vocabulary projection: empty shape");
        return NULL;
    }
    jint *t = (*env)->GetIntArrayElements(env, targetsArr, NULL);
    if (t && !targets_ok(env, t, n, v)) {
        (*env)->ReleaseIntArrayElements(env, targetsArr, t, JNI_ABORT);
        return NULL;
    }
    return t;
}

/* Releases targets_get's targets; ok = 0 (scratch could not be had) throws OutOfMemoryError. */
static void targets_release(JNIEnv *env, jintArray targetsArr, jint *t, int ok) {
    (*env)->ReleaseIntArrayElements(env, targetsArr, t, JNI_ABORT);
    if (!ok) throw_new(env, "java/lang/OutOfMemoryError", "native vocabulary projection scratch");
}

/* The forward over raw memory; 0 when scratch could not be had. */
static int vocab_forward(const float *x, const float *w, const jint *t, float *zt, float *lse, float *picked,
                         float *entropy, int n, int h, int v, int threads) {
    fwd_job j;
    memset(&j, 0, sizeof j);
    j.x = x; j.w = w; j.zt = zt;
    j.n = n; j.h = h; j.v = v;
    j.blocks = (v + VB - 1) / VB;
    if (!grow((void **) &s_xt, &c_xt, (size_t) n * h, sizeof(float))
            || !grow((void **) &s_part, &c_part, (size_t) j.blocks * 3 * n, sizeof(float))) {
        return 0;
    }
    transpose_job tj = {x, s_xt, n, h};
    tg_run(transpose_item, &tj, (h + TB - 1) / TB, threads);
    j.xt = s_xt;
    j.part = s_part;
    tg_run(fwd_block, &j, j.blocks, threads);
    /* combine the blocks in order: the same sums at any thread count */
    for (int i = 0; i < n; i++) {
        float m = -INFINITY;
        for (int b = 0; b < j.blocks; b++) m = fmaxf(m, j.part[(long) b * 3 * n + i]);
        double s = 0, tz = 0;
        for (int b = 0; b < j.blocks; b++) {
            const float *pb = j.part + (long) b * 3 * n;
            double f = exp((double) pb[i] - m);
            s += pb[n + i] * f;
            tz += pb[2 * n + i] * f;
        }
        double l = m + log(s);
        lse[i] = (float) l;
        picked[i] = (float) (zt[(long) t[i] * n + i] - l);
        if (entropy) entropy[i] = (float) (l - tz / s);
    }
    return 1;
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeVocabulary_forward(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jintArray targetsArr, jobject ztBuf, jobject lseBuf, jobject pickedBuf,
        jobject entropyBuf, jint n, jint h, jint v, jint threads) {
    (void) cls;
    const float *x, *w;
    float *zt, *lse, *picked, *entropy = NULL;
    if (!(x = addr(env, xBuf, "rows"))) return;
    if (!(w = addr(env, wBuf, "weight"))) return;
    if (!(zt = addr(env, ztBuf, "logits"))) return;
    if (!(lse = addr(env, lseBuf, "lse"))) return;
    if (!(picked = addr(env, pickedBuf, "picked"))) return;
    if (entropyBuf && !(entropy = addr(env, entropyBuf, "entropy"))) return;
    jint *t = targets_get(env, targetsArr, n, h, v);
    if (!t) return;
    pthread_mutex_lock(&call_mu);
    int ok = vocab_forward(x, w, t, zt, lse, picked, entropy, n, h, v, threads);
    pthread_mutex_unlock(&call_mu);
    targets_release(env, targetsArr, t, ok);
}

/* ------------------------------------------------------------------------------ backward */

typedef struct {
    const float *x, *w, *lse, *g;
    const float *xp;       /* x in column panels [ceil(h / 16)][n][16], the last zero-padded */
    const jint *t;
    float *zt, *dw;
    float *part;           /* [SLICES][n][h] partial dx */
    int n, h, v, blocks;
} bwd_job;

/*
 * dW[vb][h] += gt[vb][n] x[n][h] with x as panels: six rows of dW at a time, swept left to right
 * (six sequential streams through memory the prefetchers follow; the gradient is far larger than
 * any cache), each 6 x 16 tile reading a contiguous panel of x.
 */
static void dw_block(const float *gt, int vb, int n, const float *xp, int h, float *dw) {
    for (int i = 0; i < vb; i += 6) {
        int rows = vb - i < 6 ? vb - i : 6;
        for (int j = 0; j < h; j += 16) {
            int w = h - j < 16 ? h - j : 16;
            const float *b = xp + (long) (j / 16) * n * 16;
            float *c = dw + (long) i * h + j;
            if (rows == 6 && w == 16) tg_tile(6, 16, n, gt + (long) i * n, n, 1, b, 16, c, h, 1, 0);
            else tg_tile(rows, w, n, gt + (long) i * n, n, 1, b, 16, c, h, 1, 1);
        }
    }
}

typedef struct {
    const float *x;
    float *xp;
    int n, h;
} panel_job;

static void panel_item(void *ctx, int item, int worker) {   /* panel item of x: columns [16 item, 16 item + 16) */
    (void) worker;
    const panel_job *j = ctx;
    int c0 = item * 16, w = j->h - c0 < 16 ? j->h - c0 : 16;
    float *out = j->xp + (long) item * j->n * 16;
    for (int i = 0; i < j->n; i++) {
        const float *row = j->x + (long) i * j->h + c0;
        for (int c = 0; c < 16; c++) out[i * 16 + c] = c < w ? row[c] : 0.0f;
    }
}

/* gt = g (onehot(t) - exp(zt - lse)) over one block's rows [vb][n], in place. */
static void block_gradient(const bwd_job *j, float *zt, int v0, int vb) {
    int n = j->n;
    for (int i = 0; i < n; i += 8) {
        int w = n - i < 8 ? n - i : 8;
        __m256i mk = tg_tail_mask(w);
        __m256 l = _mm256_maskload_ps(j->lse + i, mk);
        __m256 ng = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_maskload_ps(j->g + i, mk));
        for (int r = 0; r < vb; r++) {
            float *z = zt + (long) r * n + i;
            __m256 p = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_maskload_ps(z, mk), l));
            _mm256_maskstore_ps(z, mk, _mm256_mul_ps(ng, p));
        }
    }
    for (int i = 0; i < n; i++) {
        int r = j->t[i] - v0;
        if (r >= 0 && r < vb) zt[(long) r * n + i] += j->g[i];
    }
}

/*
 * dx[n][h] (+)= gt[len][n]ᵀ W[len][h] over a group of vocabulary rows: per 16 columns, the group's
 * slice of W is copied into a contiguous panel first (W's rows are 4 h bytes apart, which would
 * put every row of the panel in one L1 set), then every tile of 6 rows of dx reads it.
 */
static void dx_group(const float *gt, int len, int n, const float *w, int h, float *dx, int acc) {
    float panel[GROUP * VB * 16];
    for (int j = 0; j < h; j += 16) {
        int wd = h - j < 16 ? h - j : 16;
        for (int p = 0; p < len; p++) {
            const float *row = w + (long) p * h + j;
            for (int c = 0; c < 16; c++) panel[p * 16 + c] = c < wd ? row[c] : 0.0f;
        }
        for (int i = 0; i < n; i += 6) {
            int rows = n - i < 6 ? n - i : 6;
            float *c = dx + (long) i * h + j;
            if (rows == 6 && wd == 16) tg_tile(6, 16, len, gt + i, 1, n, panel, 16, c, h, acc, 0);
            else tg_tile(rows, wd, len, gt + i, 1, n, panel, 16, c, h, acc, 1);
        }
    }
}

static void bwd_slice(void *ctx, int item, int worker) {
    (void) worker;
    const bwd_job *j = ctx;
    int n = j->n, h = j->h;
    int b0 = (int) ((long) j->blocks * item / SLICES), b1 = (int) ((long) j->blocks * (item + 1) / SLICES);
    float *dx = j->part + (long) item * n * h;
    if (b0 == b1) {
        memset(dx, 0, sizeof(float) * (size_t) n * h);
        return;
    }
    /* GROUP blocks at a time: dx's tiles are read and written once per group, not once per block */
    for (int b = b0; b < b1; b += GROUP) {
        int v0 = b * VB;
        int v1 = (b + GROUP < b1 ? b + GROUP : b1) * VB;
        int len = (v1 < j->v ? v1 : j->v) - v0;
        float *gt = j->zt + (long) v0 * n;
        block_gradient(j, gt, v0, len);
        dx_group(gt, len, n, j->w + (long) v0 * h, h, dx, b > b0);                 /* dx += gtᵀ W_group */
        if (j->dw) dw_block(gt, len, n, j->xp, h, j->dw + (long) v0 * h);          /* dW_group += gt x */
    }
}

typedef struct {
    const float *part;
    float *dx;
    long total;
} sum_job;

#define SUM_CHUNK 16384
static void sum_item(void *ctx, int item, int worker) {
    (void) worker;
    const sum_job *j = ctx;
    long e0 = (long) item * SUM_CHUNK, e1 = e0 + SUM_CHUNK < j->total ? e0 + SUM_CHUNK : j->total;
    for (long e = e0; e < e1; e++) {
        float s = j->part[e];
        for (int k = 1; k < SLICES; k++) s += j->part[(long) k * j->total + e];
        j->dx[e] = s;
    }
}

/* The backward over raw memory (dw may be NULL: no weight gradient); 0 when scratch could not be had. */
static int vocab_backward(const float *x, const float *w, float *zt, const float *lse, const jint *t, const float *g,
                          float *dx, float *dw, int n, int h, int v, int threads) {
    bwd_job j;
    memset(&j, 0, sizeof j);
    j.x = x; j.w = w; j.zt = zt; j.lse = lse; j.t = t; j.g = g; j.dw = dw;
    j.n = n; j.h = h; j.v = v;
    j.blocks = (v + VB - 1) / VB;
    int panels = (h + 15) / 16;
    if (!grow((void **) &s_dx, &c_dx, (size_t) SLICES * n * h, sizeof(float))) return 0;
    if (dw) {
        if (!grow((void **) &s_xp, &c_xp, (size_t) panels * n * 16, sizeof(float))) return 0;
        panel_job pj = {x, s_xp, n, h};
        tg_run(panel_item, &pj, panels, threads);
        j.xp = s_xp;
    }
    j.part = s_dx;
    tg_run(bwd_slice, &j, SLICES, threads);
    sum_job sj = {s_dx, dx, (long) n * h};
    tg_run(sum_item, &sj, (int) ((sj.total + SUM_CHUNK - 1) / SUM_CHUNK), threads);
    return 1;
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeVocabulary_backward(JNIEnv *env, jclass cls,
        jobject xBuf, jobject wBuf, jobject ztBuf, jobject lseBuf, jintArray targetsArr, jobject gBuf, jobject dxBuf,
        jobject dwBuf, jint n, jint h, jint v, jint threads) {
    (void) cls;
    const float *x, *w, *lse, *g;
    float *zt, *dx, *dw = NULL;
    if (!(x = addr(env, xBuf, "rows"))) return;
    if (!(w = addr(env, wBuf, "weight"))) return;
    if (!(zt = addr(env, ztBuf, "logits"))) return;
    if (!(lse = addr(env, lseBuf, "lse"))) return;
    if (!(g = addr(env, gBuf, "picked gradient"))) return;
    if (!(dx = addr(env, dxBuf, "rows gradient"))) return;
    if (dwBuf && !(dw = addr(env, dwBuf, "weight gradient"))) return;
    jint *t = targets_get(env, targetsArr, n, h, v);
    if (!t) return;
    pthread_mutex_lock(&call_mu);
    int ok = vocab_backward(x, w, zt, lse, t, g, dx, dw, n, h, v, threads);
    pthread_mutex_unlock(&call_mu);
    targets_release(env, targetsArr, t, ok);
}

/* --------------------------------------------------------------------------- scatter-add */

typedef struct {
    const int64_t *ids;
    const float *rows;
    float *dw;
    long count;
    int h;
} scatter_job;

static void scatter_item(void *ctx, int item, int worker) {
    (void) worker;
    const scatter_job *j = ctx;
    int c0 = item * COLS, c1 = c0 + COLS < j->h ? c0 + COLS : j->h;
    for (long t = 0; t < j->count; t++) {
        float *d = j->dw + j->ids[t] * j->h;
        const float *r = j->rows + t * j->h;
        int c = c0;
        for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(d + c, _mm256_add_ps(_mm256_loadu_ps(d + c), _mm256_loadu_ps(r + c)));
        for (; c < c1; c++) d[c] += r[c];
    }
}

JNIEXPORT void JNICALL Java_io_tailguard_model_NativeVocabulary_scatterAdd(JNIEnv *env, jclass cls,
        jobject idsBuf, jobject rowsBuf, jobject dwBuf, jlong count, jint h, jint v, jint threads) {
    (void) cls;
    scatter_job j;
    if (!(j.ids = addr(env, idsBuf, "ids"))) return;
    if (!(j.rows = addr(env, rowsBuf, "rows gradient"))) return;
    if (!(j.dw = addr(env, dwBuf, "weight gradient"))) return;
    for (long t = 0; t < count; t++) {
        if (j.ids[t] < 0 || j.ids[t] >= v) {
            char msg[128];
            snprintf(msg, sizeof msg, "token id %lld at %ld is outside the vocabulary [0, %d)", (long long) j.ids[t], t, v);
            throw_new(env, "java/lang/IllegalArgumentException", msg);
            return;
        }
    }
    j.count = count;
    j.h = h;
    pthread_mutex_lock(&call_mu);
    tg_run(scatter_item, &j, (h + COLS - 1) / COLS, threads);
    pthread_mutex_unlock(&call_mu);
}
