/* The periphery's work on a CPU, compiled (see aimc_lib/periphery_cpu.py).
 *
 * Plain C, no dependencies: compiled once on first use with the system's C compiler and called
 * through ctypes. The exported functions' prototypes are generated from the one declaration in
 * periphery_cpu.py (DECLARATIONS) and included before this file (-include), so a definition here that
 * disagrees with it does not compile. Float arithmetic is IEEE single precision without contraction
 * (-ffp-contract=off), so the element-wise steps equal PyTorch's element-wise ops on the same inputs;
 * rounding is round half to even (as torch.round), by the float trick (v + 1.5*2^23) - 1.5*2^23
 * (exact for |v| < 2^22) or by the AVX round instruction.
 *
 * Random numbers: the simulation's one stream (aimc_lib/rng.py), Philox4x32-10 keyed by the 64-bit seed,
 * counter (c0 = block j / 4 within a row, c1 = row, c2, c3 = the stream's words), four values per block,
 * Box-Muller in float32. A value is named by (seed, words, row, j), so the noise does not depend on
 * threads, groups of images or chunks. Three implementations, all with Cephes' polynomial log, sin and cos and
 * within 1e-6 of the reference: portable (any CPU; plain loops the compiler vectorises), AVX2 (8 counters at
 * a time, with FMA) and AVX-512F (16 at a time, the same operations: the same numbers as AVX2).
 *
 * Two paths:
 * - portable loops (any CPU): the channel-wise abs-max, the DAC's patch matrix and the output stage;
 *   the product between them is PyTorch's.
 * - x86-64 with AVX2 and FMA (checked at run time): dac_conv, the whole conv through the DAC, the
 *   crossbar and the output stage in one pass.
 */
#include <math.h>
#include <stdint.h>
#if defined(__x86_64__) && !defined(AIMC_PORTABLE) /* -DAIMC_PORTABLE: the portable code only (tests) */
#define X86_AVX2 1
#else
#define X86_AVX2 0
#endif
#include <stdlib.h>
#include <string.h>

#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */

static inline float round_half_even(float v) { return (v + ROUND_MAGIC) - ROUND_MAGIC; }

/* ---- the random stream: Philox4x32-10 (Salmon et al. 2011), as aimc_lib/rng.py ---- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define TWO_PI_F32 6.28318548202514648f /* float32(2 pi), rng.TWO_PI_F32 */
#define INV_2_24 5.9604644775390625e-8f /* 2^-24 */

typedef struct { uint32_t k0, k1, c2, c3; } stream_t; /* a key and a stream's words */

static stream_t stream_of(uint64_t seed, uint32_t c2, uint32_t c3) {
    const stream_t s = {(uint32_t)seed, (uint32_t)(seed >> 32), c2, c3};
    return s;
}

/* The portable version: 8 blocks at a time, Box-Muller as one branch-free loop over 16 pairs, which compilers
 * vectorise (SSE2, NEON), with the same polynomial log, sin and cos as the AVX2 version below (without FMA). */
#define BLOCKS 8

static inline float bits_to_float(uint32_t b) { float f; memcpy(&f, &b, sizeof f); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t b; memcpy(&b, &f, sizeof b); return b; }
static inline float select_f(uint32_t mask, float a, float b) { /* a where mask is all ones, b where it is 0 */
    return bits_to_float((float_to_bits(a) & mask) | (float_to_bits(b) & ~mask));
}

/* Box-Muller of 2 BLOCKS pairs of words (rng._box_muller): zc[i], zs[i] = r cos theta, r sin theta of (a[i], b[i]).
 * log: Cephes' logf (exponent and a polynomial in the mantissa, ~1 ulp); cos and sin: quadrant
 * q = round(theta 2/pi), theta - q pi/2 in three parts (Cody and Waite: q times the first two is exact),
 * Cephes' polynomials on [-pi/4, pi/4]. */
static void box_muller_pairs(const uint32_t *restrict a, const uint32_t *restrict b, float *restrict zc,
                             float *restrict zs) {
    for (int i = 0; i < 2 * BLOCKS; i++) {
        const float u1 = (float)(int32_t)((a[i] >> 8) + 1) * INV_2_24, u2 = (float)(int32_t)(b[i] >> 8) * INV_2_24;
        const uint32_t bits = float_to_bits(u1);
        const float m = bits_to_float((bits & 0x007fffffu) | 0x3f000000u); /* in [0.5, 1) */
        const uint32_t small = -(uint32_t)(m < 0.707106781186547524f);
        const float e = (float)((int32_t)(bits >> 23) - 126 + (int32_t)small);
        const float x = (m + bits_to_float(float_to_bits(m) & small)) - 1.0f, x2 = x * x;
        float y = 7.0376836292e-2f;
        y = y * x - 1.1514610310e-1f;
        y = y * x + 1.1676998740e-1f;
        y = y * x - 1.2420140846e-1f;
        y = y * x + 1.4249322787e-1f;
        y = y * x - 1.6668057665e-1f;
        y = y * x + 2.0000714765e-1f;
        y = y * x - 2.4999993993e-1f;
        y = y * x + 3.3333331174e-1f;
        y = y * x * x2 + e * -2.12194440e-4f - 0.5f * x2;
        const float rad = sqrtf(-2.0f * ((x + y) + e * 0.693359375f));
        const float theta = u2 * TWO_PI_F32;
        const float qf = round_half_even(theta * 0.636619772367581343f);
        const float r = ((theta - qf * 1.5703125f) - qf * 4.837512969970703125e-4f) - qf * 7.54978995489188216e-8f;
        const float z = r * r;
        const float sn = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
        const float cs = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z
                         + (1.0f - 0.5f * z);
        const uint32_t q = (uint32_t)(int32_t)qf, swap = -(q & 1); /* 0 .. 4; theta = q pi/2 + r */
        /* cos is negative in quadrants 1 and 2, sin in 2 and 3: sign bits from bit 1 of q + 1 and of q */
        zc[i] = rad * bits_to_float(float_to_bits(select_f(swap, sn, cs)) ^ (((q + 1) & 2) << 30));
        zs[i] = rad * bits_to_float(float_to_bits(select_f(swap, cs, sn)) ^ ((q & 2) << 30));
    }
}

