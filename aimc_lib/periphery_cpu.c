/* The periphery's work on a CPU, compiled (see aimc_lib/periphery_cpu.py).
 *
 * Plain C, no dependencies: compiled once on first use with the system's C compiler and called
 * through ctypes. Float arithmetic is IEEE single precision without contraction (-ffp-contract=off),
 * so the element-wise steps equal PyTorch's element-wise ops on the same inputs; rounding is round
 * half to even (as torch.round), by the float trick (v + 1.5*2^23) - 1.5*2^23 (exact for |v| < 2^22)
 * or by the AVX round instruction.
 *
 * Two paths:
 * - portable loops (any CPU): the channel-wise abs-max, the DAC's patch matrix and the output stage;
 *   the product between them is PyTorch's. Output noise: a ziggurat Gaussian (Marsaglia and Tsang
 *   2000, 128 layers) fed by xoshiro256** (Blackman and Vigna). Every output row (one MVM) gets its
 *   own stream, seeded through splitmix64 from the call's 64-bit seed (drawn by the caller from its
 *   torch.Generator) and the row's index in the batch, so the noise does not depend on how a batch is
 *   split into chunks. Each 64-bit draw gives two 32-bit words; each word gives a layer index (7 bits)
 *   and a signed 25-bit abscissa, so the fast path costs half a generator step.
 * - x86-64 with AVX2 and FMA (checked at run time): dac_conv, the whole conv through the DAC, the
 *   crossbar and the output stage in one pass, with its own vectorised Gaussian generator (see there).
 */
#include <math.h>
#include <stdint.h>

#define ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */

static inline float round_half_even(float v) { return (v + ROUND_MAGIC) - ROUND_MAGIC; }

/* ---- random numbers ---- */

typedef struct { uint64_t s[4]; uint64_t spare; int has_spare; } rng_t;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
    r->has_spare = 0;
}

