/*
 * Block-Top-k sparse decode attention over the paged KV cache, read in place (docs/algorithms.md,
 * "Block-Top-k sparse decode attention").
 *
 * One call serves one sparse layer of one decode step. For every (sequence b, KV head h) it scores
 * the candidate pages' landmarks with the group's mean query, keeps the sink page, the two most
 * recent pages and the best budget/PAGE - 3 candidates, and attends exactly over the kept tokens:
 * the keys and values of those pages are read where the cache holds them, never copied, and no
 * other page is touched. The Java side (NativeBlockTopK) owns the layout contract:
 *   keys, values  [B, kvh, cap, D]    float32 or float16 (one flag for both), contiguous
 *   marks         [B, kvh, cap/PAGE, D] float32, page landmarks (mean key of each full page)
 *   q, out        [B, kvh, r, D]      float32, contiguous (q already carries the 1/sqrt(D) scale)
 *   lengths[b]    tokens of sequence b (this step's included); keep[b] pages it keeps
 * keep[b] >= ceil(lengths[b]/PAGE) means "every page" (a sequence that fits its budget).
 *
 * Work items are the B * kvh (sequence, head) pairs, claimed one at a time by the calling thread
 * and the helper threads of tg_pool.h (model/src/main/c), which spin briefly after their last item
 * and then sleep; the caller never waits for a sleeping helper, only for items in progress.
 *
 * Built with -mavx2 -mfma -mf16c; the Java side loads it only on a CPU that has all three. Where the CPU has
 * AVX-512 (F, BW, DQ, VL; checked once at run time), a page is attended with 16-wide vectors and the
 * queries' weighted values stay in registers (wide_page); elsewhere the AVX2 loop below does the
 * same arithmetic. A float16 cache is widened exactly (F16C): as it streams in the AVX-512 loop, a
 * page at a time into float32 scratch in the AVX2 one; both compute in float32 and read half the bytes.
 */
#include <jni.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_page.h"   /* model/src/main/c: the page size, checked against KvCache.PAGE at load */
#include "tg_pool.h"   /* model/src/main/c: the helper threads */
#include "tg_util.h"

#define PF 4          /* pages prefetched ahead, keys and values */
#define MAXD 256      /* the widest head the float16 page scratch holds */

#define WIDE __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

__m256 _ZGVdN8v_expf(__m256 x);   /* glibc's libmvec, AVX2 */
WIDE __m512 _ZGVeN16v_expf(__m512 x); /* glibc's libmvec, AVX-512 */

/* ------------------------------------------------------------------------------------------ job */

typedef struct {
    const void *keys, *values; /* float32, or float16 where f16 */
    const float *marks, *q;
    float *out;
    const int *lengths, *keep;
    int kvh, r, d, cap, f16, wide;
} Params;

typedef struct {
    float *s;       /* r * 16: one page's scores, then weights */
    float *qmean;   /* d */
    float *pscore;  /* candidate page scores (the landmark scores: the one buffer that grows with the context) */
    int *heap;      /* candidate pages in a min-heap on (score, -page) */
    int *sel;       /* kept pages */
    float *acc;     /* r * d */
    float *mx, *sum;
    float kpage[PAGE * MAXD], vpage[PAGE * MAXD]; /* a float16 page widened */
    size_t cap_s, cap_pages, cap_heap, cap_sel, cap_rd, cap_d;
} Scratch;

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static Scratch scratch[TG_MAX_HELPERS + 1];   /* one per worker of the pool */
static atomic_int failed;                     /* an allocation failed in the current call */

/* ------------------------------------------------------------------------------ vector helpers */

/* y += a * x */
static inline void axpy(float *y, float a, const float *x, int d) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= d; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < d; i++) y[i] += a * x[i];
}

/*
 * Scattered pages are hinted into L2, not L1: the L1's few miss buffers filled with a page's 64
 * lines and stalled the loop, where L2 takes them (sparse attention at context 2304, 64 of 144
 * pages: about a quarter faster on the project's VM, AVX2 and AVX-512 loops alike).
 */