/* The 32 values of blocks b .. b + 7 of stream row `row` into out[0 .. 32), in the row's order. */
static void normals32_portable(const stream_t *s, uint32_t row, uint32_t b, float *out) {
    uint32_t first[2 * BLOCKS], second[2 * BLOCKS]; /* (x0, x1) of each block, then (x2, x3) */
    float zc[2 * BLOCKS], zs[2 * BLOCKS];
    for (int i = 0; i < BLOCKS; i++) { /* Philox4x32-10 */
        uint32_t c0 = b + (uint32_t)i, c1 = row, c2 = s->c2, c3 = s->c3, k0 = s->k0, k1 = s->k1;
        for (int r = 0; r < 10; r++) {
            if (r) { k0 += PHILOX_W0; k1 += PHILOX_W1; }
            const uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
            c0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
            c1 = (uint32_t)p1;
            c2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
            c3 = (uint32_t)p0;
        }
        first[i] = c0; second[i] = c1; first[BLOCKS + i] = c2; second[BLOCKS + i] = c3;
    }
    box_muller_pairs(first, second, zc, zs);
    for (int i = 0; i < BLOCKS; i++) {
        out[4 * i] = zc[i]; out[4 * i + 1] = zs[i]; out[4 * i + 2] = zc[BLOCKS + i]; out[4 * i + 3] = zs[BLOCKS + i];
    }
}

/* Values j0 .. j0 + n - 1 of stream row `row` into dst[0 .. n) (portable). */
static void normals_row(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst) {
    const int64_t end = j0 + n;
    float buf[4 * BLOCKS];
    for (int64_t j = j0 & ~(int64_t)3; j < end; j += 4 * BLOCKS) { /* j: the first value of BLOCKS blocks */
        const int64_t lo = j > j0 ? j : j0, hi = j + 4 * BLOCKS < end ? j + 4 * BLOCKS : end;
        normals32_portable(s, row, (uint32_t)(j >> 2), buf);
        memcpy(dst + (lo - j0), buf + (lo - j), sizeof(float) * (size_t)(hi - lo));
    }
}

/* The normals' instruction sets: 0 portable, 1 AVX2 and FMA (8 counters at a time), 2 AVX-512F (16). */
#if X86_AVX2
#include <immintrin.h>
#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx2,fma,avx512f")))
static int cpu_isa(void) {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
    return __builtin_cpu_supports("avx512f") ? 2 : 1;
}
AVX2_FMA static void normals_row_avx2(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst);
AVX512 static void normals_row_avx512(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst);
#else
static int cpu_isa(void) { return 0; }
#endif

static int isa_limit = 2; /* the highest instruction set the noise may use (set_isa_limit) */

static int noise_isa(void) {
    const int isa = cpu_isa();
    return isa < isa_limit ? isa : isa_limit;
}

/* Limits the instruction set of the output stages' and the one-pass conv's noise to `limit` (for tests and
 * benchmarks: the numbers are the same up to float rounding); returns the one they now use. */
int32_t set_isa_limit(int32_t limit) {
    isa_limit = limit;
    return noise_isa();
}

/* Values j0 .. j0 + n - 1 of stream row `row`, with instruction set isa. */
static void normals_row_any(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst, int isa) {
#if X86_AVX2
    if (isa == 2) { normals_row_avx512(s, row, j0, n, dst); return; }
    if (isa == 1) { normals_row_avx2(s, row, j0, n, dst); return; }
#endif
    (void)isa;
    normals_row(s, row, j0, n, dst);
}

/* 1 if this CPU runs the AVX2 code (dac_conv, the vectorised normals), else 0. */
int32_t dac_conv_available(void) { return cpu_isa() >= 1; }

/* The highest instruction set of the normals on this CPU (0, 1 or 2). */
int32_t isa_available(void) { return cpu_isa(); }

/* The stream's normals [rows, cols]: out[r, j] = value (row0 + r, j) of (seed, c2, c3), with instruction set
 * isa (0 portable, 1 AVX2, 2 AVX-512). Returns 0, or -2 if this CPU does not have isa. */
int32_t normal_fill(float *out, int64_t rows, int64_t cols, uint64_t seed, uint32_t c2, uint32_t c3, uint64_t row0,
                    int32_t isa) {
    if (isa < 0 || isa > cpu_isa()) return -2;
    const stream_t s = stream_of(seed, c2, c3);
    for (int64_t r = 0; r < rows; r++) normals_row_any(&s, (uint32_t)(row0 + (uint64_t)r), 0, cols, out + r * cols,
                                                       isa);
    return 0;
}

/* ---- the periphery ---- */

/* out[p] = max_c |x[p, c]| for npix pixels of a channels-last (NHWC) tensor. */
void channel_abs_max(const float *x, float *out, int64_t npix, int32_t c) {
    for (int64_t p = 0; p < npix; p++) {
        const float *v = x + p * c;
        float m = 0.0f;
        for (int32_t k = 0; k < c; k++) { float a = fabsf(v[k]); m = a > m ? a : m; }
        out[p] = m;
    }
}

/* The DAC's patch matrix of nb images: cols[n, ho, wo, i, j, c] = round(x[n, hi, wi, c] * inv[n, ho, wo]),
 * hi = ho*sh - ph + i, wi = wo*sw - pw + j (0 outside the image), clipped to [-half, half] if clip_in. */
void dac_patches(const float *x, const float *inv, float *cols, int32_t nb, int32_t h, int32_t w, int32_t c,
                 int32_t ho, int32_t wo, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                 float half, int32_t clip_in) {
    for (int32_t n = 0; n < nb; n++)
        for (int32_t oy = 0; oy < ho; oy++)
            for (int32_t ox = 0; ox < wo; ox++) {
                const int64_t pix = ((int64_t)n * ho + oy) * wo + ox;
                const float s = inv[pix];
                float *dst = cols + pix * (int64_t)(kh * kw * c);
                for (int32_t i = 0; i < kh; i++) {
                    const int32_t iy = oy * sh - ph + i;
                    for (int32_t j = 0; j < kw; j++, dst += c) {
                        const int32_t ix = ox * sw - pw + j;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                            for (int32_t k = 0; k < c; k++) dst[k] = 0.0f;
                            continue;
                        }
                        const float *src = x + (((int64_t)n * h + iy) * w + ix) * c;
                        if (clip_in) {
                            for (int32_t k = 0; k < c; k++) {
                                float v = round_half_even(src[k] * s);
                                dst[k] = v < -half ? -half : (v > half ? half : v);
                            }
                        } else {
                            for (int32_t k = 0; k < c; k++) dst[k] = round_half_even(src[k] * s);
                        }
                    }
                }
            }
}