static inline uint64_t rng_next(rng_t *r) { /* xoshiro256** */
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

static inline uint32_t rng_word(rng_t *r) {
    if (r->has_spare) { r->has_spare = 0; return (uint32_t)r->spare; }
    uint64_t v = rng_next(r);
    r->spare = v >> 32; r->has_spare = 1;
    return (uint32_t)v;
}

static inline double rng_uniform_open(rng_t *r) { /* in (0, 1) */
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static uint32_t zig_k[128];
static float zig_w[128], zig_f[128];
static int zig_ready = 0;
static const double ZIG_R = 3.442619855899;

static void zig_setup(void) { /* Marsaglia and Tsang's tables, abscissas scaled to 2^24 */
    const double m = 16777216.0, v = 9.91256303526217e-3;
    double dn = ZIG_R, tn = dn, q = v / exp(-0.5 * dn * dn);
    zig_k[0] = (uint32_t)((dn / q) * m);
    zig_k[1] = 0;
    zig_w[0] = (float)(q / m);
    zig_w[127] = (float)(dn / m);
    zig_f[0] = 1.0f;
    zig_f[127] = (float)exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; i--) {
        dn = sqrt(-2.0 * log(v / dn + exp(-0.5 * dn * dn)));
        zig_k[i + 1] = (uint32_t)((dn / tn) * m);
        tn = dn;
        zig_f[i] = (float)exp(-0.5 * dn * dn);
        zig_w[i] = (float)(dn / m);
    }
    zig_ready = 1;
}

static float gauss_slow(rng_t *r, int32_t hz, uint32_t iz) {
    for (;;) {
        double x = (double)hz * zig_w[iz];
        if (iz == 0) { /* the tail beyond R */
            double xt, y;
            do {
                xt = -log(rng_uniform_open(r)) / ZIG_R;
                y = -log(rng_uniform_open(r));
            } while (y + y < xt * xt);
            return (float)(hz > 0 ? ZIG_R + xt : -ZIG_R - xt);
        }
        if (zig_f[iz] + rng_uniform_open(r) * (zig_f[iz - 1] - zig_f[iz]) < exp(-0.5 * x * x)) return (float)x;
        uint32_t u = rng_word(r);
        iz = u & 127;
        hz = (int32_t)u >> 7;
        if ((uint32_t)(hz < 0 ? -hz : hz) < zig_k[iz]) return (float)hz * zig_w[iz];
    }
}

static inline float gauss(rng_t *r) {
    uint32_t u = rng_word(r), iz = u & 127;
    int32_t hz = (int32_t)u >> 7; /* signed, |hz| <= 2^24 */
    if ((uint32_t)(hz < 0 ? -hz : hz) < zig_k[iz]) return (float)hz * zig_w[iz];
    return gauss_slow(r, hz, iz);
}

/* Builds the ziggurat's tables; called once when the library is loaded. */
void init(void) {
    if (!zig_ready) zig_setup();
}

/* Standard normal draws into out[0..n) (for tests of the generator itself). */
void normal_fill(float *out, int64_t n, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) out[i] = gauss(&r);
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

/* From the crossbar's raw product to the digital result, in place on y [rows, cols] (rows row0, row0 + 1, ...
 * of the batch):
 * y = y * gain (row_gain[r] if given); + noise_sd * N(0, 1); ADC: round, then clip to [lo, hi]
 * (or only clip, or neither); y = y * row_scale[r]. */
void output_stage(float *y, int64_t rows, int32_t cols, const float *row_gain, float gain, const float *row_scale,
                  float noise_sd, uint64_t seed, int64_t row0, int32_t adc, int32_t clip, float lo, float hi) {
    rng_t r;
    for (int64_t i = 0; i < rows; i++) {
        float *v = y + i * cols;
        const float g = row_gain ? row_gain[i] : gain, s = row_scale[i];
        if (noise_sd > 0.0f) {
            rng_seed(&r, seed ^ ((uint64_t)(row0 + i) * 0xd1b54a32d192ed03ULL));
            for (int32_t k = 0; k < cols; k++) v[k] = v[k] * g + noise_sd * gauss(&r);
        } else
            for (int32_t k = 0; k < cols; k++) v[k] = v[k] * g;
        if (adc)
            for (int32_t k = 0; k < cols; k++) v[k] = round_half_even(v[k]);
        if (clip)
            for (int32_t k = 0; k < cols; k++) v[k] = v[k] < lo ? lo : (v[k] > hi ? hi : v[k]);
        for (int32_t k = 0; k < cols; k++) v[k] = v[k] * s;
    }
}

/* ---- the whole DAC conv in one pass (x86-64 with AVX2 and FMA) ---- */

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define AVX2_FMA __attribute__((target("avx2,fma")))

/* 1 if this CPU runs dac_conv (AVX2 and FMA), else 0 (the caller then builds the patch matrix). */
int dac_conv_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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

/* ---- Gaussian noise, eight at a time: xoshiro256** on four 64-bit lanes, Box-Muller ---- */

typedef struct { __m256i s[4]; } rng4_t;

#define ROTL4(x, k) _mm256_or_si256(_mm256_slli_epi64((x), (k)), _mm256_srli_epi64((x), 64 - (k)))

AVX2_FMA static void rng4_seed(rng4_t *r, uint64_t seed) { /* the four lanes' states from one seed, by splitmix64 */
    uint64_t st[4][4];
    for (int lane = 0; lane < 4; lane++)
        for (int i = 0; i < 4; i++) st[i][lane] = splitmix64(&seed);
    for (int i = 0; i < 4; i++) r->s[i] = _mm256_loadu_si256((const __m256i *)st[i]);
}

AVX2_FMA static inline __m256i rng4_next(rng4_t *r) { /* xoshiro256** in each lane: 8 random 32-bit words */
    __m256i *s = r->s;
    const __m256i x5 = _mm256_add_epi64(_mm256_slli_epi64(s[1], 2), s[1]), rot = ROTL4(x5, 7);
    const __m256i result = _mm256_add_epi64(_mm256_slli_epi64(rot, 3), rot), t = _mm256_slli_epi64(s[1], 17);
    s[2] = _mm256_xor_si256(s[2], s[0]);
    s[3] = _mm256_xor_si256(s[3], s[1]);
    s[1] = _mm256_xor_si256(s[1], s[2]);
    s[0] = _mm256_xor_si256(s[0], s[3]);
    s[2] = _mm256_xor_si256(s[2], t);
    s[3] = ROTL4(s[3], 45);
    return result;
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

/* cos and sin of 2 pi u for u in [0, 1): quadrant from round(4u), Cephes' polynomials on [-pi/4, pi/4]. */
AVX2_FMA static inline void sincos2pi8(__m256 u, __m256 *c_out, __m256 *s_out) {
    const __m256 t = _mm256_mul_ps(u, _mm256_set1_ps(4.0f));
    const __m256 qf = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_mul_ps(_mm256_sub_ps(t, qf), _mm256_set1_ps(1.57079632679489662f)); /* exact t - q */
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

/* 16 standard normal draws into out[0 .. 16): Box-Muller on two vectors of uniforms, u1 in (0, 1] from 32
 * random bits (so |z| <= 6.66), u2 in [0, 1) from 24. */
AVX2_FMA static inline void normal16(rng4_t *r, float *out) {
    const __m256i w1 = rng4_next(r), w2 = rng4_next(r);
    const __m256 u1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w1, 1)), _mm256_set1_ps(4.656612873e-10f),
                                      _mm256_set1_ps(2.3283064365e-10f)); /* (k + 1/2) 2^-31, k < 2^31 */
    const __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w2, 8)), _mm256_set1_ps(5.9604644775e-8f));
    const __m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log8(u1)));
    __m256 c, s;
    sincos2pi8(u2, &c, &s);
    _mm256_storeu_ps(out, _mm256_mul_ps(rad, c));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(rad, s));
}