static inline void prefetch_page(const void *p, long bytes) {
    const char *c = (const char *) p;
    for (long o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
}

/* n float16 values to float32 (exact). */
static void widen_f16(float *dst, const uint16_t *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

/* ----------------------------------------------------------------------------- page selection */

/* a ranks below b: a lower score, or an equal score and a later page */
static inline int worse(const float *score, int a, int b) {
    return score[a] < score[b] || (score[a] == score[b] && a > b);
}

static void sift_down(int *h, int n, int i, const float *score) {
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < n && worse(score, h[l], h[w])) w = l;
        if (l + 1 < n && worse(score, h[l + 1], h[w])) w = l + 1;
        if (w == i) return;
        int t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

/*
 * Kept pages of one (sequence, head), ascending: all of them if keep >= pages, else the sink page 0,
 * the last two pages and the keep - 3 candidates in [1, pages - 3] with the highest q̄ · landmark
 * (ties: the earlier page). Returns how many.
 */
static int select_pages(const Params *p, Scratch *sc, const float *q, const float *marks, int pages, int keep) {
    int *sel = sc->sel;
    if (keep >= pages) {
        for (int g = 0; g < pages; g++) sel[g] = g;
        return pages;
    }
    int d = p->d, r = p->r;
    float *qm = sc->qmean;
    for (int j = 0; j < d; j++) {
        float s = 0;
        for (int i = 0; i < r; i++) s += q[i * d + j];
        qm[j] = s / (float) r;
    }
    int m = keep - 3;                /* 0 at the smallest budget (48): only the forced pages */
    float *score = sc->pscore;       /* indexed by page */
    int *heap = sc->heap, n = 0;
    for (int pg = 1; m > 0 && pg <= pages - 3; pg++) {
        score[pg] = dot(qm, marks + (long) pg * d, d);
        if (n < m) {
            heap[n++] = pg;
            if (n == m) for (int i = m / 2 - 1; i >= 0; i--) sift_down(heap, m, i, score);
        } else if (worse(score, heap[0], pg)) {
            heap[0] = pg;
            sift_down(heap, m, 0, score);
        }
    }
    int k = 0;
    sel[k++] = 0;
    for (int i = 0; i < n; i++) sel[k++] = heap[i];
    sel[k++] = pages - 2;
    sel[k++] = pages - 1;
    qsort(sel + 1, n, sizeof(int), cmp_int);
    return k;
}

/* ---------------------------------------------------------------------------------- attention */

/*
 * The running state of one (sequence, head) over its kept pages (online softmax): per query i the
 * largest score m[i] so far, the sum of exp(s − m[i]) and the weighted values acc[i], rescaled when
 * m[i] grows. Both loops below fold one page of `tokens` keys kp and values vp ([tokens, d]
 * float32) into it.
 */

/* The AVX2 loop: any head size. w: r · PAGE scratch. */
static void narrow_page(const float *kp, const float *vp, int tokens, const float *q, int r, int d, float *w,
                        float *mx, float *sum, float *acc) {
    for (int i = 0; i < r; i++) {
        float *wi = w + i * PAGE;
        const float *qi = q + i * d;
        float m = mx[i];
        for (int t = 0; t < tokens; t++) {
            wi[t] = dot(qi, kp + (long) t * d, d);
            if (wi[t] > m) m = wi[t];
        }
        if (m > mx[i]) {
            float c = expf(mx[i] - m);   /* 0 on the first page */
            sum[i] *= c;
            float *ai = acc + i * d;
            for (int j = 0; j < d; j++) ai[j] *= c;
            mx[i] = m;
        }
        float z;
        if (tokens == PAGE) {
            __m256 mv = _mm256_set1_ps(m);
            __m256 e0 = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(wi), mv));
            __m256 e1 = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(wi + 8), mv));
            _mm256_storeu_ps(wi, e0);
            _mm256_storeu_ps(wi + 8, e1);
            z = hsum(_mm256_add_ps(e0, e1));
        } else {
            z = 0;
            for (int t = 0; t < tokens; t++) {
                wi[t] = expf(wi[t] - m);
                z += wi[t];
            }
        }
        sum[i] += z;
    }
    for (int t = 0; t < tokens; t++) {
        const float *v = vp + (long) t * d;
        for (int i = 0; i < r; i++) axpy(acc + i * d, w[i * PAGE + t], v, d);
    }
}

/* 16 float16 values as float32 (exact). */
static inline __attribute__((always_inline)) WIDE __m512 widen16(const uint16_t *src) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) src));
}

/* Lane t of the result is the sum of the 16 lanes of v[t]: a transpose folded into additions. */
static inline __attribute__((always_inline)) WIDE __m512 sum16x16(const __m512 *v) {
    __m512 t[8], s[4], y[2];
    for (int k = 0; k < 8; k++) {
        t[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
    }
    for (int k = 0; k < 4; k++) { /* per 128-bit block: the block sums of vectors 4k .. 4k+3 */
        s[k] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0x44), _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0xEE));
    }
    for (int k = 0; k < 2; k++) {
        y[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0x88), _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0xDD));
    }
    return _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
}