#define NOISE_BUF 2048 /* values of noise drawn at a time by output_stage */

/* From the crossbar's raw product to the digital result, in place on y [rows, cols]:
 * y = y * gain (row_gain[r] if given); + noise_sd * N(0, 1); ADC: round, then clip to [lo, hi]
 * (or only clip, or neither); y = y * row_scale[r].
 * Noise: y's rows are pixels_per_image rows per image (e.g. a conv's output pixels, 1 for an FC layer), the
 * first at an image's start; row r's noise is values j = (r % pixels_per_image) * cols + k of stream row
 * row0 + r / pixels_per_image of (seed, c2, c3). Returns 0, or -1 if its buffer could not be allocated. */
int32_t output_stage(float *y, int64_t rows, int32_t cols, const float *row_gain, float gain, const float *row_scale,
                     float noise_sd, uint64_t seed, uint32_t c2, uint32_t c3, uint64_t row0, int64_t pixels_per_image,
                     int32_t adc, int32_t clip, float lo, float hi) {
    if (rows <= 0 || cols <= 0) return 0;
    const stream_t st = stream_of(seed, c2, c3);
    const int isa = noise_isa();
    const int64_t run_rows = cols >= NOISE_BUF ? 1 : NOISE_BUF / cols; /* rows whose noise is drawn at once */
    float *z = NULL;
    if (noise_sd > 0.0f && !(z = malloc(sizeof(float) * (cols > NOISE_BUF ? cols : NOISE_BUF))))
        return -1;
    for (int64_t i0 = 0; i0 < rows;) {
        int64_t i1 = i0 + run_rows < rows ? i0 + run_rows : rows;
        if (z) { /* the run's noise: rows of one image, in one piece of the stream row */
            const int64_t img = i0 / pixels_per_image, pix = i0 % pixels_per_image;
            if (i1 - i0 > pixels_per_image - pix) i1 = i0 + pixels_per_image - pix;
            normals_row_any(&st, (uint32_t)(row0 + (uint64_t)img), pix * cols, (i1 - i0) * cols, z, isa);
        }
        for (int64_t i = i0; i < i1; i++) {
            float *v = y + i * cols;
            const float g = row_gain ? row_gain[i] : gain, s = row_scale[i];
            if (z) {
                const float *zi = z + (i - i0) * cols;
                for (int32_t k = 0; k < cols; k++) v[k] = v[k] * g + noise_sd * zi[k];
            } else
                for (int32_t k = 0; k < cols; k++) v[k] = v[k] * g;
            if (adc)
                for (int32_t k = 0; k < cols; k++) v[k] = round_half_even(v[k]);
            if (clip)
                for (int32_t k = 0; k < cols; k++) v[k] = v[k] < lo ? lo : (v[k] > hi ? hi : v[k]);
            for (int32_t k = 0; k < cols; k++) v[k] = v[k] * s;
        }
        i0 = i1;
    }
    free(z);
    return 0;
}

/* ---- x86-64 with AVX2 and FMA: vectorised normals and the whole DAC conv in one pass ---- */

#if X86_AVX2

/* Philox4x32-10 on 4 counters per vector, one in the low half of each 64-bit lane: _mm256_mul_epu32 gives
 * the whole 64-bit product (low word in the low half, high word in the high half); the high halves of the
 * other words are never read. A row's first two rounds depend on the counter's c0 only through one of
 * their two products (the others, and the keys, are the row's constants: philox_row_t). */
typedef struct { __m256i k0[10], k1[10], k3, bk, ck, dk; } philox_row_t;

AVX2_FMA static void philox_row_setup(const stream_t *s, uint32_t row, philox_row_t *p) {
    uint32_t k0 = s->k0, k1 = s->k1, k1_0 = k1, k0_1 = k0 + PHILOX_W0, k1_1 = k1 + PHILOX_W1;
    for (int r = 0; r < 10; r++, k0 += PHILOX_W0, k1 += PHILOX_W1) {
        p->k0[r] = _mm256_set1_epi32((int)k0);
        p->k1[r] = _mm256_set1_epi32((int)k1);
    }
    const uint64_t p1 = (uint64_t)PHILOX_M1 * s->c2; /* round 0: c0' = a, c1' = b */
    const uint32_t a = (uint32_t)(p1 >> 32) ^ row ^ s->k0, b = (uint32_t)p1;
    const uint64_t p0 = (uint64_t)PHILOX_M0 * a; /* round 1: c3'' = d */
    const uint32_t d = (uint32_t)p0, k1_2 = s->k1 + 2 * PHILOX_W1;
    p->k3 = _mm256_set1_epi32((int)(s->c3 ^ k1_0));
    p->bk = _mm256_set1_epi32((int)(b ^ k0_1));
    p->ck = _mm256_set1_epi32((int)((uint32_t)(p0 >> 32) ^ k1_1));
    p->dk = _mm256_set1_epi32((int)(d ^ k1_2));
}

/* The four words of the blocks c0 (the low halves of c0's 64-bit lanes) of the row p. */
AVX2_FMA static inline void philox4(const philox_row_t *p, __m256i c0, __m256i x[4]) {
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    __m256i p0 = _mm256_mul_epu32(c0, m0), p1; /* round 0 */
    __m256i x0, x1, x2 = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), p->k3), x3 = p0;
    p1 = _mm256_mul_epu32(x2, m1); /* round 1 */
    x0 = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), p->bk);
    x1 = p1;
    x2 = _mm256_xor_si256(x3, p->ck);
    p0 = _mm256_mul_epu32(x0, m0); /* round 2 */
    p1 = _mm256_mul_epu32(x2, m1);
    x0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1), p->k0[2]);
    x1 = p1;
    x2 = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), p->dk);
    x3 = p0;
    _Pragma("GCC unroll 7") for (int r = 3; r < 10; r++) {
        p0 = _mm256_mul_epu32(x0, m0);
        p1 = _mm256_mul_epu32(x2, m1);
        x0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1), p->k0[r]);
        x1 = p1;
        x2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3), p->k1[r]);
        x3 = p0;
    }
    x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
}

/* The four words of the blocks b .. b + 7 of the row p, word w of block b + i in lane i of c[w]. */
AVX2_FMA static inline void philox8(const philox_row_t *p, uint32_t b, __m256i c[4]) {
    const __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)b), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i even[4], odd[4];
    philox4(p, c0, even); /* blocks b, b + 2, ... */
    philox4(p, _mm256_srli_epi64(c0, 32), odd); /* blocks b + 1, b + 3, ... */
    for (int w = 0; w < 4; w++) c[w] = _mm256_blend_epi32(even[w], _mm256_slli_epi64(odd[w], 32), 0xAA);
}

