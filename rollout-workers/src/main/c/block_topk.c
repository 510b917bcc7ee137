/*
 * Block-Top-k sparse decode attention over the paged KV cache, read in place (docs/algorithms.md,
 * "Block-Top-k sparse decode attention").
 *
 * One call serves one sparse layer of one decode step. For every (sequence b, KV head h) it scores
 * the candidate pages' landmarks with the group's mean query, keeps the sink page, the two most
 * recent pages and the best budget/PAGE - 3 candidates, and attends exactly over the kept tokens:
 * the keys and values of those pages are read where the cache holds them, never copied, and no
 * other page is touched. The Java side (NativeBlockTopK) owns the layout contract:
 *   keys, values  [B, kvh, cap, D]    float32, contiguous
 *   marks         [B, kvh, cap/PAGE, D] float32, page landmarks (mean key of each full page)
 *   q, out        [B, kvh, r, D]      float32, contiguous (q already carries the 1/sqrt(D) scale)
 *   lengths[b]    tokens of sequence b (this step's included); keep[b] pages it keeps
 * keep[b] >= ceil(lengths[b]/PAGE) means "every page" (a sequence that fits its budget).
 *
 * Work items are the B * kvh (sequence, head) pairs, claimed one at a time by the calling thread
 * and the helper threads of tg_pool.h (model/src/main/c), which spin briefly after their last item
 * and then sleep; the caller never waits for a sleeping helper, only for items in progress.
 *
 * Built with -mavx2 -mfma; the Java side loads it only on a CPU that has both.
 */
#include <jni.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tg_page.h"   /* model/src/main/c: the page size, checked against KvCache.PAGE at load */
#include "tg_pool.h"   /* model/src/main/c: the helper threads */
#include "tg_util.h"

#define PF 4          /* pages prefetched ahead, keys and values */

__m256 _ZGVdN8v_expf(__m256 x);   /* glibc's libmvec, AVX2 */

/* ------------------------------------------------------------------------------------------ job */

typedef struct {
    const float *keys, *values, *marks, *q;
    float *out;
    const int *lengths, *keep;
    int kvh, r, d, cap;
} Params;

typedef struct {
    float *s;       /* r * 16: one page's scores, then weights */
    float *qmean;   /* d */
    float *pscore;  /* candidate page scores (the landmark scores: the one buffer that grows with the context) */
    int *heap;      /* candidate pages in a min-heap on (score, -page) */
    int *sel;       /* kept pages */
    float *acc;     /* r * d */
    float *mx, *sum;
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

static inline void prefetch_page(const float *p, int d) {
    const char *c = (const char *) p;
    for (long o = 0; o < (long) PAGE * d * 4; o += 64) _mm_prefetch(c + o, _MM_HINT_T0);
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

static int run_item(const Params *p, Scratch *sc, int item) {
    int b = item / p->kvh;
    int len = p->lengths[b];
    int pages = (len + PAGE - 1) / PAGE;
    int keep = p->keep[b];
    int r = p->r, d = p->d;
    long bh = item;
    const float *K = p->keys + bh * p->cap * d;
    const float *V = p->values + bh * p->cap * d;
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
    float *w = sc->s, *mx = sc->mx, *sum = sc->sum, *acc = sc->acc;
    for (int i = 0; i < r; i++) {
        mx[i] = -INFINITY;
        sum[i] = 0;
    }
    memset(acc, 0, sizeof(float) * (size_t) r * d);
    for (int g = 0; g < PF && g < nsel; g++) {
        prefetch_page(K + (long) sel[g] * PAGE * d, d);
        prefetch_page(V + (long) sel[g] * PAGE * d, d);
    }
    /*
     * One pass over the kept pages, keys and values of a page together (online softmax): per query,
     * the running maximum m, the sum of exp(s - m) and the weighted values, rescaled when m grows.
     */
    for (int g = 0; g < nsel; g++) {
        int pg = sel[g];
        int tokens = len - pg * PAGE < PAGE ? len - pg * PAGE : PAGE;
        if (g + PF < nsel) {
            prefetch_page(K + (long) sel[g + PF] * PAGE * d, d);
            prefetch_page(V + (long) sel[g + PF] * PAGE * d, d);
        }
        const float *kp = K + (long) pg * PAGE * d;
        const float *vp = V + (long) pg * PAGE * d;
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

JNIEXPORT void JNICALL Java_io_tailguard_rollout_sparse_NativeBlockTopK_attend(JNIEnv *env, jclass cls,
        jobject keys, jobject values, jobject marks, jobject q, jobject out, jintArray lengthsArr, jintArray keepArr,
        jint batch, jint kvh, jint r, jint d, jint cap, jint threads) {
    (void) cls;
    const float *K = addr(env, keys, "keys");
    if (!K) return;
    const float *V = addr(env, values, "values");
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
    Params p = {K, V, M, Q, O, lk, lk + batch, kvh, r, d, cap};
    atomic_store(&failed, 0);
    tg_run(attend_item, &p, items, threads);
    int bad = atomic_load(&failed);
    pthread_mutex_unlock(&call_mu);
    free(lk);
    if (bad) (*env)->ThrowNew(env, (*env)->FindClass(env, "java/lang/OutOfMemoryError"), "sparse attention scratch");
}
