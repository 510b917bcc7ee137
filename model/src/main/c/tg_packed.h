/*
 * Products with packed weights, read as they are stored (docs/architecture.md, "Native kernels";
 * the formats are the compressed checkpoints' quant.json and vnm.json):
 *
 *   group-quantized  codes of `bits` bits (2..8), one float16 step per group of `group` input columns
 *                    of a row, w̃ = step · (code − (2^bits − 1)/2), in the incoherent basis
 *                    W = diag(s_out) Had_out W̃ Had_in diag(s_in). The product runs in that basis:
 *                    x̃ = Had_in (s_in ⊙ x) once per call, z = W̃ x̃ from the codes, y = s_out ⊙ Had_out z.
 *                    Had is the orthonormal Sylvester Hadamard, block-diagonal with the largest power
 *                    of two dividing the dimension as its block.
 *   V:N:M            per row and column block of M columns, two float32 values at two of the block's
 *                    four selected columns (2-bit positions, LSB first), the four columns shared by the
 *                    V rows of a row block. The four activations a row block can touch are gathered
 *                    once per row block, batch-minor, so every kept value is one broadcast and one
 *                    fused multiply-add for 8 sequences.
 *
 * A group-quantized linear may instead multiply with int8 activations (act8; W4A8 / W8A8): see the
 * "int8 activations" section below.
 *
 * Codes stay packed in memory; only their rows are re-aligned to byte boundaries at load (a row of
 * an odd width would otherwise start inside a byte), and the float16 steps and the 2-bit V:N:M
 * positions are kept as stored. Rows are split over the pool's threads as the float32 products are.
 * Included by decode_layer.c, whose call mutex its caller holds around the products and the
 * dequantization (they use the pool and shared scratch); construction touches neither.
 */
#ifndef TG_PACKED_H
#define TG_PACKED_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_pool.h"
#include "tg_util.h"

#define LIN_QUANT 1
#define LIN_VNM 2
#define LIN_SLACK 8 /* bytes after the last code row: the unpackers read up to 4 bytes at a time */

typedef struct {
    int kind;
    int rows, cols;
    /* group-quantized */
    int bits, group, groups, hb_in, hb_out;
    size_t row_bytes;  /* bytes of one row of codes; every row starts on a byte */
    uint8_t *codes;    /* rows · row_bytes + LIN_SLACK */
    uint16_t *scales;  /* [rows, groups] float16 */
    float *s_in, *s_out;
    float offset;
    int act8;          /* 1: products with int8 activations (the a8 section below) */
    /* V:N:M */
    int v, m, cb;
    size_t meta_bytes; /* bytes of one row's 2:4 positions (4 bits per column block) */
    float *values;     /* [rows, cb, 2] */
    uint8_t *meta;     /* rows · meta_bytes */
    uint8_t *colsel;   /* [rows / v, cb, 4] column offsets within the block */
} Lin;

static void lin_free(Lin *L) {
    if (!L) return;
    free(L->codes);
    free(L->scales);
    free(L->s_in);
    free(L->s_out);
    free(L->values);
    free(L->meta);
    free(L->colsel);
    free(L);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    int exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t) (127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (uint32_t) (exp - 15 + 127) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline int lowest_pow2(int n) { return n & -n; }

/* Code i of a little-endian bit stream of b-bit codes (b ≤ 8); reads two bytes. */
static inline int stream_code(const uint8_t *s, size_t i, int b) {
    size_t bit = i * (size_t) b;
    unsigned w = s[bit >> 3] | (unsigned) s[(bit >> 3) + 1] << 8;
    return (int) (w >> (bit & 7)) & ((1 << b) - 1);
}

/* The first three butterfly stages (h = 1, 2, 4) of 8 consecutive values, within one register. */
static inline __m256 hadamard8(__m256 v) {
    __m256 s = _mm256_permute_ps(v, 0xB1);                  /* swap neighbours */
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xAA);
    s = _mm256_permute_ps(v, 0x4E);                         /* swap pairs */
    v = _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xCC);
    s = _mm256_permute2f128_ps(v, v, 1);                    /* swap halves */
    return _mm256_blend_ps(_mm256_add_ps(v, s), _mm256_sub_ps(s, v), 0xF0);
}

/* In place: v ← Had_block-diag v over n values (fast Walsh–Hadamard per block, scaled 1/√block). */
static void fwht(float *v, int n, int block) {
    if (block <= 1) return;
    float scale = 1.0f / sqrtf((float) block);
    for (int o = 0; o < n; o += block) {
        float *p = v + o;
        int h = 1;
        if (block >= 8) {
            for (int i = 0; i < block; i += 8) _mm256_storeu_ps(p + i, hadamard8(_mm256_loadu_ps(p + i)));
            h = 8;
        }
        for (; h < block; h <<= 1) {
            for (int i = 0; i < block; i += h << 1) {
                int j = i;
                if (h >= 8) {
                    for (; j + 8 <= i + h; j += 8) {
                        __m256 x = _mm256_loadu_ps(p + j), y = _mm256_loadu_ps(p + j + h);
                        _mm256_storeu_ps(p + j, _mm256_add_ps(x, y));
                        _mm256_storeu_ps(p + j + h, _mm256_sub_ps(x, y));
                    }
                }
                for (; j < i + h; j++) {
                    float x = p[j], y = p[j + h];
                    p[j] = x + y;
                    p[j + h] = x - y;
                }
            }
        }
        for (int i = 0; i < block; i++) p[i] *= scale;
    }
}

/* ------------------------------------------------------------------------------- construction */

/* codes: the stored stream ([rows · cols] codes, LSB first); scales: float16 [rows, groups];
 * signs: 1 bit each, 1 = −1. NULL when out of memory. */