/* Natural log of u in (0, 1] (Cephes' logf: exponent and a polynomial in the mantissa, ~1 ulp). */
AVX2_FMA static inline __m256 log8(__m256 u) {
    const __m256i bits = _mm256_castps_si256(u);
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                   _mm256_set1_epi32(0x3f000000))); /* in [0.5, 1) */
    const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
    const __m256 x = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), _mm256_set1_ps(1.0f));
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(7.0376836292e-2f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.1514610310e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.1676998740e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.2420140846e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.4249322787e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.6668057665e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(2.0000714765e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-2.4999993993e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(3.3333331174e-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, x), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(x, y));
}

/* cos and sin of theta in [0, 2 pi]: quadrant q = round(theta 2/pi), theta - q pi/2 in three parts (Cody and
 * Waite, with FMA), Cephes' polynomials on [-pi/4, pi/4]. */
AVX2_FMA static inline void sincos8(__m256 theta, __m256 *c_out, __m256 *s_out) {
    const __m256 qf = _mm256_round_ps(_mm256_mul_ps(theta, _mm256_set1_ps(0.636619772367581343f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(1.5703125f), theta);
    r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(4.837512969970703125e-4f), r);
    r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(7.54978995489188216e-8f), r);
    const __m256 z = _mm256_mul_ps(r, r);
    __m256 sn = _mm256_fmadd_ps(_mm256_set1_ps(-1.9515295891e-4f), z, _mm256_set1_ps(8.3321608736e-3f));
    sn = _mm256_fmadd_ps(sn, z, _mm256_set1_ps(-1.6666654611e-1f));
    sn = _mm256_fmadd_ps(_mm256_mul_ps(sn, z), r, r);
    __m256 cs = _mm256_fmadd_ps(_mm256_set1_ps(2.443315711809948e-5f), z, _mm256_set1_ps(-1.388731625493765e-3f));
    cs = _mm256_fmadd_ps(cs, z, _mm256_set1_ps(4.166664568298827e-2f));
    cs = _mm256_fmadd_ps(_mm256_mul_ps(cs, z), z, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    const __m256i q = _mm256_cvtps_epi32(qf); /* 0 .. 4; theta = q pi/2 + r */
    const __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)),
                                                               _mm256_set1_epi32(1)));
    const __m256 c0 = _mm256_blendv_ps(cs, sn, swap), s0 = _mm256_blendv_ps(sn, cs, swap);
    /* cos is negative in quadrants 1 and 2, sin in 2 and 3: sign bits from bit 1 of q + 1 and of q */
    const __m256i csign = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, _mm256_set1_epi32(1)),
                                                             _mm256_set1_epi32(2)), 30);
    const __m256i ssign = _mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(2)), 30);
    *c_out = _mm256_xor_ps(c0, _mm256_castsi256_ps(csign));
    *s_out = _mm256_xor_ps(s0, _mm256_castsi256_ps(ssign));
}

/* Box-Muller of 8 pairs of words, as box_muller. */
AVX2_FMA static inline void box_muller8(__m256i a, __m256i b, __m256 *z0, __m256 *z1) {
    const __m256 scale = _mm256_set1_ps(INV_2_24);
    const __m256 u1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(a, 8),
                                                                        _mm256_set1_epi32(1))), scale);
    const __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 8)), scale);
    const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log8(u1)));
    __m256 c, s;
    sincos8(_mm256_mul_ps(u2, _mm256_set1_ps(TWO_PI_F32)), &c, &s);
    *z0 = _mm256_mul_ps(r, c);
    *z1 = _mm256_mul_ps(r, s);
}

/* The 32 values of blocks b .. b + 7 of the row p into out[0 .. 32), in the row's order. */
AVX2_FMA static inline void normals32(const philox_row_t *p, uint32_t b, float *out) {
    __m256i c[4];
    philox8(p, b, c);
    __m256 z0, z1, z2, z3; /* lane l of the 8 blocks */
    box_muller8(c[0], c[1], &z0, &z1);
    box_muller8(c[2], c[3], &z2, &z3);
    /* transpose [lane][block] -> [block][lane] */
    const __m256 t0 = _mm256_unpacklo_ps(z0, z1), t1 = _mm256_unpackhi_ps(z0, z1);
    const __m256 t2 = _mm256_unpacklo_ps(z2, z3), t3 = _mm256_unpackhi_ps(z2, z3);
    const __m256 v0 = _mm256_shuffle_ps(t0, t2, 0x44), v1 = _mm256_shuffle_ps(t0, t2, 0xEE); /* blocks 0|4, 1|5 */
    const __m256 v2 = _mm256_shuffle_ps(t1, t3, 0x44), v3 = _mm256_shuffle_ps(t1, t3, 0xEE); /* blocks 2|6, 3|7 */
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(v0, v1, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(v2, v3, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(v0, v1, 0x31));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(v2, v3, 0x31));
}

/* Values j0 .. j0 + n - 1 of the row p into dst[0 .. n). */
AVX2_FMA static void normals_run_avx2(const philox_row_t *p, int64_t j0, int64_t n, float *dst) {
    const int64_t end = j0 + n;
    float buf[32];
    for (int64_t j = j0 & ~(int64_t)3; j < end; j += 32) { /* j: the first value of 8 blocks */
        const int64_t lo = j > j0 ? j : j0, hi = j + 32 < end ? j + 32 : end;
        if (lo == j && hi == j + 32) normals32(p, (uint32_t)(j >> 2), dst + (j - j0));
        else {
            normals32(p, (uint32_t)(j >> 2), buf);
            memcpy(dst + (lo - j0), buf + (lo - j), sizeof(float) * (size_t)(hi - lo));
        }
    }
}

AVX2_FMA static void normals_row_avx2(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst) {
    philox_row_t p;
    philox_row_setup(s, row, &p);
    normals_run_avx2(&p, j0, n, dst);
}

/* The same with AVX-512F, 16 blocks (64 values) at a time: the same operations, so the same numbers as the AVX2
 * version; three-way xors in one instruction (ternary logic 0x96), masks instead of blends. */
typedef struct { __m512i k0[10], k1[10], k3, bk, ck, dk; } philox_row16_t;

