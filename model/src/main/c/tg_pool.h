/*
 * A small pool of helper threads shared by the work items of one call, for a JNI library that
 * serializes its calls (the caller holds the library's call mutex around tg_run).
 *
 * tg_run(fn, ctx, items, threads) runs fn(ctx, item, worker) for every item in [0, items) on the
 * calling thread (worker 0) and up to threads - 1 helpers (workers 1..), and returns when all are
 * done. Helpers claim items one at a time; after their last item they spin TG_SPIN_NS for more
 * work, then sleep. The caller never waits for a sleeping helper, only for items in progress, so a
 * helper that is slow to wake costs nothing but its share of the work.
 *
 * Header-only and static: every library that includes it has its own pool.
 */
#ifndef TG_POOL_H
#define TG_POOL_H

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define TG_MAX_HELPERS 63
#define TG_MAX_ITEMS 65535
#define TG_SPIN_NS 10000L

typedef void (*tg_fn)(void *ctx, int item, int worker);

static tg_fn tg_job_fn;                 /* written by the caller before it publishes a ticket */
static void *tg_job_ctx;
static _Atomic uint64_t tg_ticket;      /* generation << 32 | items << 16 | next item */
static atomic_int tg_done;              /* items finished in the current generation */
static pthread_mutex_t tg_sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tg_sleep_cv = PTHREAD_COND_INITIALIZER;
static int tg_sleepers;
static int tg_helpers;
static uint32_t tg_generation;

static inline uint32_t tg_items_of(uint64_t t) { return (uint32_t) ((t >> 16) & 0xFFFF); }
static inline uint32_t tg_next_of(uint64_t t) { return (uint32_t) (t & 0xFFFF); }

static void tg_drain(int worker) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&tg_ticket, memory_order_acquire);
        if (tg_next_of(t) >= tg_items_of(t)) return;
        if (!atomic_compare_exchange_weak_explicit(&tg_ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        tg_job_fn(tg_job_ctx, (int) tg_next_of(t), worker);
        atomic_fetch_add_explicit(&tg_done, 1, memory_order_release);
    }
}

static inline int tg_claimable(void) {
    uint64_t t = atomic_load_explicit(&tg_ticket, memory_order_acquire);
    return tg_next_of(t) < tg_items_of(t);
}

static long tg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *tg_helper(void *arg) {
    int worker = (int) (intptr_t) arg;
    for (;;) {
        tg_drain(worker);
        long until = tg_now_ns() + TG_SPIN_NS;
        int spins = 0;
        while (!tg_claimable()) {
            _mm_pause();
            if ((++spins & 63) == 0 && tg_now_ns() > until) {
                pthread_mutex_lock(&tg_sleep_mu);
                tg_sleepers++;
                while (!tg_claimable()) pthread_cond_wait(&tg_sleep_cv, &tg_sleep_mu);
                tg_sleepers--;
                pthread_mutex_unlock(&tg_sleep_mu);
                break;
            }
        }
    }
    return NULL;
}

/* Helpers the pool may use (workers 1..n): callers size per-worker scratch by TG_MAX_HELPERS + 1. */
static void tg_run(tg_fn fn, void *ctx, int items, int threads) {
    if (items <= 0) return;
    int want = threads - 1 < TG_MAX_HELPERS ? threads - 1 : TG_MAX_HELPERS;
    if (want > items - 1) want = items - 1;
    if (want <= 0) {
        for (int i = 0; i < items; i++) fn(ctx, i, 0);
        return;
    }
    while (tg_helpers < want) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&t, &at, tg_helper, (void *) (intptr_t) (tg_helpers + 1)) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break;
        tg_helpers++;
    }
    tg_job_fn = fn;
    tg_job_ctx = ctx;
    atomic_store(&tg_done, 0);
    tg_generation++;
    atomic_store_explicit(&tg_ticket, ((uint64_t) tg_generation << 32) | ((uint64_t) items << 16), memory_order_release);
    pthread_mutex_lock(&tg_sleep_mu);
    if (tg_sleepers > 0) pthread_cond_broadcast(&tg_sleep_cv);
    pthread_mutex_unlock(&tg_sleep_mu);
    tg_drain(0);
    while (atomic_load_explicit(&tg_done, memory_order_acquire) < items) _mm_pause();
}

#endif