/*
 * One query's scores of a page (sc, masked lanes −inf) into the running softmax: the maximum, the
 * rescaled sum and accumulator, and the page's weights into wt (16 per query).
 */
static inline __attribute__((always_inline)) WIDE void wide_softmax(__m512 sc, __mmask16 live, int i, int d, float *mx,
                                                                     float *sum, float *acc, float *wt, const int D16) {
    float m = _mm512_reduce_max_ps(sc);
    if (m > mx[i]) {
        float c = expf(mx[i] - m);   /* 0 on the first page */
        sum[i] *= c;
        __m512 cv = _mm512_set1_ps(c);
        for (int k = 0; k < D16; k++) _mm512_storeu_ps(acc + i * d + 16 * k, _mm512_mul_ps(cv, _mm512_loadu_ps(acc + i * d + 16 * k)));
        mx[i] = m;
    }
    __m512 e = _mm512_maskz_mov_ps(live, _ZGVeN16v_expf(_mm512_sub_ps(sc, _mm512_set1_ps(mx[i]))));
    sum[i] += _mm512_reduce_add_ps(e);
    _mm512_store_ps(wt + 16 * i, e);
}

/*
 * The AVX-512 loop for head sizes 16·D16 and tiles of NQ ≤ 16 / D16 queries (compile-time after
 * inlining): the scores of a page are one vector per query, and the tile's weighted values stay in
 * registers while the page's values stream past.
 */
static inline __attribute__((always_inline)) WIDE void wide_tile(const void *kp, const void *vp, int tokens,
                                                                  const float *q, int d, float *mx, float *sum,
                                                                  float *acc, const int D16, const int NQ, const int VH) {
    __attribute__((aligned(64))) float wt[16 * 16];
    __mmask16 live = (__mmask16) ((1u << tokens) - 1);
    if (VH || NQ == 2) {
        /* float16 keys are widened once for the whole tile (the conversions, not the products, bound
           this loop): each key's products with the tile's queries go to p[i][t], folded per query.
           Float32 keys take this loop in tiles of two queries too, each key loaded once (Qwen3's
           head size 128 and two queries per KV head on the project's Intel VM: 6.3 → 5.9 ms a layer
           at batch 8, context 2048); in larger tiles the spilled products cost more than reloading
           a key from L1 (small's four queries: 0.9 → 1.2 ms), and one query gains nothing */
        __m512 qv[16], p[4][16];
        for (int i = 0; i < NQ; i++) {
            for (int c = 0; c < D16; c++) qv[i * D16 + c] = _mm512_loadu_ps(q + i * d + 16 * c);
        }
        for (int t = 0; t < PAGE; t++) {
            if (t < tokens) {
                __m512 kv[8];
                for (int c = 0; c < D16; c++) {
                    long at = (long) t * d + 16 * c;
                    kv[c] = VH ? widen16((const uint16_t *) kp + at) : _mm512_loadu_ps((const float *) kp + at);
                }
                for (int i = 0; i < NQ; i++) {
                    __m512 s = _mm512_mul_ps(qv[i * D16], kv[0]);
                    for (int c = 1; c < D16; c++) s = _mm512_fmadd_ps(qv[i * D16 + c], kv[c], s);
                    p[i][t] = s;
                }
            } else {
                for (int i = 0; i < NQ; i++) p[i][t] = _mm512_setzero_ps();
            }
        }
        for (int i = 0; i < NQ; i++) {
            wide_softmax(_mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), sum16x16(p[i])), live, i, d, mx, sum, acc, wt, D16);
        }
    } else {
        /* float32 keys otherwise: one query at a time, its 16 products in registers */
        for (int i = 0; i < NQ; i++) {
            __m512 qv[8], p[16];
            for (int c = 0; c < D16; c++) qv[c] = _mm512_loadu_ps(q + i * d + 16 * c);
            for (int t = 0; t < PAGE; t++) {
                __m512 s = _mm512_setzero_ps();
                if (t < tokens) {
                    for (int c = 0; c < D16; c++) s = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps((const float *) kp + (long) t * d + 16 * c), s);
                }
                p[t] = s;
            }
            wide_softmax(_mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), sum16x16(p)), live, i, d, mx, sum, acc, wt, D16);
        }
    }
    __m512 a[16];
    for (int i = 0; i < NQ; i++) {
        for (int c = 0; c < D16; c++) a[i * D16 + c] = _mm512_loadu_ps(acc + i * d + 16 * c);
    }
    for (int t = 0; t < tokens; t++) {
        __m512 vv[8];
        for (int c = 0; c < D16; c++) {
            long at = (long) t * d + 16 * c;
            vv[c] = VH ? widen16((const uint16_t *) vp + at) : _mm512_loadu_ps((const float *) vp + at);
        }
        for (int i = 0; i < NQ; i++) {
            __m512 wv = _mm512_set1_ps(wt[16 * i + t]);
            for (int c = 0; c < D16; c++) a[i * D16 + c] = _mm512_fmadd_ps(wv, vv[c], a[i * D16 + c]);
        }
    }
    for (int i = 0; i < NQ; i++) {
        for (int c = 0; c < D16; c++) _mm512_storeu_ps(acc + i * d + 16 * c, a[i * D16 + c]);
    }
}