AVX512 static void philox_row16_setup(const stream_t *s, uint32_t row, philox_row16_t *p) {
    philox_row_t p8;
    philox_row_setup(s, row, &p8);
    for (int r = 0; r < 10; r++) {
        p->k0[r] = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.k0[r]));
        p->k1[r] = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.k1[r]));
    }
    p->k3 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.k3));
    p->bk = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.bk));
    p->ck = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.ck));
    p->dk = _mm512_broadcast_i32x4(_mm256_castsi256_si128(p8.dk));
}

#define XOR3_512(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)

AVX512 static inline void philox4_512(const philox_row16_t *p, __m512i c0, __m512i x[4]) { /* as philox4 */
    const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    __m512i p0 = _mm512_mul_epu32(c0, m0), p1;
    __m512i x0, x1, x2 = _mm512_xor_si512(_mm512_srli_epi64(p0, 32), p->k3), x3 = p0;
    p1 = _mm512_mul_epu32(x2, m1);
    x0 = _mm512_xor_si512(_mm512_srli_epi64(p1, 32), p->bk);
    x1 = p1;
    x2 = _mm512_xor_si512(x3, p->ck);
    p0 = _mm512_mul_epu32(x0, m0);
    p1 = _mm512_mul_epu32(x2, m1);
    x0 = XOR3_512(_mm512_srli_epi64(p1, 32), x1, p->k0[2]);
    x1 = p1;
    x2 = _mm512_xor_si512(_mm512_srli_epi64(p0, 32), p->dk);
    x3 = p0;
    _Pragma("GCC unroll 7") for (int r = 3; r < 10; r++) {
        p0 = _mm512_mul_epu32(x0, m0);
        p1 = _mm512_mul_epu32(x2, m1);
        x0 = XOR3_512(_mm512_srli_epi64(p1, 32), x1, p->k0[r]);
        x1 = p1;
        x2 = XOR3_512(_mm512_srli_epi64(p0, 32), x3, p->k1[r]);
        x3 = p0;
    }
    x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
}

AVX512 static inline __m512 log16(__m512 u) { /* as log8 */
    const __m512i bits = _mm512_castps_si512(u);
    __m512 e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126)));
    const __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)),
                                                         _mm512_set1_epi32(0x3f000000)));
    const __mmask16 small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm512_mask_sub_ps(e, small, e, _mm512_set1_ps(1.0f));
    const __m512 x = _mm512_sub_ps(_mm512_mask_add_ps(m, small, m, m), _mm512_set1_ps(1.0f));
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(7.0376836292e-2f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(-1.1514610310e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.1676998740e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(-1.2420140846e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.4249322787e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(-1.6668057665e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(2.0000714765e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(-2.4999993993e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(3.3333331174e-1f));
    y = _mm512_mul_ps(_mm512_mul_ps(y, x), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(x, y));
}

AVX512 static inline void sincos16(__m512 theta, __m512 *c_out, __m512 *s_out) { /* as sincos8 */
    const __m512 qf = _mm512_roundscale_ps(_mm512_mul_ps(theta, _mm512_set1_ps(0.636619772367581343f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(1.5703125f), theta);
    r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(4.837512969970703125e-4f), r);
    r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(7.54978995489188216e-8f), r);
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 sn = _mm512_fmadd_ps(_mm512_set1_ps(-1.9515295891e-4f), z, _mm512_set1_ps(8.3321608736e-3f));
    sn = _mm512_fmadd_ps(sn, z, _mm512_set1_ps(-1.6666654611e-1f));
    sn = _mm512_fmadd_ps(_mm512_mul_ps(sn, z), r, r);
    __m512 cs = _mm512_fmadd_ps(_mm512_set1_ps(2.443315711809948e-5f), z, _mm512_set1_ps(-1.388731625493765e-3f));
    cs = _mm512_fmadd_ps(cs, z, _mm512_set1_ps(4.166664568298827e-2f));
    cs = _mm512_fmadd_ps(_mm512_mul_ps(cs, z), z, _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    const __m512i q = _mm512_cvtps_epi32(qf);
    const __mmask16 swap = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    const __m512i c0 = _mm512_castps_si512(_mm512_mask_blend_ps(swap, cs, sn));
    const __m512i s0 = _mm512_castps_si512(_mm512_mask_blend_ps(swap, sn, cs));
    const __m512i csign = _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, _mm512_set1_epi32(1)),
                                                             _mm512_set1_epi32(2)), 30);
    const __m512i ssign = _mm512_slli_epi32(_mm512_and_si512(q, _mm512_set1_epi32(2)), 30);
    *c_out = _mm512_castsi512_ps(_mm512_xor_si512(c0, csign));
    *s_out = _mm512_castsi512_ps(_mm512_xor_si512(s0, ssign));
}

AVX512 static inline void box_muller16(__m512i a, __m512i b, __m512 *z0, __m512 *z1) { /* as box_muller8 */
    const __m512 scale = _mm512_set1_ps(INV_2_24);
    const __m512 u1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_srli_epi32(a, 8),
                                                                        _mm512_set1_epi32(1))), scale);
    const __m512 u2 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(b, 8)), scale);
    const __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), log16(u1)));
    __m512 c, s;
    sincos16(_mm512_mul_ps(u2, _mm512_set1_ps(TWO_PI_F32)), &c, &s);
    *z0 = _mm512_mul_ps(r, c);
    *z1 = _mm512_mul_ps(r, s);
}

/* The 64 values of blocks b .. b + 15 of the row p into out[0 .. 64), in the row's order. */
AVX512 static inline void normals64(const philox_row16_t *p, uint32_t b, float *out) {
    const __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)b),
                                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i even[4], odd[4], c[4];
    philox4_512(p, c0, even);
    philox4_512(p, _mm512_srli_epi64(c0, 32), odd);
    for (int w = 0; w < 4; w++) c[w] = _mm512_mask_blend_epi32(0xAAAA, even[w], _mm512_slli_epi64(odd[w], 32));
    __m512 z0, z1, z2, z3;
    box_muller16(c[0], c[1], &z0, &z1);
    box_muller16(c[2], c[3], &z2, &z3);
    /* transpose [lane][block] -> [block][lane]: within 128-bit chunks, then the 4 x 4 chunks */
    const __m512 t0 = _mm512_unpacklo_ps(z0, z1), t1 = _mm512_unpackhi_ps(z0, z1);
    const __m512 t2 = _mm512_unpacklo_ps(z2, z3), t3 = _mm512_unpackhi_ps(z2, z3);
    const __m512 v0 = _mm512_shuffle_ps(t0, t2, 0x44), v1 = _mm512_shuffle_ps(t0, t2, 0xEE); /* blocks 4k, 4k+1 */
    const __m512 v2 = _mm512_shuffle_ps(t1, t3, 0x44), v3 = _mm512_shuffle_ps(t1, t3, 0xEE); /* 4k+2, 4k+3 */
    const __m512 w0 = _mm512_shuffle_f32x4(v0, v1, 0x44), w1 = _mm512_shuffle_f32x4(v2, v3, 0x44);
    const __m512 w2 = _mm512_shuffle_f32x4(v0, v1, 0xEE), w3 = _mm512_shuffle_f32x4(v2, v3, 0xEE);
    _mm512_storeu_ps(out, _mm512_shuffle_f32x4(w0, w1, 0x88));
    _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(w0, w1, 0xDD));
    _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(w2, w3, 0x88));
    _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(w2, w3, 0xDD));
}