static Lin *lin_quantized(int rows, int cols, int bits, int group, const uint8_t *codes, const uint16_t *scales,
                          const uint8_t *signs_out, const uint8_t *signs_in, int act8) {
    Lin *L = calloc(1, sizeof(Lin));
    if (!L) return NULL;
    L->kind = LIN_QUANT;
    L->rows = rows;
    L->cols = cols;
    L->bits = bits;
    L->group = group;
    L->groups = (cols + group - 1) / group;
    L->hb_in = lowest_pow2(cols);
    L->hb_out = lowest_pow2(rows);
    L->offset = (float) ((1 << bits) - 1) / 2.0f;
    L->act8 = act8 != 0;
    L->row_bytes = ((size_t) cols * bits + 7) / 8;
    L->codes = calloc((size_t) rows * L->row_bytes + LIN_SLACK, 1);
    L->scales = malloc(sizeof(uint16_t) * (size_t) rows * L->groups);
    L->s_in = malloc(sizeof(float) * (size_t) cols);
    L->s_out = malloc(sizeof(float) * (size_t) rows);
    if (!L->codes || !L->scales || !L->s_in || !L->s_out) {
        lin_free(L);
        return NULL;
    }
    memcpy(L->scales, scales, sizeof(uint16_t) * (size_t) rows * L->groups);
    for (int c = 0; c < cols; c++) L->s_in[c] = (signs_in[c >> 3] >> (c & 7) & 1) ? -1.0f : 1.0f;
    for (int r = 0; r < rows; r++) L->s_out[r] = (signs_out[r >> 3] >> (r & 7) & 1) ? -1.0f : 1.0f;
    if (((size_t) cols * bits) % 8 == 0) {
        memcpy(L->codes, codes, (size_t) rows * L->row_bytes); /* rows already start on bytes */
    } else {
        for (int r = 0; r < rows; r++) {
            uint8_t *dst = L->codes + (size_t) r * L->row_bytes;
            for (int c = 0; c < cols; c++) {
                /* the source's last code may end in its last byte: read bit by bit */
                size_t bit = ((size_t) r * cols + c) * bits;
                int v = 0;
                for (int k = 0; k < bits; k++, bit++) v |= (codes[bit >> 3] >> (bit & 7) & 1) << k;
                size_t ob = (size_t) c * bits;
                for (int k = 0; k < bits; k++, ob++) dst[ob >> 3] |= (uint8_t) ((v >> k & 1) << (ob & 7));
            }
        }
    }
    return L;
}

/* values [rows, cb, 2]; meta: the stored 2-bit positions stream [rows, cb, 2]; colsel: unpacked
 * offsets [rows / v, cb, 4]. NULL when out of memory. */
static Lin *lin_vnm(int rows, int cols, int v, int m, const float *values, const uint8_t *meta, const uint8_t *colsel) {
    Lin *L = calloc(1, sizeof(Lin));
    if (!L) return NULL;
    L->kind = LIN_VNM;
    L->rows = rows;
    L->cols = cols;
    L->v = v;
    L->m = m;
    L->cb = (cols + m - 1) / m;
    L->meta_bytes = ((size_t) L->cb * 4 + 7) / 8;
    size_t nv = (size_t) rows * L->cb * 2;
    L->values = malloc(sizeof(float) * nv);
    L->meta = calloc((size_t) rows * L->meta_bytes, 1);
    L->colsel = malloc((size_t) rows / v * L->cb * 4);
    if (!L->values || !L->meta || !L->colsel) {
        lin_free(L);
        return NULL;
    }
    memcpy(L->values, values, sizeof(float) * nv);
    memcpy(L->colsel, colsel, (size_t) rows / v * L->cb * 4);
    if (L->cb % 2 == 0) {
        memcpy(L->meta, meta, (size_t) rows * L->meta_bytes);
    } else {
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < L->cb; b++) {
                size_t at = ((size_t) r * L->cb + b) * 4;
                int nib = (meta[at >> 3] >> (at & 7)) & 15; /* at is a multiple of 4: never straddles */
                L->meta[(size_t) r * L->meta_bytes + (b >> 1)] |= (uint8_t) (nib << ((b & 1) * 4));
            }
        }
    }
    return L;
}

static size_t lin_bytes(const Lin *L) {
    if (L->kind == LIN_QUANT) {
        return (size_t) L->rows * L->row_bytes + 2 * (size_t) L->rows * L->groups + ((size_t) L->rows + 7) / 8
               + ((size_t) L->cols + 7) / 8;
    }
    return sizeof(float) * (size_t) L->rows * L->cb * 2 + (size_t) L->rows * L->meta_bytes + (size_t) L->rows / L->v * L->cb * 4;
}

/* --------------------------------------------------------------------------- group-quantized */

/* Codes k..k+7 of a row (k a multiple of 8) as int32 lanes, for BITS 2, 3, 4 (8 codes are BITS bytes) and 8. */
static inline __attribute__((always_inline)) __m256i unpack8(const uint8_t *row, int k, const int BITS, __m256i shifts, __m256i mask) {
    if (BITS == 8) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *) (row + k)));
    uint32_t u;
    memcpy(&u, row + (size_t) (k >> 3) * BITS, 4);
    return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int) u), shifts), mask);
}

/*
 * z[j · ldz + r] = w̃_r · xt_j for rows [r0, r1) and NB sequences, NB and BITS compile-time constants
 * after inlining: each 8 codes become 8 weights once, w = code · step − offset · step, and meet every
 * sequence's activations from cache. A row's steps are converted from float16 first (sf, of: 2 ·
 * groups floats of scratch), so the loop over a group is only unpacking and multiply-adds.
 * Needs BITS in {2, 3, 4, 8} and group % 8 == 0; columns past the last multiple of 8 go one by one.
 */
static inline __attribute__((always_inline)) void q_rows_fast(const Lin *L, const float *xt, int ldx, int r0, int r1,
                                                              float *z, int ldz, float *sf, const int NB, const int BITS) {
    int cols = L->cols, groups = L->groups, group = L->group;
    int cols8 = cols & ~7;
    float *of = sf + groups;
    __m256i shifts = _mm256_setr_epi32(0, BITS, 2 * BITS, 3 * BITS, 4 * BITS, 5 * BITS, 6 * BITS, 7 * BITS);
    __m256i mask = _mm256_set1_epi32((1 << BITS) - 1);
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = L->codes + (size_t) r * L->row_bytes;
        const uint16_t *sc = L->scales + (size_t) r * groups;
        for (int g = 0; g < groups; g++) {
            sf[g] = f16_to_f32(sc[g]);
            of[g] = -L->offset * sf[g];
        }
        __m256 acc[8];
        for (int j = 0; j < NB; j++) acc[j] = _mm256_setzero_ps();
        int k = 0;
        for (int g = 0; k < cols8; g++) {
            __m256 vs = _mm256_broadcast_ss(sf + g), vo = _mm256_broadcast_ss(of + g);
            int end = k + group < cols8 ? k + group : cols8;
            for (; k < end; k += 8) {
                __m256 w = _mm256_fmadd_ps(_mm256_cvtepi32_ps(unpack8(row, k, BITS, shifts, mask)), vs, vo);
                for (int j = 0; j < NB; j++) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(xt + (size_t) j * ldx + k), acc[j]);
            }
        }
        float tail[8];
        for (int j = 0; j < NB; j++) tail[j] = 0;
        for (; k < cols; k++) {
            float w = sf[k / group] * (float) stream_code(row, (size_t) k, BITS) + of[k / group];
            for (int j = 0; j < NB; j++) tail[j] += w * xt[(size_t) j * ldx + k];
        }
        for (int j = 0; j < NB; j++) z[(size_t) j * ldz + r] = hsum(acc[j]) + tail[j];
    }
}