/* Whether wide_page serves head size d. */
static int wide_serves(int d) { return d == 64 || d == 128; }

/* One page for all r queries, in tiles of 16 / (d / 16) queries; values float32, or float16 where vh. */
#define WIDE_TILE(D16, NQ) wide_tile(kp, vp, tokens, qi, d, mx + i0, sum + i0, ai, D16, NQ, 0)
#define WIDE_TILE_H(D16, NQ) wide_tile(kp, vp, tokens, qi, d, mx + i0, sum + i0, ai, D16, NQ, 1)
static WIDE void wide_page(const void *kp, const void *vp, int vh, int tokens, const float *q, int r, int d,
                           float *mx, float *sum, float *acc) {
    int per = d == 64 ? 4 : 2;
    for (int i0 = 0; i0 < r; i0 += per) {
        int nq = r - i0 < per ? r - i0 : per;
        const float *qi = q + (long) i0 * d;
        float *ai = acc + (long) i0 * d;
        int shape = (d == 64 ? 0 : 4) + nq - 1 + (vh ? 8 : 0);
        switch (shape) {
            case 0: WIDE_TILE(4, 1); break;
            case 1: WIDE_TILE(4, 2); break;
            case 2: WIDE_TILE(4, 3); break;
            case 3: WIDE_TILE(4, 4); break;
            case 4: WIDE_TILE(8, 1); break;
            case 5: WIDE_TILE(8, 2); break;
            case 8: WIDE_TILE_H(4, 1); break;
            case 9: WIDE_TILE_H(4, 2); break;
            case 10: WIDE_TILE_H(4, 3); break;
            case 11: WIDE_TILE_H(4, 4); break;
            case 12: WIDE_TILE_H(8, 1); break;
            default: WIDE_TILE_H(8, 2); break;
        }
    }
}

static int run_item(const Params *p, Scratch *sc, int item) {
    int b = item / p->kvh;
    int len = p->lengths[b];
    int pages = (len + PAGE - 1) / PAGE;
    int keep = p->keep[b];
    int r = p->r, d = p->d;
    long bh = item;
    int esz = p->f16 ? 2 : 4;
    const char *K = (const char *) p->keys + bh * p->cap * d * esz;
    const char *V = (const char *) p->values + bh * p->cap * d * esz;
    const float *M = p->marks + bh * (p->cap / PAGE) * d;
    const float *q = p->q + bh * r * d;
    float *out = p->out + bh * r * d;
    if (!grow((void **) &sc->s, &sc->cap_s, (size_t) r * PAGE, sizeof(float))
        || !grow((void **) &sc->pscore, &sc->cap_pages, (size_t) pages + 1, sizeof(float))
        || !grow((void **) &sc->heap, &sc->cap_heap, (size_t) keep + 1, sizeof(int))
        || !grow((void **) &sc->sel, &sc->cap_sel, (size_t) (keep < pages ? keep : pages) + 1, sizeof(int))
        || !grow((void **) &sc->acc, &sc->cap_rd, (size_t) r * d, sizeof(float))
        || !grow((void **) &sc->qmean, &sc->cap_d, (size_t) d + 2 * (size_t) r, sizeof(float))) {
        return 0;
    }
    sc->mx = sc->qmean + d;
    sc->sum = sc->mx + r;

    int nsel = select_pages(p, sc, q, M, pages, keep);
    const int *sel = sc->sel;
    float *mx = sc->mx, *sum = sc->sum, *acc = sc->acc;
    for (int i = 0; i < r; i++) {
        mx[i] = -INFINITY;
        sum[i] = 0;
    }
    memset(acc, 0, sizeof(float) * (size_t) r * d);
    long page_bytes = (long) PAGE * d * esz;
    int wide = p->wide && wide_serves(d);
    /* the hardware prefetchers follow a run of consecutive float32 pages; scattered pages need a hint,
       and so do float16 ones, whose loop widens and multiplies long enough between loads that pages
       hinted ahead arrive in time (small's shape on the project's Intel VM, every page kept: 0.62 →
       0.50 ms a layer; float32 pages hinted the same way went 10 % slower) */
    int hint = nsel < pages || p->f16;
    for (int g = 0; hint && g < PF && g < nsel; g++) {
        prefetch_page(K + sel[g] * page_bytes, page_bytes);
        prefetch_page(V + sel[g] * page_bytes, page_bytes);
    }
    for (int g = 0; g < nsel; g++) {
        int pg = sel[g];
        int tokens = len - pg * PAGE < PAGE ? len - pg * PAGE : PAGE;
        if (hint && g + PF < nsel) {
            prefetch_page(K + sel[g + PF] * page_bytes, page_bytes);
            prefetch_page(V + sel[g + PF] * page_bytes, page_bytes);
        }
        const char *kpg = K + pg * page_bytes, *vpg = V + pg * page_bytes;
        if (wide) {
            wide_page(kpg, vpg, p->f16, tokens, q, r, d, mx, sum, acc);
        } else if (p->f16) {
            widen_f16(sc->kpage, (const uint16_t *) kpg, tokens * d);
            widen_f16(sc->vpage, (const uint16_t *) vpg, tokens * d);
            narrow_page(sc->kpage, sc->vpage, tokens, q, r, d, sc->s, mx, sum, acc);
        } else {
            narrow_page((const float *) kpg, (const float *) vpg, tokens, q, r, d, sc->s, mx, sum, acc);
        }
    }
    for (int i = 0; i < r; i++) {
        float inv = 1.0f / sum[i];
        for (int j = 0; j < d; j++) out[i * d + j] = acc[i * d + j] * inv;
    }
    return 1;
}