AVX512 static void normals_run_avx512(const philox_row16_t *p, int64_t j0, int64_t n, float *dst) {
    const int64_t end = j0 + n;
    float buf[64];
    for (int64_t j = j0 & ~(int64_t)3; j < end; j += 64) { /* j: the first value of 16 blocks */
        const int64_t lo = j > j0 ? j : j0, hi = j + 64 < end ? j + 64 : end;
        if (lo == j && hi == j + 64) normals64(p, (uint32_t)(j >> 2), dst + (j - j0));
        else {
            normals64(p, (uint32_t)(j >> 2), buf);
            memcpy(dst + (lo - j0), buf + (lo - j), sizeof(float) * (size_t)(hi - lo));
        }
    }
}

AVX512 static void normals_row_avx512(const stream_t *s, uint32_t row, int64_t j0, int64_t n, float *dst) {
    philox_row16_t p;
    philox_row16_setup(s, row, &p);
    normals_run_avx512(&p, j0, n, dst);
}

/* One image's stream row, ready for the conv's blocks of outputs, with the instruction set isa (1 or 2). The
 * blocks take the row's values in order, a few rows of outputs at a time, so the values are drawn a chunk (32 or
 * 64, aligned to a multiple of the chunk) at a time and the rest of a chunk kept for the next block: no value
 * is drawn twice. */
typedef struct { int isa; int64_t img, buf_j; philox_row_t r8; philox_row16_t r16; float buf[64]; } noise_row_t;

static void noise_row_set(noise_row_t *nr, const stream_t *s, int64_t img, uint32_t row) {
    nr->img = img;
    nr->buf_j = -1;
    if (nr->isa == 2) philox_row16_setup(s, row, &nr->r16);
    else philox_row_setup(s, row, &nr->r8);
}

/* The chunk of values j .. j + chunk - 1 (j a multiple of the chunk) into dst. */
static void noise_chunk(const noise_row_t *nr, int64_t j, float *dst) {
    if (nr->isa == 2) normals_run_avx512(&nr->r16, j, 64, dst);
    else normals_run_avx2(&nr->r8, j, 32, dst);
}

/* Values j0 .. j0 + n - 1 of the row into dst[0 .. n). */
static void noise_run(noise_row_t *nr, int64_t j0, int64_t n, float *dst) {
    const int64_t chunk = nr->isa == 2 ? 64 : 32;
    while (n > 0) {
        const int64_t base = j0 - j0 % chunk;
        if (j0 == base && n >= chunk && nr->buf_j != base) { /* whole chunks straight into dst */
            const int64_t whole = n - n % chunk;
            if (nr->isa == 2) normals_run_avx512(&nr->r16, j0, whole, dst);
            else normals_run_avx2(&nr->r8, j0, whole, dst);
            j0 += whole; dst += whole; n -= whole;
            continue;
        }
        if (nr->buf_j != base) { noise_chunk(nr, base, nr->buf); nr->buf_j = base; }
        const int64_t take = base + chunk - j0 < n ? base + chunk - j0 : n;
        memcpy(dst, nr->buf + (j0 - base), sizeof(float) * (size_t)take);
        j0 += take; dst += take; n -= take;
    }
}

/* dst[0 .. len) = the DAC levels of src[0 .. len) at input gain s: round(src * s), clipped to +-half if clip_in. */
AVX2_FMA static inline void dac_run(const float *src, float *dst, int32_t len, float s, float half, int32_t clip_in) {
    const __m256 sv = _mm256_set1_ps(s), lo = _mm256_set1_ps(-half), hi = _mm256_set1_ps(half);
    int32_t q = 0;
    if (clip_in)
        for (; q + 8 <= len; q += 8) {
            const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(src + q), sv),
                                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_ps(dst + q, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
        }
    else
        for (; q + 8 <= len; q += 8)
            _mm256_storeu_ps(dst + q, _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(src + q), sv),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; q < len; q++) {
        const float v = round_half_even(src[q] * s);
        dst[q] = clip_in ? (v < -half ? -half : (v > half ? half : v)) : v;
    }
}

/* One row of the patch matrix: the DAC levels of the patch of output pixel (oy, ox) of image x_n [h, w, c]
 * into dst[(i * kw + j) * c + ch] (zero outside the image). A kernel row inside the image is one run. */
AVX2_FMA static void dac_row(const float *x_n, float s, float *dst, int32_t oy, int32_t ox, int32_t h, int32_t w,
                             int32_t c, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                             float half, int32_t clip_in) {
    const int32_t ix0 = ox * sw - pw;
    for (int32_t i = 0; i < kh; i++, dst += kw * c) {
        const int32_t iy = oy * sh - ph + i;
        if (iy < 0 || iy >= h) { memset(dst, 0, sizeof(float) * kw * c); continue; }
        const float *row = x_n + (int64_t)iy * w * c;
        if (ix0 >= 0 && ix0 + kw <= w) { dac_run(row + (int64_t)ix0 * c, dst, kw * c, s, half, clip_in); continue; }
        for (int32_t j = 0; j < kw; j++) {
            if (ix0 + j < 0 || ix0 + j >= w) memset(dst + j * c, 0, sizeof(float) * c);
            else dac_run(row + (int64_t)(ix0 + j) * c, dst + j * c, c, s, half, clip_in);
        }
    }
}

/* c[m, 0 : 8 NR] = sum_q a[m, q] b[q, 0 : 8 NR] for MR rows: the register-blocked inner product (the
 * accumulators are an array of exactly MR x NR vectors, which the compiler keeps in registers). */