#define Q_ROWS_NB(BITS) \
    switch (nb) { \
        case 1: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 1, BITS); break; \
        case 2: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 2, BITS); break; \
        case 3: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 3, BITS); break; \
        case 4: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 4, BITS); break; \
        case 5: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 5, BITS); break; \
        case 6: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 6, BITS); break; \
        case 7: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 7, BITS); break; \
        default: q_rows_fast(L, xt, L->cols, r0, r1, z, L->rows, sf, 8, BITS); break; \
    }

/* Any width and group: a row's weights decoded into w (cols floats), then one dot per sequence. */
static void q_rows_any(const Lin *L, const float *xt, int ldx, int nb, int r0, int r1, float *z, int ldz, float *w) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = L->codes + (size_t) r * L->row_bytes;
        const uint16_t *sc = L->scales + (size_t) r * L->groups;
        for (int c = 0; c < L->cols; c++) {
            w[c] = f16_to_f32(sc[c / L->group]) * ((float) stream_code(row, (size_t) c, L->bits) - L->offset);
        }
        for (int j = 0; j < nb; j++) z[(size_t) j * ldz + r] = dot(xt + (size_t) j * ldx, w, L->cols);
    }
}

/* ------------------------------------------------------------------ int8 activations (a8) */

/*
 * A linear built with act8 multiplies with its activations rounded to int8, one scale per call and
 * sequence (W4A8 / W8A8): after x̃_j = Had_in(s_in ⊙ x_j), a_j = max_k |x̃_jk| / 127 and
 * xq_jk = round(x̃_jk / a_j) in [−127, 127] (a_j = 0: the sequence's output is 0), then
 *
 *   z_jr = a_j · Σ_g (step_rg / 2) · d_jrg,   d_jrg = 2 · Σ_{k∈g} code_rk · xq_jk − (2^bits − 1) · Σ_{k∈g} xq_jk,
 *
 * i.e. step · (code − offset) summed in exact int32 per group, the group sums of xq computed once
 * per call and shared by every row. Only the float combination of the groups' d (and, on the wide
 * path, of two int32 lanes per group) differs between the two implementations below:
 *
 *   wide      bits 4 and 8, group % 8 == 0, on a CPU with AVX-512 F/BW/VL/DQ/VNNI (checked at run
 *             time; a8_allow_wide = 0 turns it off): vpdpbusd with the codes as the unsigned operand.
 *             A zmm of xq holds one chunk of 8 columns for 8 sequences, two dword lanes per sequence
 *             (quad 0 and 1); the chunk's 8 codes of a row are one broadcast qword. 8-bit codes are
 *             the stored bytes (quads: columns 0-3, 4-7); 4-bit codes are expanded per row into
 *             doubled bytes, low nibbles (even columns) as quad 0 and high nibbles (odd columns) as
 *             quad 1, and xq is arranged the same way once per call. A group's int32 lanes are its d
 *             split in two exact parts per sequence (4-bit: they start at −15 · the lane's xq sum and
 *             take doubled codes; 8-bit: d = 2 · lanes − 255 · the lane's xq sum) and become float with
 *             the group's step/2 by one FMA; 4 rows run side by side sharing the xq loads.
 *   portable  anything else, with AVX2: for even groups the same scheme on 16-bit multiply-adds
 *             (8 sequences in 8 int32 lanes, a row's doubled codes of a column pair broadcast), for
 *             odd groups one sequence at a time.
 *
 * Sequences go in tiles of 8 (lanes of an absent sequence hold zeros).
 */

#define A8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define A8_ROWS 4

static int a8_allow_wide = 1;
static int a8_cpu = -1;

static int a8_cpu_wide(void) {
    if (a8_cpu < 0) {
        __builtin_cpu_init();
        a8_cpu = tg_cpu_avx512() && __builtin_cpu_supports("avx512vnni");
    }
    return a8_cpu;
}

/* Whether a linear's int8 product takes the wide (VNNI) kernels now. */
static int a8_wide_for(const Lin *L) {
    return a8_allow_wide && (L->bits == 4 || L->bits == 8) && L->group % 8 == 0 && a8_cpu_wide();
}

typedef struct {
    int wide;
    int cpad;           /* columns rounded up to 16 */
    int nch;            /* chunks of 8 columns: ceil(cols / 8) */
    const float *a;     /* [B] the sequences' scales */
    const uint8_t *xv;  /* wide: [tiles, nch, 8 sequences, 2 quads, 4] */
    const int32_t *gl;  /* wide: [tiles, groups, 16 lanes] the lanes' start values */
    const int16_t *x16; /* portable, odd groups: [B, cpad] */
    const int32_t *gs;  /* portable, odd groups: [B, groups] Σ_{k∈g} xq */
    const int16_t *xp;  /* portable, even groups: [tiles, cpad / 2 column pairs, 8 sequences, 2] */
    const int32_t *gsl; /* portable, even groups: [tiles, groups, 8 sequences] −(2^bits − 1) · Σ_{k∈g} xq */
} A8;

static inline size_t a8_up64(size_t n) { return (n + 63) & ~(size_t) 63; }

/* Bytes of one product's int8 activations for B sequences (see a8_prepare). */
static size_t a8_bytes(const Lin *L, int B) {
    size_t cpad = ((size_t) L->cols + 15) & ~(size_t) 15, nch = ((size_t) L->cols + 7) / 8;
    size_t tiles = ((size_t) B + 7) / 8;
    size_t n = a8_up64(sizeof(float) * (size_t) B) + a8_up64(tiles * 8 * cpad); /* scales, staging */
    if (a8_wide_for(L)) return n + a8_up64(tiles * nch * 64) + a8_up64(4 * tiles * (size_t) L->groups * 16);
    if (L->group % 2 == 0) return n + a8_up64(2 * tiles * 8 * cpad) + a8_up64(4 * tiles * (size_t) L->groups * 8);
    return n + a8_up64(2 * (size_t) B * cpad) + a8_up64(4 * (size_t) B * L->groups);
}

/* Per-worker scratch of the int8 products, in floats. */
static size_t a8_scratch(const Lin *L) {
    size_t nch = ((size_t) L->cols + 7) / 8, cpad = ((size_t) L->cols + 15) & ~(size_t) 15;
    size_t wide = A8_ROWS * (size_t) L->groups + A8_ROWS * 2 * a8_up64(4 * nch) / 4;
    size_t port = A8_ROWS * ((size_t) L->groups + cpad / 2);
    return (wide > port ? wide : port) + 32;
}