/* Standard normal draws of the vectorised generator into out[0..n) (for tests of the generator itself). */
AVX2_FMA void normal_fill_avx2(float *out, int64_t n, uint64_t seed) {
    rng4_t r;
    float buf[16];
    rng4_seed(&r, seed);
    for (int64_t i = 0; i < n; i += 16) {
        normal16(&r, buf);
        memcpy(out + i, buf, sizeof(float) * (n - i < 16 ? n - i : 16));
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

/* One group of nb images (x [nb, h, w, c] -> out [nb, ho, wo, cout]) with noise from r; buffers as in dac_conv. */
AVX2_FMA static void dac_conv_group(const conv_args_t *A, const float *x, const float *w_packed, float *out,
                                    int32_t nb, rng4_t *r, float *a, float *tile, float *nbuf, float *cam,
                                    float *vmax, float *srow, float *row_scale) {
    const int32_t h = A->h, w = A->w, c = A->c, ho = A->ho, wo = A->wo, cout = A->cout, coutp = A->coutp;
    const int32_t k = A->kh * A->kw * c, nvec = coutp / 8;
    const int mr = nvec == 1 ? 12 : 6; /* 12 accumulators: 12 x 1 or 6 x 2 vectors (6 x 1 for an odd last one) */
    const int64_t npos = (int64_t)nb * ho * wo;
    int32_t n = 0, oy = 0, ox = 0; /* the next patch's image and output pixel */
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
        if (A->noise_sd > 0.0f)
            for (int32_t i = 0; i < rows * cout; i += 16) normal16(r, nbuf + i);
        output_rows_avx2(tile, coutp, out + p0 * cout, rows, cout, A->gain, row_scale, A->noise_sd, nbuf, A->adc,
                         A->clip, A->lo, A->hi);
    }
}

/* The conv of an abs-max DAC, the crossbar and the output stage in one pass, for the groups g0 .. g1-1 of
 * group_images images each: x [nb, h, w, c] (NHWC), w_packed [kh * kw * c, coutp] (the crossbar's
 * normalised weights in the patch matrix's row order (i, j, ch), columns zero-padded to coutp, a multiple
 * of 8), out [nb, ho, wo, cout]. Per output pixel: s = abs-max of its patch (1 if all zero), DAC levels
 * round(x / (s * in_step)) (clipped to +-half if clip_in), built for a block of 6 (or 12) pixels at a time in
 * a small buffer; the product in registers; then output_stage's steps with gain, noise_sd, adc, clip to
 * [lo, hi] and the row scale s * out_scale, from the block's products straight into out. Each group's noise:
 * one vectorised stream seeded by seed + g * 0x9E3779B97F4A7C15, drawn block by block in out's order (16
 * at a time: the rest of a block's last 16 is not used). Returns 0, or -1 if its buffers could not be
 * allocated. */
AVX2_FMA int dac_conv(const float *x, const float *w_packed, float *out, int32_t nb, int32_t h, int32_t w,
                      int32_t c, int32_t ho, int32_t wo, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t ph,
                      int32_t pw, float in_step, float half, int32_t clip_in, int32_t cout, int32_t coutp, float gain,
                      float out_scale, float noise_sd, uint64_t seed, int32_t group_images, int32_t g0, int32_t g1,
                      int32_t adc, int32_t clip, float lo, float hi) {
    const conv_args_t A = {h, w, c, ho, wo, kh, kw, sh, sw, ph, pw, cout, coutp, clip_in, adc, clip,
                           in_step, half, gain, out_scale, noise_sd, lo, hi};
    const int32_t k = kh * kw * c;
    float *a = malloc(sizeof(float) * 12 * k), *tile = malloc(sizeof(float) * 12 * coutp);
    float *nbuf = malloc(sizeof(float) * (12 * cout + 24)), *row_scale = malloc(sizeof(float) * 12);
    float *cam = malloc(sizeof(float) * h * w), *vmax = malloc(sizeof(float) * w);
    float *srow = malloc(sizeof(float) * wo);
    int rc = 0;
    if (!a || !tile || !nbuf || !row_scale || !cam || !vmax || !srow) rc = -1;
    for (int32_t g = g0; g < g1 && rc == 0; g++) {
        const int32_t b0 = g * group_images, b1 = b0 + group_images < nb ? b0 + group_images : nb;
        rng4_t r;
        rng4_seed(&r, seed + (uint64_t)g * 0x9E3779B97F4A7C15ULL);
        dac_conv_group(&A, x + (int64_t)b0 * h * w * c, w_packed, out + (int64_t)b0 * ho * wo * cout, b1 - b0, &r,
                       a, tile, nbuf, cam, vmax, srow, row_scale);
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
#else
int dac_conv_available(void) { return 0; }
#endif