#define UNROLL _Pragma("GCC unroll 16")
#define MVM(MR, NR) \
    AVX2_FMA static void mvm_##MR##_##NR(const float *a, int32_t k, const float *b, int32_t ldb, float *c, \
                                         int32_t ldc) { \
        __m256 acc[MR][NR]; \
        UNROLL for (int m = 0; m < MR; m++) \
            UNROLL for (int v = 0; v < NR; v++) acc[m][v] = _mm256_setzero_ps(); \
        for (int32_t q = 0; q < k; q++) { \
            __m256 bv[NR]; \
            UNROLL for (int v = 0; v < NR; v++) bv[v] = _mm256_loadu_ps(b + (int64_t)q * ldb + 8 * v); \
            UNROLL for (int m = 0; m < MR; m++) { \
                const __m256 av = _mm256_broadcast_ss(a + (int64_t)m * k + q); \
                UNROLL for (int v = 0; v < NR; v++) acc[m][v] = _mm256_fmadd_ps(av, bv[v], acc[m][v]); \
            } \
        } \
        UNROLL for (int m = 0; m < MR; m++) \
            UNROLL for (int v = 0; v < NR; v++) _mm256_storeu_ps(c + (int64_t)m * ldc + 8 * v, acc[m][v]); \
    }
MVM(12, 1) MVM(6, 2) MVM(6, 1)

/* The output stage (see output_stage) from the crossbar outputs src [rows, ld] (ld: cols rounded up to a
 * multiple of 8, zero-padded) into dst [rows, cols], with noise_sd times the draws z [rows * cols] in
 * dst's order (z readable up to 8 values past its end). */
AVX2_FMA static void output_rows_avx2(const float *src, int32_t ld, float *dst, int32_t rows, int32_t cols,
                                      float gain, const float *row_scale, float noise_sd, const float *z,
                                      int32_t adc, int32_t clip, float lo, float hi) {
    const __m256 g = _mm256_set1_ps(gain), sd = _mm256_set1_ps(noise_sd);
    const __m256 lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
    const int32_t tail = cols % 8;
    const __m256i tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int32_t i = 0; i < rows; i++) {
        const float *v = src + (int64_t)i * ld;
        const float *zi = z + (int64_t)i * cols;
        float *out = dst + (int64_t)i * cols;
        const __m256 scv = _mm256_set1_ps(row_scale[i]);
        for (int32_t q = 0; q < cols; q += 8) {
            __m256 t = _mm256_mul_ps(_mm256_loadu_ps(v + q), g);
            if (noise_sd > 0.0f) t = _mm256_add_ps(t, _mm256_mul_ps(sd, _mm256_loadu_ps(zi + q)));
            if (adc) t = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            if (clip) t = _mm256_min_ps(_mm256_max_ps(t, lov), hiv);
            t = _mm256_mul_ps(t, scv);
            if (q + 8 <= cols) _mm256_storeu_ps(out + q, t);
            else _mm256_maskstore_ps(out + q, tail_mask, t);
        }
    }
}

/* max_c |v[c]| of one pixel's channels. */
AVX2_FMA static inline float abs_max_run(const float *v, int32_t c) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mv = _mm256_setzero_ps();
    int32_t q = 0;
    for (; q + 8 <= c; q += 8) mv = _mm256_max_ps(mv, _mm256_and_ps(_mm256_loadu_ps(v + q), magnitude));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float m = _mm_cvtss_f32(m4);
    for (; q < c; q++) { const float a = fabsf(v[q]); m = a > m ? a : m; }
    return m;
}

/* The abs-max input scales s of the patches of output row oy, srow[0 .. wo): the largest channel-wise abs-max
 * cam[iy, ix] of each window inside the image (padding adds zeros), or 1 for an all-zero patch (as aihwkit);
 * as separable maxima, first over the window's rows (into vmax [w]), then along the row. */
static void patch_scales(const float *cam, float *vmax, float *srow, int32_t oy, int32_t h, int32_t w, int32_t wo,
                         int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw) {
    const int32_t y0 = oy * sh - ph, ya = y0 < 0 ? 0 : y0, yb = y0 + kh > h ? h : y0 + kh;
    for (int32_t ix = 0; ix < w; ix++) vmax[ix] = 0.0f;
    for (int32_t iy = ya; iy < yb; iy++)
        for (int32_t ix = 0; ix < w; ix++) vmax[ix] = cam[iy * w + ix] > vmax[ix] ? cam[iy * w + ix] : vmax[ix];
    for (int32_t ox = 0; ox < wo; ox++) {
        const int32_t x0 = ox * sw - pw, xa = x0 < 0 ? 0 : x0, xb = x0 + kw > w ? w : x0 + kw;
        float m = 0.0f;
        for (int32_t ix = xa; ix < xb; ix++) m = vmax[ix] > m ? vmax[ix] : m;
        srow[ox] = m > 0.0f ? m : 1.0f;
    }
}

typedef struct { /* a layer call's shapes and converter settings */
    int32_t h, w, c, ho, wo, kh, kw, sh, sw, ph, pw, cout, coutp, clip_in, adc, clip;
    float in_step, half, gain, out_scale, noise_sd, lo, hi;
} conv_args_t;

/* One group of nb images (x [nb, h, w, c] -> out [nb, ho, wo, cout]), the first being stream row row0 of st;
 * buffers as in dac_conv. */