/* xq, arranged for the wide kernels: chunk sums of every lane's four bytes, per group. */
static A8_TARGET void a8_lanes_wide(const Lin *L, A8 *A, uint8_t *xv, int32_t *gl, const int8_t *q8, int tiles) {
    int nch = A->nch, cpad = A->cpad, gch = L->group / 8;
    int32_t maxc = (1 << L->bits) - 1;
    /* 4-bit: even columns of a chunk first (its codes' low nibbles), then the odd ones */
    __m128i deint = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    __m512i ones = _mm512_set1_epi8(1);
    for (int t = 0; t < tiles; t++) {
        uint8_t *xt = xv + (size_t) t * nch * 64;
        for (int s = 0; s < 8; s++) {
            const int8_t *src = q8 + ((size_t) t * 8 + s) * cpad;
            for (int c = 0; c < nch; c++) {
                __m128i v = _mm_loadl_epi64((const __m128i *) (src + 8 * c));
                if (L->bits == 4) v = _mm_shuffle_epi8(v, deint);
                _mm_storel_epi64((__m128i *) (xt + (size_t) c * 64 + 8 * s), v);
            }
        }
        int32_t *g0 = gl + (size_t) t * L->groups * 16;
        for (int g = 0; g < L->groups; g++) {
            int c1 = (g + 1) * gch < nch ? (g + 1) * gch : nch;
            __m512i acc = _mm512_setzero_si512();
            for (int c = g * gch; c < c1; c++) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(xt + (size_t) c * 64));
            acc = _mm512_mullo_epi32(acc, _mm512_set1_epi32(-maxc));
            _mm512_storeu_si512(g0 + (size_t) g * 16, acc);
        }
    }
}

/*
 * The int8 activations of one product: x̃ [B, cols] (rotated, float) → A, its arrays in mem
 * (a8_bytes(L, B) bytes, 64-aligned).
 */
static void a8_prepare(const Lin *L, const float *xt, int B, A8 *A, uint8_t *mem) {
    int cols = L->cols, cpad = (cols + 15) & ~15, tiles = (B + 7) / 8;
    A->wide = a8_wide_for(L);
    A->cpad = cpad;
    A->nch = (cols + 7) / 8;
    float *a = (float *) mem;
    mem += a8_up64(sizeof(float) * (size_t) B);
    int8_t *q8 = (int8_t *) mem;
    mem += a8_up64((size_t) tiles * 8 * cpad);
    memset(q8, 0, (size_t) tiles * 8 * cpad);
    __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int b = 0; b < B; b++) {
        const float *x = xt + (size_t) b * cols;
        int8_t *q = q8 + (size_t) b * cpad;
        __m256 m8 = _mm256_setzero_ps(), bad8 = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= cols; k += 8) {
            __m256 v = _mm256_loadu_ps(x + k);
            m8 = _mm256_max_ps(m8, _mm256_and_ps(v, absmask));
            bad8 = _mm256_add_ps(bad8, _mm256_mul_ps(v, _mm256_setzero_ps())); /* NaN once any is not finite */
        }
        float lanes[8], bads[8], m = 0, bad = 0;
        _mm256_storeu_ps(lanes, m8);
        _mm256_storeu_ps(bads, bad8);
        for (int i = 0; i < 8; i++) {
            m = lanes[i] > m ? lanes[i] : m;
            bad += bads[i];
        }
        for (; k < cols; k++) {
            float v = fabsf(x[k]);
            m = v > m ? v : m;
            bad += x[k] * 0.0f;
        }
        if (bad != 0.0f || m != m || m > 3.0e38f) {
            a[b] = NAN; /* propagates as the float32 product would */
            continue;
        }
        a[b] = m / 127.0f;
        if (m == 0.0f) continue;
        float inv = 127.0f / m;
        __m256 vi = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
        for (k = 0; k + 8 <= cols; k += 8) {
            __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(x + k), vi)));
            __m256i i32 = _mm256_cvtps_epi32(v); /* round to nearest, ties to even */
            __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
            _mm_storel_epi64((__m128i *) (q + k), _mm_packs_epi16(i16, i16));
        }
        for (; k < cols; k++) {
            float v = x[k] * inv;
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            q[k] = (int8_t) _mm_cvtss_si32(_mm_set_ss(v));
        }
    }
    A->a = a;
    if (A->wide) {
        uint8_t *xv = mem;
        mem += a8_up64((size_t) tiles * A->nch * 64);
        int32_t *gl = (int32_t *) mem;
        a8_lanes_wide(L, A, xv, gl, q8, tiles);
        A->xv = xv;
        A->gl = gl;
        A->x16 = NULL;
        A->gs = NULL;
        A->xp = NULL;
        A->gsl = NULL;
        return;
    }
    A->xv = NULL;
    A->gl = NULL;
    if (L->group % 2 == 0) {
        /* column pairs of 8 sequences side by side, and each group's start value per sequence */
        int16_t *xp = (int16_t *) mem;
        mem += a8_up64(2 * (size_t) tiles * 8 * cpad);
        int32_t *gsl = (int32_t *) mem;
        int32_t maxc = (1 << L->bits) - 1;
        for (int t = 0; t < tiles; t++) {
            int16_t *xt = xp + (size_t) t * 8 * cpad;
            for (int s = 0; s < 8; s++) {
                const int8_t *q = q8 + ((size_t) t * 8 + s) * cpad;
                for (int p = 0; p < cpad / 2; p++) {
                    xt[(size_t) p * 16 + 2 * s] = q[2 * p];
                    xt[(size_t) p * 16 + 2 * s + 1] = q[2 * p + 1];
                }
                for (int g = 0; g < L->groups; g++) {
                    int k1 = (g + 1) * L->group < cols ? (g + 1) * L->group : cols, sum = 0;
                    for (int k = g * L->group; k < k1; k++) sum += q[k];
                    gsl[((size_t) t * L->groups + g) * 8 + s] = -maxc * sum;
                }
            }
        }
        A->xp = xp;
        A->gsl = gsl;
        A->x16 = NULL;
        A->gs = NULL;
        return;
    }
    int16_t *x16 = (int16_t *) mem;
    mem += a8_up64(2 * (size_t) B * cpad);
    int32_t *gs = (int32_t *) mem;
    for (int b = 0; b < B; b++) {
        const int8_t *q = q8 + (size_t) b * cpad;
        for (int k = 0; k < cpad; k++) x16[(size_t) b * cpad + k] = q[k];
        for (int g = 0; g < L->groups; g++) {
            int k1 = (g + 1) * L->group < cols ? (g + 1) * L->group : cols, s = 0;
            for (int k = g * L->group; k < k1; k++) s += q[k];
            gs[(size_t) b * L->groups + g] = s;
        }
    }
    A->xp = NULL;
    A->gsl = NULL;
    A->x16 = x16;
    A->gs = gs;
}

/*
 * Wide: rows [r, r + R) of tile t (nb ≤ 8 sequences of it) into z[j · ldz + row]. cs: R rows of
 * expanded 4-bit codes; sf: R · groups halved steps.
 */