static void attend_item(void *ctx, int item, int worker) {
    if (!run_item((const Params *) ctx, &scratch[worker], item)) atomic_store(&failed, 1);
}

/* --------------------------------------------------------------------------------------- JNI */

JNIEXPORT jint JNICALL Java_io_tailguard_rollout_sparse_NativeBlockTopK_pageSize(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    return PAGE;
}

JNIEXPORT jboolean JNICALL Java_io_tailguard_rollout_sparse_NativeBlockTopK_wideVectors(JNIEnv *env, jclass cls) {
    (void) env;
    (void) cls;
    return tg_cpu_avx512() ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL Java_io_tailguard_rollout_sparse_NativeBlockTopK_attend(JNIEnv *env, jclass cls,
        jobject keys, jobject values, jobject marks, jobject q, jobject out, jintArray lengthsArr, jintArray keepArr,
        jint batch, jint kvh, jint r, jint d, jint cap, jint threads, jint flags) {
    (void) cls;
    int f16 = flags & 1;
    if (f16 && d > MAXD) {
        throw_new(env, "java/lang/IllegalArgumentException", "float16 cache: head size above 256");
        return;
    }
    const void *K = addr(env, keys, "keys");
    if (!K) return;
    const void *V = addr(env, values, "values");
    if (!V) return;
    const float *M = addr(env, marks, "landmarks");
    if (!M) return;
    const float *Q = addr(env, q, "queries");
    if (!Q) return;
    float *O = addr(env, out, "output");
    if (!O) return;
    int items = batch * kvh;
    int *lk = malloc(sizeof(int) * 2 * (size_t) batch);
    if (!lk) {
        (*env)->ThrowNew(env, (*env)->FindClass(env, "java/lang/OutOfMemoryError"), "sparse attention tables");
        return;
    }
    (*env)->GetIntArrayRegion(env, lengthsArr, 0, batch, lk);
    (*env)->GetIntArrayRegion(env, keepArr, 0, batch, lk + batch);

    pthread_mutex_lock(&call_mu);
    static int wide_cpu = -1;
    if (wide_cpu < 0) wide_cpu = tg_cpu_avx512();
    Params p = {K, V, M, Q, O, lk, lk + batch, kvh, r, d, cap, f16, wide_cpu && !(flags & 2)};
    atomic_store(&failed, 0);
    tg_run(attend_item, &p, items, threads);
    int bad = atomic_load(&failed);
    pthread_mutex_unlock(&call_mu);
    free(lk);
    if (bad) (*env)->ThrowNew(env, (*env)->FindClass(env, "java/lang/OutOfMemoryError"), "sparse attention scratch");
}
