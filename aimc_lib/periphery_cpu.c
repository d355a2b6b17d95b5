/* The periphery's element-wise work on a CPU, fused (see aimc_lib/periphery_cpu.py).
 *
 * Plain C, no dependencies: compiled once on first use with the system's C compiler and called
 * through ctypes. Float arithmetic is IEEE single precision without contraction (-ffp-contract=off),
 * so the results equal PyTorch's element-wise ops on the same inputs; rounding is round half to
 * even (as torch.round) by the float trick (v + 1.5*2^23) - 1.5*2^23, exact for |v| < 2^22.
 *
 * Output noise: a ziggurat Gaussian (Marsaglia and Tsang 2000, 128 layers) fed by xoshiro256**
 * (Blackman and Vigna). Every output row (one MVM) gets its own stream, seeded through splitmix64
 * from the call's 64-bit seed (drawn by the caller from its torch.Generator) and the row's index in
 * the batch, so the noise does not depend on how a batch is split into chunks. Each 64-bit draw
 * gives two 32-bit words; each word gives a layer index (7 bits) and a signed 25-bit abscissa, so
 * the fast path costs half a generator step.
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