static inline A8_TARGET __attribute__((always_inline)) void a8_block_wide(const Lin *L, const A8 *A, int t, int nb, int r,
                                                                          float *z, int ldz, uint8_t *cs, float *sf,
                                                                          const int R, const int BITS) {
    int groups = L->groups, gch = L->group / 8, nch = A->nch;
    size_t csz = 2 * a8_up64(4 * (size_t) nch);
    const uint8_t *xv = A->xv + (size_t) t * nch * 64;
    const int32_t *gl = A->gl + (size_t) t * groups * 16;
    const uint8_t *crow[A8_ROWS];
    /* the next rows' codes and steps, while these are computed */
    if (r + 2 * R <= L->rows) {
        const char *nx = (const char *) (L->codes + (size_t) (r + R) * L->row_bytes);
        for (size_t o = 0; o < (size_t) R * L->row_bytes; o += 64) _mm_prefetch(nx + o, _MM_HINT_T0);
        const char *ns = (const char *) (L->scales + (size_t) (r + R) * groups);
        for (size_t o = 0; o < 2 * (size_t) R * groups; o += 64) _mm_prefetch(ns + o, _MM_HINT_T0);
    }
    for (int i = 0; i < R; i++) {
        const uint8_t *row = L->codes + (size_t) (r + i) * L->row_bytes;
        const uint16_t *sc = L->scales + (size_t) (r + i) * groups;
        float *sfi = sf + (size_t) i * groups;
        int g = 0;
        for (; g + 16 <= groups; g += 16) {
            _mm512_storeu_ps(sfi + g, _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (sc + g)))));
        }
        if (g < groups) {
            __mmask16 m = (__mmask16) ((1u << (groups - g)) - 1);
            _mm512_mask_storeu_ps(sfi + g, m, _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sc + g))));
        }
        if (BITS == 8) {
            crow[i] = row;
            continue;
        }
        /* per 64 stored bytes (16 chunks): doubled low nibbles and high nibbles, dwords interleaved per chunk */
        uint8_t *dst = cs + (size_t) i * csz;
        int n = 4 * nch;
        __m512i m1e = _mm512_set1_epi8(0x1e);
        __m512i idx0 = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), idx1 = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        for (int o = 0; o < n; o += 64) {
            __mmask64 m = n - o >= 64 ? ~(__mmask64) 0 : (((__mmask64) 1 << (n - o)) - 1);
            __m512i v = _mm512_maskz_loadu_epi8(m, row + o);
            __m512i lo = _mm512_and_si512(_mm512_slli_epi16(v, 1), m1e);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 3), m1e);
            __m512i u0 = _mm512_unpacklo_epi32(lo, hi), u1 = _mm512_unpackhi_epi32(lo, hi);
            _mm512_storeu_si512(dst + 2 * (size_t) o, _mm512_permutex2var_epi64(u0, idx0, u1));
            _mm512_storeu_si512(dst + 2 * (size_t) o + 64, _mm512_permutex2var_epi64(u0, idx1, u1));
        }
        crow[i] = dst;
    }
    __m512 facc[A8_ROWS];
    for (int i = 0; i < R; i++) facc[i] = _mm512_setzero_ps();
    for (int g = 0; g < groups; g++) {
        int c0 = g * gch, c1 = c0 + gch < nch ? c0 + gch : nch;
        __m512i G = _mm512_loadu_si512(gl + (size_t) g * 16);
        __m512i acc[A8_ROWS];
        for (int i = 0; i < R; i++) acc[i] = BITS == 4 ? G : _mm512_setzero_si512();
#define A8_CHUNK(c) \
        do { \
            __m512i x = _mm512_loadu_si512(xv + (size_t) (c) * 64); \
            for (int i = 0; i < R; i++) { \
                int64_t w; \
                memcpy(&w, crow[i] + 8 * (size_t) (c), 8); \
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi64(w), x); \
            } \
        } while (0)
        int c = c0;
        for (; c + 4 <= c1; c += 4) {
            A8_CHUNK(c);
            A8_CHUNK(c + 1);
            A8_CHUNK(c + 2);
            A8_CHUNK(c + 3);
        }
        for (; c < c1; c++) A8_CHUNK(c);
#undef A8_CHUNK
        for (int i = 0; i < R; i++) {
            __m512i d = BITS == 4 ? acc[i] : _mm512_add_epi32(_mm512_add_epi32(acc[i], acc[i]), G);
            facc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_set1_ps(sf[i * groups + g]), facc[i]);
        }
    }
    float as[8];
    for (int j = 0; j < 8; j++) as[j] = j < nb ? A->a[(size_t) t * 8 + j] : 0.0f;
    for (int i = 0; i < R; i++) {
        __m512 s = _mm512_add_ps(facc[i], _mm512_permute_ps(facc[i], 0xB1)); /* quad 0 + quad 1: lanes 2j */
        __m256 v = _mm256_castsi256_ps(_mm512_cvtepi64_epi32(_mm512_castps_si512(s)));
        float out[8];
        _mm256_storeu_ps(out, v);
        for (int j = 0; j < nb; j++) z[(size_t) j * ldz + r + i] = as[j] * out[j];
    }
}

static A8_TARGET void a8_rows_wide(const Lin *L, const A8 *A, int t, int nb, int r0, int r1, float *z, int ldz, float *scratch) {
    float *sf = scratch;
    uint8_t *cs = (uint8_t *) (scratch + A8_ROWS * (size_t) L->groups);
    int r = r0;
    if (L->bits == 4) {
        for (; r + A8_ROWS <= r1; r += A8_ROWS) a8_block_wide(L, A, t, nb, r, z, ldz, cs, sf, A8_ROWS, 4);
        for (; r < r1; r++) a8_block_wide(L, A, t, nb, r, z, ldz, cs, sf, 1, 4);
    } else {
        for (; r + A8_ROWS <= r1; r += A8_ROWS) a8_block_wide(L, A, t, nb, r, z, ldz, cs, sf, A8_ROWS, 8);
        for (; r < r1; r++) a8_block_wide(L, A, t, nb, r, z, ldz, cs, sf, 1, 8);
    }
}

/*
 * Portable, odd groups: rows [r0, r1) for sequences [b0, b0 + nb). scratch: groups floats, then cpad int16.
 * Per group and sequence the int32 lanes of 16-bit multiply-adds, doubled, less (2^bits − 1) · Σ xq
 * in lane 0, are the group's d spread over 8 exact lanes; one FMA with its step/2 adds them.
 */
