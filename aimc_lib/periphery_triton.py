"""The abs-max DAC convolution of :mod:`aimc_lib.periphery` as one fused GPU kernel (Triton).

Same arithmetic as the PyTorch path (``periphery._dac_conv``), without its patch matrix: each
program takes ``BLOCK_M`` output pixels (rows of the channels-last output) and all output
channels, and for every kernel offset loads the input pixels its patches need, scales them by
the patch's ``1 / (s * step)``, rounds them to the DAC's levels (round half to even, as
``torch.round``) and accumulates their product with the weights (an implicit GEMM: the same
multiply-adds as the convolution). The output stage runs on the accumulator before anything is
written: gain into ADC units, output noise, ADC (round, clip) and the digital rescaling by
``s * step_out * digital_scale``.

Output noise comes from Triton's counter-based generator (Philox), keyed by one seed drawn from
the layer's ``torch.Generator`` per call and by each output's position in the batch, so a given
generator state gives the same noise on every run (not the same draws as the PyTorch path: the
same distribution). Without noise the two paths agree up to the order of the float additions
(an output on an ADC rounding boundary can land one level apart).

Used for CUDA tensors when Triton is installed (it ships with PyTorch on Linux); the tests also
run it on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton (e.g. macOS, Windows): the PyTorch path is used
    triton = None

#: Rows (output pixels) per program; all output channels of a row are in one program.
BLOCK_M = 64
#: Warps per program.
NUM_WARPS = 4
#: How ``tl.dot`` multiplies float32: "tf32x3" runs on tensor cores in three TF32 passes and keeps
#: float32 accuracy (the DAC levels are small integers, exact in TF32; the weights are split into a
#: high and a low TF32 part); on an H200 it matched the float32 PyTorch path to 1e-5 relative.
#: "ieee" (plain float32 FMAs) did not finish compiling the 56-channel layers within 100 s there.
INPUT_PRECISION = "tf32x3"
available = triton is not None

if available:
    _ROUND = tl.constexpr(12582912.0)  # 1.5 * 2^23: (v + R) - R rounds a float32 |v| < 2^22 to an integer, ties to even

    @triton.jit(do_not_specialize=["seed"])  # a fresh seed per call must not mean a fresh compilation
    def _dac_conv_kernel(x_ptr, inv_ptr, s_ptr, w_ptr, out_ptr, seed,
                         M, H, W, C, HO, WO, COUT, SH, SW, PH, PW,
                         in_half, gain, noise_sd, out_lo, out_hi, rescale,
                         KH: tl.constexpr, KW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
                         BLOCK_N: tl.constexpr, CLAMP_IN: tl.constexpr, NOISE: tl.constexpr,
                         ADC: tl.constexpr, CLIP: tl.constexpr, PRECISION: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < M
        n = rows // (HO * WO)
        ho = (rows // WO) % HO
        wo = rows % WO
        inv = tl.load(inv_ptr + rows, mask=row_ok, other=0.0)
        cs = tl.arange(0, BLOCK_C)
        cols = tl.arange(0, BLOCK_N)
        c_ok = cs < C
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for i in tl.static_range(KH):
            hi = ho * SH - PH + i
            for j in tl.static_range(KW):
                wi = wo * SW - PW + j
                ok = row_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
                pix = ((n * H + hi) * W + wi).to(tl.int64) * C
                a = tl.load(x_ptr + pix[:, None] + cs[None, :], mask=ok[:, None] & c_ok[None, :], other=0.0)
                a = (a * inv[:, None] + _ROUND) - _ROUND  # the DAC's level: round(x / (s * step))
                if CLAMP_IN:
                    a = tl.minimum(tl.maximum(a, -in_half), in_half)
                krow = (i * KW + j) * C + cs
                b = tl.load(w_ptr + krow[:, None] * COUT + cols[None, :],
                            mask=c_ok[:, None] & (cols < COUT)[None, :], other=0.0)
                acc += tl.dot(a, b, input_precision=PRECISION)
        y = acc * gain  # DAC levels x normalised weights -> ADC units
        offsets = rows[:, None] * COUT + cols[None, :]
        if NOISE:
            y += tl.randn(seed, offsets) * noise_sd
        if ADC:
            y = (y + _ROUND) - _ROUND
        if CLIP:
            y = tl.minimum(tl.maximum(y, out_lo), out_hi)
        s = tl.load(s_ptr + rows, mask=row_ok, other=0.0)
        y = y * (s * rescale)[:, None]
        tl.store(out_ptr + offsets, y, mask=row_ok[:, None] & (cols < COUT)[None, :])


def _pow2_at_least_16(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


def dac_conv(x: torch.Tensor, s: torch.Tensor, w4d: torch.Tensor, stride: tuple, padding: tuple, *,
             in_step: float, in_half: int, clamp_in: bool, out_step: float, out_noise: float,
             out_half: int | None, out_bound: float | None, digital_scale: float,
             generator: torch.Generator | None) -> torch.Tensor:
    """The fused DAC conv: ``x`` ``[N, C, H, W]`` (any memory format), ``s`` ``[N, 1, Ho, Wo]`` patch scales.

    Returns ``[N, Cout, Ho, Wo]`` in channels-last memory, as ``periphery._dac_conv``.
    """
    n, c, h, w = x.shape
    cout, _, kh, kw = w4d.shape
    ho, wo = s.shape[-2:]
    if c > 64 or cout > 128:
        raise ValueError(f"dac_conv: one program holds all channels; got {c} in, {cout} out")
    m = n * ho * wo
    if m * cout >= 2 ** 31:
        raise ValueError("dac_conv: batch too large for int32 noise offsets; evaluate in smaller batches")
    xl = x.permute(0, 2, 3, 1).contiguous()  # NHWC (free for channels-last input)
    s_flat = s.reshape(-1).contiguous()
    inv = (1.0 / (s_flat * in_step)).contiguous()
    w_mat = w4d.permute(2, 3, 1, 0).reshape(kh * kw * c, cout).contiguous()  # rows in (offset, channel) order
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype, device=x.device)
    noise = out_noise > 0
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator, device=generator.device if generator
                             is not None else x.device)) if noise else 0
    adc = out_half is not None
    clip = out_bound is not None
    lo, hi = (-float(out_half), float(out_half)) if adc else ((-out_bound, out_bound) if clip else (0.0, 0.0))
    _dac_conv_kernel[(triton.cdiv(m, BLOCK_M),)](
        xl, inv, s_flat, w_mat, out, seed,
        m, h, w, c, ho, wo, cout, stride[0], stride[1], padding[0], padding[1],
        float(in_half), in_step / out_step, out_noise / out_step, lo, hi, out_step * digital_scale,
        KH=kh, KW=kw, BLOCK_M=BLOCK_M, BLOCK_C=_pow2_at_least_16(c), BLOCK_N=_pow2_at_least_16(cout),
        CLAMP_IN=clamp_in, NOISE=noise, ADC=adc, CLIP=clip, PRECISION=INPUT_PRECISION, num_warps=NUM_WARPS)
    return out.permute(0, 3, 1, 2)
