/*
 * Small helpers shared by the project's native kernels: AVX2 reductions, growable scratch, and
 * direct-buffer addresses for JNI. Header-only and static, like tg_pool.h.
 */
#ifndef TG_UTIL_H
#define TG_UTIL_H

#include <immintrin.h>
#include <jni.h>
#include <stdlib.h>
#include <string.h>

/* Grows *p to hold need elements of elem bytes (contents kept); 0 when out of memory. */
static int grow(void **p, size_t *have, size_t need, size_t elem) {
    if (need <= *have) return 1;
    void *q = realloc(*p, need * elem);
    if (!q) return 0;
    *p = q;
    *have = need;
    return 1;
}

/* 1 where the CPU has AVX-512 F, BW, DQ and VL (what the wide loops are compiled for); checked once. */
static inline int tg_cpu_avx512(void) {
    static int has = -1;
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
              && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return has;
}

static inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(lo);
    __m128 s = _mm_add_ps(lo, sh);
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehl_ps(sh, s)));
}

static inline float dot(const float *a, const float *b, int d) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < d; i++) s += a[i] * b[i];
    return s;
}

/* Leaves an exception of class cls (a JNI class name) with message msg pending. */
static inline void throw_new(JNIEnv *env, const char *cls, const char *msg) {
    (*env)->ThrowNew(env, (*env)->FindClass(env, cls), msg);
}

/* The address of a direct buffer, or NULL with an IllegalArgumentException naming it pending. */
static void *addr(JNIEnv *env, jobject buf, const char *name) {
    void *a = (*env)->GetDirectBufferAddress(env, buf);
    if (a == NULL) {
        char msg[96];
        strcpy(msg, "not a direct buffer: ");
        strncat(msg, name, sizeof msg - strlen(msg) - 1);
        throw_new(env, "java/lang/IllegalArgumentException", msg);
    }
    return a;
}

#endif