static void a8_rows_odd(const Lin *L, const A8 *A, int b0, int nb, int r0, int r1, float *z, int ldz, float *scratch) {
    int cols = L->cols, groups = L->groups, group = L->group, cpad = A->cpad;
    int32_t maxc = (1 << L->bits) - 1;
    float *sf = scratch;
    int16_t *c16 = (int16_t *) (scratch + groups);
    for (int k = cols; k < cpad; k++) c16[k] = 0;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = L->codes + (size_t) r * L->row_bytes;
        const uint16_t *sc = L->scales + (size_t) r * groups;
        for (int g = 0; g < groups; g++) sf[g] = 0.5f * f16_to_f32(sc[g]);
        if (L->bits == 8) {
            for (int k = 0; k < cols; k++) c16[k] = row[k];
        } else if (L->bits == 4) {
            for (int k = 0; k < cols / 2; k++) {
                c16[2 * k] = row[k] & 15;
                c16[2 * k + 1] = row[k] >> 4;
            }
            if (cols & 1) c16[cols - 1] = row[cols / 2] & 15;
        } else {
            for (int k = 0; k < cols; k++) c16[k] = (int16_t) stream_code(row, (size_t) k, L->bits);
        }
        for (int j = 0; j < nb; j++) {
            const int16_t *x = A->x16 + (size_t) (b0 + j) * cpad;
            const int32_t *gs = A->gs + (size_t) (b0 + j) * groups;
            __m256 acc = _mm256_setzero_ps();
            for (int g = 0; g < groups; g++) {
                int k0 = g * group, k1 = k0 + group < cols ? k0 + group : cols, k = k0;
                __m256i s = _mm256_setzero_si256();
                for (; k + 16 <= k1; k += 16) {
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *) (c16 + k)),
                                                              _mm256_loadu_si256((const __m256i *) (x + k))));
                }
                int32_t rest = -maxc * gs[g];
                for (; k < k1; k++) rest += 2 * (int32_t) c16[k] * x[k];
                __m256i d = _mm256_add_epi32(_mm256_add_epi32(s, s), _mm256_setr_epi32(rest, 0, 0, 0, 0, 0, 0, 0));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(sf[g]), acc);
            }
            z[(size_t) j * ldz + r] = A->a[b0 + j] * hsum(acc);
        }
    }
}

/* Row r's codes, doubled, as int16 into c (cpad values, zero past cols). */
static void a8_codes16(const Lin *L, int r, int16_t *c, int cpad) {
    const uint8_t *row = L->codes + (size_t) r * L->row_bytes;
    int cols = L->cols;
    if (L->bits == 8) {
        for (int k = 0; k < cols; k++) c[k] = (int16_t) (2 * row[k]);
    } else if (L->bits == 4) {
        for (int k = 0; k < cols / 2; k++) {
            c[2 * k] = (int16_t) (2 * (row[k] & 15));
            c[2 * k + 1] = (int16_t) (2 * (row[k] >> 4));
        }
        if (cols & 1) c[cols - 1] = (int16_t) (2 * (row[cols / 2] & 15));
    } else {
        for (int k = 0; k < cols; k++) c[k] = (int16_t) (2 * stream_code(row, (size_t) k, L->bits));
    }
    for (int k = cols; k < cpad; k++) c[k] = 0;
}

/*
 * Portable, even groups: rows [r, r + R) of tile t (nb ≤ 8 sequences). The wide kernels' scheme on
 * AVX2: 8 int32 lanes are 8 sequences; each column pair's two doubled codes of a row are one broadcast
 * dword against the pair of every sequence (16-bit multiply-add, exact); a group's lanes start at
 * −(2^bits − 1) · Σ xq and become float with its step/2 by one FMA. scratch: R · groups floats, then
 * R · cpad int16.
 */
static inline __attribute__((always_inline)) void a8_block_pairs(const Lin *L, const A8 *A, int t, int nb, int r, float *z,
                                                                 int ldz, float *scratch, const int R) {
    int groups = L->groups, cpad = A->cpad, gp = L->group / 2, np = (L->cols + 1) / 2;
    float *sf = scratch;
    int16_t *c16 = (int16_t *) (scratch + (size_t) R * groups);
    const int16_t *xp = A->xp + (size_t) t * 8 * cpad;
    const int32_t *gsl = A->gsl + (size_t) t * groups * 8;
    const int16_t *crow[A8_ROWS];
    for (int i = 0; i < R; i++) {
        const uint16_t *sc = L->scales + (size_t) (r + i) * groups;
        for (int g = 0; g < groups; g++) sf[i * groups + g] = 0.5f * f16_to_f32(sc[g]);
        crow[i] = c16 + (size_t) i * cpad;
        a8_codes16(L, r + i, c16 + (size_t) i * cpad, cpad);
    }
    __m256 facc[A8_ROWS];
    for (int i = 0; i < R; i++) facc[i] = _mm256_setzero_ps();
    for (int g = 0; g < groups; g++) {
        int p0 = g * gp, p1 = p0 + gp < np ? p0 + gp : np;
        __m256i G = _mm256_loadu_si256((const __m256i *) (gsl + (size_t) g * 8));
        __m256i acc[A8_ROWS];
        for (int i = 0; i < R; i++) acc[i] = G;
        for (int p = p0; p < p1; p++) {
            __m256i x = _mm256_loadu_si256((const __m256i *) (xp + (size_t) p * 16));
            for (int i = 0; i < R; i++) {
                int32_t w;
                memcpy(&w, crow[i] + 2 * (size_t) p, 4);
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_set1_epi32(w), x));
            }
        }
        for (int i = 0; i < R; i++) facc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i]), _mm256_set1_ps(sf[i * groups + g]), facc[i]);
    }
    for (int i = 0; i < R; i++) {
        float out[8];
        _mm256_storeu_ps(out, facc[i]);
        for (int j = 0; j < nb; j++) z[(size_t) j * ldz + r + i] = A->a[(size_t) t * 8 + j] * out[j];
    }
}

/* Portable: rows [r0, r1) for sequences [b0, b0 + nb), b0 a multiple of 8. */
static void a8_rows_portable(const Lin *L, const A8 *A, int b0, int nb, int r0, int r1, float *z, int ldz, float *scratch) {
    if (!A->xp) {
        a8_rows_odd(L, A, b0, nb, r0, r1, z, ldz, scratch);
        return;
    }
    int r = r0;
    for (; r + A8_ROWS <= r1; r += A8_ROWS) a8_block_pairs(L, A, b0 / 8, nb, r, z, ldz, scratch, A8_ROWS);
    for (; r < r1; r++) a8_block_pairs(L, A, b0 / 8, nb, r, z, ldz, scratch, 1);
}

typedef struct {
    const Lin *L;
    const float *xt; /* [B, cols], rotated */
    float *z;        /* [B, rows] */
    float *scratch;  /* per worker: stride ≥ cols + 2 · groups floats (a8: a8_scratch) */
    int B, chunk, stride;
    const A8 *act;   /* int8 activations, or NULL: float32 */
} QJob;