AVX2_FMA static void dac_conv_group(const conv_args_t *A, const float *x, const float *w_packed, float *out,
                                    int32_t nb, const stream_t *st, uint64_t row0, float *a, float *tile,
                                    float *nbuf, float *cam, float *vmax, float *srow, float *row_scale) {
    const int32_t h = A->h, w = A->w, c = A->c, ho = A->ho, wo = A->wo, cout = A->cout, coutp = A->coutp;
    const int32_t k = A->kh * A->kw * c, nvec = coutp / 8;
    const int mr = nvec == 1 ? 12 : 6; /* 12 accumulators: 12 x 1 or 6 x 2 vectors (6 x 1 for an odd last one) */
    const int64_t hw = (int64_t)ho * wo, npos = nb * hw;
    int32_t n = 0, oy = 0, ox = 0; /* the next patch's image and output pixel */
    noise_row_t noise; /* the stream row of the last image that drew noise */
    noise.isa = noise_isa() == 2 ? 2 : 1;
    noise.img = -1;
    for (int64_t p0 = 0; p0 < npos; p0 += mr) {
        for (int m = 0; m < mr; m++) {
            if (p0 + m >= npos) { memset(a + (int64_t)m * k, 0, sizeof(float) * k); continue; }
            if (ox == 0 && oy == 0) /* a new image: its channel-wise abs-max, while it moves into the cache */
                for (int64_t q = 0; q < (int64_t)h * w; q++) cam[q] = abs_max_run(x + ((int64_t)n * h * w + q) * c, c);
            if (ox == 0)
                patch_scales(cam, vmax, srow, oy, h, w, wo, A->kh, A->kw, A->sh, A->sw, A->ph, A->pw);
            const float s = srow[ox];
            row_scale[m] = s * A->out_scale;
            dac_row(x + (int64_t)n * h * w * c, 1.0f / (s * A->in_step), a + (int64_t)m * k, oy, ox, h, w, c, A->kh,
                    A->kw, A->sh, A->sw, A->ph, A->pw, A->half, A->clip_in);
            if (++ox == wo) { ox = 0; if (++oy == ho) { oy = 0; n++; } }
        }
        for (int32_t g = 0; g < nvec; g += 2) { /* two vectors (16 output columns) at a time */
            const float *b = w_packed + 8 * g;
            float *t = tile + 8 * g;
            if (mr == 12) mvm_12_1(a, k, b, coutp, t, coutp);
            else if (nvec - g >= 2) mvm_6_2(a, k, b, coutp, t, coutp);
            else mvm_6_1(a, k, b, coutp, t, coutp);
        }
        const int rows = npos - p0 < mr ? (int)(npos - p0) : mr;
        if (A->noise_sd > 0.0f) /* the block's noise: values p * cout + ch of its images' stream rows */
            for (int m = 0; m < rows;) {
                const int64_t img = (p0 + m) / hw, pix = (p0 + m) % hw;
                const int run = hw - pix < rows - m ? (int)(hw - pix) : rows - m;
                if (img != noise.img) noise_row_set(&noise, st, img, (uint32_t)(row0 + (uint64_t)img));
                noise_run(&noise, pix * cout, (int64_t)run * cout, nbuf + (int64_t)m * cout);
                m += run;
            }
        output_rows_avx2(tile, coutp, out + p0 * cout, rows, cout, A->gain, row_scale, A->noise_sd, nbuf, A->adc,
                         A->clip, A->lo, A->hi);
    }
}

AVX2_FMA static int32_t dac_conv_avx2(const conv_args_t *A, const float *x, const float *w_packed, float *out,
                                      int32_t nb, const stream_t *st, uint64_t row0, int32_t group_images, int32_t g0,
                                      int32_t g1) {
    const int32_t k = A->kh * A->kw * A->c;
    float *a = malloc(sizeof(float) * 12 * k), *tile = malloc(sizeof(float) * 12 * A->coutp);
    float *nbuf = calloc(12 * (size_t)A->cout + 8, sizeof(float)), *row_scale = malloc(sizeof(float) * 12);
    float *cam = malloc(sizeof(float) * A->h * A->w), *vmax = malloc(sizeof(float) * A->w);
    float *srow = malloc(sizeof(float) * A->wo);
    int32_t rc = 0;
    if (!a || !tile || !nbuf || !row_scale || !cam || !vmax || !srow) rc = -1;
    for (int32_t g = g0; g < g1 && rc == 0; g++) {
        const int32_t b0 = g * group_images, b1 = b0 + group_images < nb ? b0 + group_images : nb;
        dac_conv_group(A, x + (int64_t)b0 * A->h * A->w * A->c, w_packed, out + (int64_t)b0 * A->ho * A->wo * A->cout,
                       b1 - b0, st, row0 + (uint64_t)b0, a, tile, nbuf, cam, vmax, srow, row_scale);
    }
    free(a);
    free(tile);
    free(nbuf);
    free(row_scale);
    free(cam);
    free(vmax);
    free(srow);
    return rc;
}
#endif

/* The conv of an abs-max DAC, the crossbar and the output stage in one pass, for the groups g0 .. g1-1 of
 * group_images images each (the groups only share the work among threads): x [nb, h, w, c] (NHWC),
 * w_packed [kh * kw * c, coutp] (the crossbar's normalised weights in the patch matrix's row order (i, j, ch),
 * columns zero-padded to coutp, a multiple of 8), out [nb, ho, wo, cout]. Per output pixel: s = abs-max of
 * its patch (1 if all zero), DAC levels round(x / (s * in_step)) (clipped to +-half if clip_in), built for a
 * block of 6 (or 12) pixels at a time in a small buffer; the product in registers; then output_stage's steps
 * with gain, noise_sd, adc, clip to [lo, hi] and the row scale s * out_scale, from the block's products
 * straight into out. Noise: output (image n, pixel p = oy * wo + ox, channel ch) gets value j = p * cout + ch
 * of stream row row0 + n of (seed, c2, c3). Returns 0, -1 if its buffers could not be allocated, -2 if this
 * CPU has no AVX2 and FMA. */
int32_t dac_conv(const float *x, const float *w_packed, float *out, int32_t nb, int32_t h, int32_t w, int32_t c,
                 int32_t ho, int32_t wo, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph, int32_t pw,
                 float in_step, float half, int32_t clip_in, int32_t cout, int32_t coutp, float gain, float out_scale,
                 float noise_sd, uint64_t seed, uint32_t c2, uint32_t c3, uint64_t row0, int32_t group_images,
                 int32_t g0, int32_t g1, int32_t adc, int32_t clip, float lo, float hi) {
#if X86_AVX2
    if (cpu_isa() < 1) return -2;
    const conv_args_t A = {h, w, c, ho, wo, kh, kw, sh, sw, ph, pw, cout, coutp, clip_in, adc, clip,
                           in_step, half, gain, out_scale, noise_sd, lo, hi};
    const stream_t st = stream_of(seed, c2, c3);
    return dac_conv_avx2(&A, x, w_packed, out, nb, &st, row0, group_images, g0, g1);
#else
    (void)x; (void)w_packed; (void)out; (void)nb; (void)h; (void)w; (void)c; (void)ho; (void)wo; (void)kh;
    (void)kw; (void)sh; (void)sw; (void)ph; (void)pw; (void)in_step; (void)half; (void)clip_in; (void)cout;
    (void)coutp; (void)gain; (void)out_scale; (void)noise_sd; (void)seed; (void)c2; (void)c3; (void)row0;
    (void)group_images; (void)g0; (void)g1; (void)adc; (void)clip; (void)lo; (void)hi;
    return -2;
#endif
}