static void q_item(void *ctx, int item, int worker) {
    const QJob *q = ctx;
    const Lin *L = q->L;
    int r0 = item * q->chunk;
    int r1 = r0 + q->chunk < L->rows ? r0 + q->chunk : L->rows;
    int fast = (L->bits == 2 || L->bits == 3 || L->bits == 4 || L->bits == 8) && L->group % 8 == 0;
    float *sf = q->scratch + (size_t) worker * q->stride;
    if (q->act) {
        for (int b0 = 0; b0 < q->B; b0 += 8) {
            int nb = q->B - b0 < 8 ? q->B - b0 : 8;
            float *z = q->z + (size_t) b0 * L->rows;
            if (q->act->wide) {
                a8_rows_wide(L, q->act, b0 / 8, nb, r0, r1, z, L->rows, sf);
            } else {
                a8_rows_portable(L, q->act, b0, nb, r0, r1, z, L->rows, sf);
            }
        }
        return;
    }
    for (int b0 = 0; b0 < q->B; b0 += 8) {
        int nb = q->B - b0 < 8 ? q->B - b0 : 8;
        const float *xt = q->xt + (size_t) b0 * L->cols;
        float *z = q->z + (size_t) b0 * L->rows;
        if (!fast) {
            q_rows_any(L, xt, L->cols, nb, r0, r1, z, L->rows, sf);
        } else if (L->bits == 4) {
            Q_ROWS_NB(4)
        } else if (L->bits == 8) {
            Q_ROWS_NB(8)
        } else if (L->bits == 3) {
            Q_ROWS_NB(3)
        } else {
            Q_ROWS_NB(2)
        }
    }
}

/* -------------------------------------------------------------------------------------- V:N:M */

typedef struct {
    const Lin *L;
    const float *x; /* [B, ldx] */
    float *out;
    float *scratch; /* per worker: stride ≥ cb · 4 · 8 floats */
    int B, ldx, ldo, add, blocks_per_item, stride;
} VJob;

static void v_item(void *ctx, int item, int worker) {
    const VJob *J = ctx;
    const Lin *L = J->L;
    int cb = L->cb;
    float *xg = J->scratch + (size_t) worker * J->stride;
    int rb0 = item * J->blocks_per_item;
    int rb1 = rb0 + J->blocks_per_item < L->rows / L->v ? rb0 + J->blocks_per_item : L->rows / L->v;
    for (int b0 = 0; b0 < J->B; b0 += 8) {
        int nb = J->B - b0 < 8 ? J->B - b0 : 8;
        for (int rb = rb0; rb < rb1; rb++) {
            /* the row block's four columns of every column block, 8 sequences side by side */
            const uint8_t *sel = L->colsel + (size_t) rb * cb * 4;
            for (int b = 0; b < cb; b++) {
                for (int k = 0; k < 4; k++) {
                    int c = b * L->m + sel[b * 4 + k];
                    float *dst = xg + ((size_t) b * 4 + k) * 8;
                    for (int j = 0; j < 8; j++) dst[j] = j < nb && c < L->cols ? J->x[(size_t) (b0 + j) * J->ldx + c] : 0.0f;
                }
            }
            for (int r = rb * L->v; r < (rb + 1) * L->v; r++) {
                const float *val = L->values + (size_t) r * cb * 2;
                const uint8_t *mt = L->meta + (size_t) r * L->meta_bytes;
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
                int b = 0;
                for (; b + 2 <= cb; b += 2) {
                    int byte = mt[b >> 1];
                    const float *g = xg + (size_t) b * 32;
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b), _mm256_loadu_ps(g + (byte & 3) * 8), a0);
                    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b + 1), _mm256_loadu_ps(g + (byte >> 2 & 3) * 8), a1);
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b + 2), _mm256_loadu_ps(g + 32 + (byte >> 4 & 3) * 8), a0);
                    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b + 3), _mm256_loadu_ps(g + 32 + (byte >> 6 & 3) * 8), a1);
                }
                if (b < cb) {
                    int nib = mt[b >> 1] & 15;
                    const float *g = xg + (size_t) b * 32;
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b), _mm256_loadu_ps(g + (nib & 3) * 8), a0);
                    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(val + 2 * b + 1), _mm256_loadu_ps(g + (nib >> 2) * 8), a1);
                }
                float lanes[8];
                _mm256_storeu_ps(lanes, _mm256_add_ps(a0, a1));
                for (int j = 0; j < nb; j++) {
                    float *o = J->out + (size_t) (b0 + j) * J->ldo + r;
                    *o = J->add ? *o + lanes[j] : lanes[j];
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ products */

static float *s_lx, *s_lz, *s_lw;
static uint8_t *s_l8;
static size_t c_lx, c_lz, c_lw, c_l8;

static int lin_chunk(int n, int threads) {
    int c = (n + 4 * threads - 1) / (4 * threads);
    if (c < 16) c = 16;
    while ((n + c - 1) / c > TG_MAX_ITEMS) c *= 2;
    return c;
}

#define LIN_MAX_PARTS 3

/* The parts of one product as one job: items [first[i], first[i + 1]) are part i's. */
typedef struct {
    QJob q[LIN_MAX_PARTS];
    VJob v[LIN_MAX_PARTS];
    A8 a8[LIN_MAX_PARTS];
    int kind[LIN_MAX_PARTS];
    int first[LIN_MAX_PARTS + 1];
} MJob;

static void m_item(void *ctx, int item, int worker) {
    const MJob *M = ctx;
    int i = 0;
    while (item >= M->first[i + 1]) i++;
    if (M->kind[i] == LIN_VNM) {
        v_item((void *) &M->v[i], item - M->first[i], worker);
    } else {
        q_item((void *) &M->q[i], item - M->first[i], worker);
    }
}

/*
 * For each part i of a product (n ≤ LIN_MAX_PARTS parts sharing the input x [B, ldx], ldx ≥ cols):
 * outs[i][b · ldos[i] + r] = (add ? outs[i] : 0) + (x_b W_iᵀ)_r. The parts' rows run as one job, so
 * the pool's helpers stay busy from the first part to the last; the incoherence transforms of
 * quantized parts run before and after it. 0 when out of memory.
 */
static int lin_apply_n(Lin *const *parts, int n, const float *x, int B, int ldx, float *const *outs, const int *ldos,
                       int add, int threads) {
    int workers = threads < 1 ? 1 : (threads > TG_MAX_HELPERS + 1 ? TG_MAX_HELPERS + 1 : threads);
    size_t nx = 0, nz = 0, n8 = 0, stride = 0;
    for (int i = 0; i < n; i++) {
        const Lin *L = parts[i];
        size_t need = L->kind == LIN_VNM ? (size_t) L->cb * 32 : (size_t) L->cols + 2 * (size_t) L->groups;
        if (L->kind == LIN_QUANT && L->act8) {
            size_t a = a8_scratch(L);
            if (a > need) need = a;
            n8 += a8_bytes(L, B);
        }
        if (need > stride) stride = need;
        if (L->kind == LIN_QUANT) {
            nx += (size_t) B * L->cols;
            nz += (size_t) B * L->rows;
        }
    }
    if (!grow((void **) &s_lx, &c_lx, nx + 1, sizeof(float)) || !grow((void **) &s_lz, &c_lz, nz + 1, sizeof(float))
        || !grow((void **) &s_lw, &c_lw, (size_t) workers * stride, sizeof(float))
        || !grow((void **) &s_l8, &c_l8, n8 + 64, 1)) return 0;
    uint8_t *m8 = (uint8_t *) (((uintptr_t) s_l8 + 63) & ~(uintptr_t) 63);
    MJob M;
    M.first[0] = 0;
    size_t ox = 0, oz = 0;
    for (int i = 0; i < n; i++) {
        const Lin *L = parts[i];
        M.kind[i] = L->kind;
        int items;
        if (L->kind == LIN_VNM) {
            int rbs = L->rows / L->v;
            int per = (lin_chunk(L->rows, threads) + L->v - 1) / L->v;
            M.v[i] = (VJob) {L, x, outs[i], s_lw, B, ldx, ldos[i], add, per, (int) stride};
            items = (rbs + per - 1) / per;
        } else {
            float *xt0 = s_lx + ox;
            for (int b = 0; b < B; b++) {
                float *xt = xt0 + (size_t) b * L->cols;
                const float *xb = x + (size_t) b * ldx;
                for (int c = 0; c < L->cols; c++) xt[c] = xb[c] * L->s_in[c];
                fwht(xt, L->cols, L->hb_in);
            }
            M.q[i] = (QJob) {L, xt0, s_lz + oz, s_lw, B, lin_chunk(L->rows, threads), (int) stride, NULL};
            if (L->act8) {
                a8_prepare(L, xt0, B, &M.a8[i], m8);
                m8 += a8_bytes(L, B);
                M.q[i].act = &M.a8[i];
            }
            items = (L->rows + M.q[i].chunk - 1) / M.q[i].chunk;
            ox += (size_t) B * L->cols;
            oz += (size_t) B * L->rows;
        }
        M.first[i + 1] = M.first[i] + items;
    }
    tg_run(m_item, &M, M.first[n], threads);
    for (int i = 0; i < n; i++) {
        const Lin *L = parts[i];
        if (L->kind == LIN_VNM) continue;
        for (int b = 0; b < B; b++) {
            float *z = M.q[i].z + (size_t) b * L->rows;
            fwht(z, L->rows, L->hb_out);
            float *o = outs[i] + (size_t) b * ldos[i];
            if (add) {
                for (int r = 0; r < L->rows; r++) o[r] += L->s_out[r] * z[r];
            } else {
                for (int r = 0; r < L->rows; r++) o[r] = L->s_out[r] * z[r];
            }
        }
    }
    return 1;
}

/* out[b · ldo + r] = (add ? out : 0) + (x_b Wᵀ)_r for r < rows, b < B; x [B, ldx] with ldx ≥ cols. */
static int lin_apply(Lin *L, const float *x, int B, int ldx, float *out, int ldo, int add, int threads) {
    return lin_apply_n(&L, 1, x, B, ldx, &out, &ldo, add, threads);
}

/* The weight in the original basis, [rows, cols] row-major, into w: rows split over the pool. */
typedef struct {
    const Lin *L;
    float *w;
    int chunk;
} DJob;

/* Rows [r0, r1): decoded, and for quantized weights W̃ Had_in diag(s_in) (Had symmetric). */
static void d_rows(void *ctx, int item, int worker) {
    (void) worker;
    const DJob *J = ctx;
    const Lin *L = J->L;
    int cols = L->cols;
    int r0 = item * J->chunk;
    int r1 = r0 + J->chunk < L->rows ? r0 + J->chunk : L->rows;
    for (int r = r0; r < r1; r++) {
        float *wr = J->w + (size_t) r * cols;
        if (L->kind == LIN_VNM) {
            memset(wr, 0, sizeof(float) * (size_t) cols);
            const uint8_t *sel = L->colsel + (size_t) (r / L->v) * L->cb * 4;
            for (int b = 0; b < L->cb; b++) {
                int nib = (L->meta[(size_t) r * L->meta_bytes + (b >> 1)] >> ((b & 1) * 4)) & 15;
                for (int e = 0; e < 2; e++) {
                    int c = b * L->m + sel[b * 4 + (e == 0 ? nib & 3 : nib >> 2)];
                    if (c < cols) wr[c] = L->values[((size_t) r * L->cb + b) * 2 + e];
                }
            }
            continue;
        }
        const uint8_t *row = L->codes + (size_t) r * L->row_bytes;
        for (int c = 0; c < cols; c++) {
            wr[c] = f16_to_f32(L->scales[(size_t) r * L->groups + c / L->group]) * ((float) stream_code(row, (size_t) c, L->bits) - L->offset);
        }
        fwht(wr, cols, L->hb_in);
        for (int c = 0; c < cols; c++) wr[c] *= L->s_in[c];
    }
}

/* Columns [c0, c1) of every row: diag(s_out) Had_out ·, butterflies between whole rows. */
static void d_cols(void *ctx, int item, int worker) {
    (void) worker;
    const DJob *J = ctx;
    const Lin *L = J->L;
    int rows = L->rows, cols = L->cols, blk = L->hb_out;
    int c0 = item * J->chunk;
    int c1 = c0 + J->chunk < cols ? c0 + J->chunk : cols;
    float *w = J->w;
    float scale = 1.0f / sqrtf((float) blk);
    for (int o = 0; blk > 1 && o < rows; o += blk) {
        for (int h = 1; h < blk; h <<= 1) {
            for (int i = o; i < o + blk; i += h << 1) {
                for (int j = i; j < i + h; j++) {
                    float *a = w + (size_t) j * cols, *b = w + (size_t) (j + h) * cols;
                    for (int c = c0; c < c1; c++) {
                        float p = a[c], q = b[c];
                        a[c] = p + q;
                        b[c] = p - q;
                    }
                }
            }
        }
        for (int r = o; r < o + blk; r++) {
            for (int c = c0; c < c1; c++) w[(size_t) r * cols + c] *= scale;
        }
    }
    for (int r = 0; r < rows; r++) {
        float s = L->s_out[r];
        for (int c = c0; c < c1; c++) w[(size_t) r * cols + c] *= s;
    }
}

static void lin_dequantize(const Lin *L, float *w, int threads) {
    DJob J = {L, w, lin_chunk(L->rows, threads)};
    tg_run(d_rows, &J, (L->rows + J.chunk - 1) / J.chunk, threads);
    if (L->kind == LIN_VNM) return;
    int per = (L->cols + 2 * threads - 1) / (2 * threads);
    J.chunk = per < 64 ? 64 : (per + 15) / 16 * 16;
    tg_run(d_cols, &J, (L->cols + J.chunk - 1) / J.chunk, threads);
}

#endif
