"""The abs-max DAC convolution of :mod:`aimc_lib.periphery` as one fused GPU kernel (Triton).

Same arithmetic as the PyTorch path (``periphery._patch_abs_max`` then ``periphery._dac_conv``),
without its patch matrix and without a pass of its own for the scales: each program takes
``BLOCK_M`` output pixels (rows of the channels-last output) and all output channels. It first
reads every input pixel its patches need to find each patch's abs-max ``s`` (the DAC's input
range; 1 for an all-zero patch), then, kernel offset by kernel offset, reads them again (from the
cache), scales them by ``1 / (s * step)``, rounds them to the DAC's levels (round half to even,
as ``torch.round``) and accumulates their product with the weights on the tensor cores (an
implicit GEMM: the same multiply-adds as the convolution, at float32 accuracy: see
``INPUT_PRECISION``). The output stage runs on the accumulator before anything is written:
gain into ADC units, output noise, ADC (round, clip) and the digital rescaling by
``s * step_out * digital_scale``.

Output noise comes from Triton's counter-based generator (Philox), keyed by one seed drawn from
the layer's ``torch.Generator`` per call and by each output's position in the batch, so a given
generator state gives the same noise on every run (not the same draws as the PyTorch path: the
same distribution). The seed stays on the GPU (the kernel reads it), so a call never waits for
the GPU. Without noise the two paths agree up to the order of the float additions and the
weights' last two bits (``INPUT_PRECISION``; tested output by output against that bound); an
output on an ADC rounding boundary can land one level apart.

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
#: Warps per program (on an H200, 8 warps ran the test set 3 % faster than 4; 128 rows were slower).
NUM_WARPS = 8
#: How the product runs on the tensor cores, at float32 accuracy. With "tf32x2" the DAC levels,
#: integers of at most 11 bits, are exact in TF32, so only the weights need splitting; they are
#: split once per call into a TF32 high part (their top 11 significant bits, exact) and the rest,
#: and each kernel offset takes two TF32 products (levels x high + levels x rest, the weights to
#: about 22 bits, the sums in float32). "tf32x3" is Triton's own three-pass split of both operands
#: (the levels' low part is zero), a third more tensor-core work; on an H200 the read chip's
#: test-set inference took 191 ms with it against 148 ms with "tf32x2" (FP32 inference 111 ms).
#: "ieee" (plain float32 FMAs) did not finish compiling the 56-channel layers within 100 s there.
INPUT_PRECISION = "tf32x2"
#: DAC resolutions whose levels (at most ``2**(bits - 1) - 1``) are exact in TF32 (11 significant bits).
MAX_INPUT_BITS = 12
#: Channels in and out that one program can hold (all of them, in registers).
MAX_IN_CHANNELS, MAX_OUT_CHANNELS = 64, 128
available = triton is not None

if available:
    _ROUND = tl.constexpr(12582912.0)  # 1.5 * 2^23: (v + R) - R rounds a float32 |v| < 2^22 to an integer, ties to even

    @triton.jit
    def _dac_conv_kernel(x_ptr, w_ptr, w_lo_ptr, out_ptr, seed_ptr,
                         M, H, W, C, HO, WO, COUT, SH, SW, PH, PW,
                         in_step, in_half, gain, noise_sd, out_lo, out_hi, rescale,
                         KH: tl.constexpr, KW: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
                         BLOCK_N: tl.constexpr, CLAMP_IN: tl.constexpr, NOISE: tl.constexpr,
                         ADC: tl.constexpr, CLIP: tl.constexpr, PRECISION: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < M
        n = rows // (HO * WO)
        ho = (rows // WO) % HO
        wo = rows % WO
        cs = tl.arange(0, BLOCK_C)
        cols = tl.arange(0, BLOCK_N)
        c_ok = cs < C
        # pass 1: each patch's abs-max (zero padding and masked rows count as 0)
        s = tl.zeros((BLOCK_M,), dtype=tl.float32)
        for i in tl.static_range(KH):
            hi = ho * SH - PH + i
            for j in tl.static_range(KW):
                wi = wo * SW - PW + j
                ok = row_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
                pix = ((n * H + hi) * W + wi).to(tl.int64) * C
                a = tl.load(x_ptr + pix[:, None] + cs[None, :], mask=ok[:, None] & c_ok[None, :], other=0.0)
                s = tl.maximum(s, tl.max(tl.abs(a), axis=1))
        s = tl.where(s > 0, s, 1.0)  # an all-zero patch: scale 1 (as aihwkit)
        inv = tl.math.div_rn(1.0, s * in_step)  # as PyTorch: 1 / (s * step), correctly rounded
        # pass 2: DAC levels times weights, one kernel offset at a time
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
                w_offsets = krow[:, None] * COUT + cols[None, :]
                w_ok = c_ok[:, None] & (cols < COUT)[None, :]
                if PRECISION == "tf32x2":  # the weights' high TF32 part, then the rest
                    acc += tl.dot(a, tl.load(w_ptr + w_offsets, mask=w_ok, other=0.0), input_precision="tf32")
                    acc += tl.dot(a, tl.load(w_lo_ptr + w_offsets, mask=w_ok, other=0.0), input_precision="tf32")
                else:
                    acc += tl.dot(a, tl.load(w_ptr + w_offsets, mask=w_ok, other=0.0), input_precision=PRECISION)
        y = acc * gain  # DAC levels x normalised weights -> ADC units
        offsets = rows[:, None] * COUT + cols[None, :]
        if NOISE:
            y += tl.randn(tl.load(seed_ptr), offsets) * noise_sd
        if ADC:
            y = (y + _ROUND) - _ROUND
        if CLIP:
            y = tl.minimum(tl.maximum(y, out_lo), out_hi)
        y = y * (s * rescale)[:, None]
        tl.store(out_ptr + offsets, y, mask=row_ok[:, None] & (cols < COUT)[None, :])


def _pow2_at_least_16(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


def split_tf32(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` (float32) as ``hi + lo``: ``hi`` its top 11 significant bits (exact in TF32), ``lo`` the rest (exact)."""
    hi = (w.view(torch.int32) & -8192).view(torch.float32)  # clear the 13 low mantissa bits
    return hi, w - hi


def dac_conv(x: torch.Tensor, w4d: torch.Tensor, stride: tuple, padding: tuple, per, digital_scale: float,
             generator: torch.Generator | None) -> torch.Tensor:
    """``conv(x)`` through ``per`` (a :class:`~aimc_lib.periphery.Periphery` with a DAC and abs-max
    noise management): ``x`` ``[N, C, H, W]`` (any memory format), ``w4d`` ``[Cout, C, kh, kw]``
    normalised weights. Returns ``[N, Cout, Ho, Wo]`` in channels-last memory, as the PyTorch path
    (``periphery._dac_conv`` on ``periphery._patch_abs_max``).
    """
    from .periphery import _c_output_stage, _half_levels, _out_step, conv_output_hw
    n, c, h, w = x.shape
    cout, _, kh, kw = w4d.shape
    if c > MAX_IN_CHANNELS or cout > MAX_OUT_CHANNELS:
        raise ValueError(f"dac_conv: one program holds all channels (at most {MAX_IN_CHANNELS} in, "
                         f"{MAX_OUT_CHANNELS} out); got {c} in, {cout} out")
    if per.inp_bits > MAX_INPUT_BITS:
        raise ValueError(f"dac_conv: DAC levels of {per.inp_bits} bits are not exact in TF32 "
                         f"(at most {MAX_INPUT_BITS} bits)")
    ho, wo = conv_output_hw(h, w, (kh, kw), stride, padding)
    m = n * ho * wo
    if m * cout >= 2 ** 31:
        raise ValueError("dac_conv: batch too large for int32 noise offsets; evaluate in smaller batches")
    xl = x.permute(0, 2, 3, 1).contiguous()  # NHWC (free for channels-last input)
    w_mat = w4d.permute(2, 3, 1, 0).reshape(kh * kw * c, cout).contiguous()  # rows in (offset, channel) order
    w_mat, w_lo = split_tf32(w_mat) if INPUT_PRECISION == "tf32x2" else (w_mat, w_mat)
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype, device=x.device)
    in_half = _half_levels(per.inp_bits)
    in_step, out_step = per.inp_bound / in_half, _out_step(per)
    noise_sd, adc, clip = _c_output_stage(per)
    if noise_sd > 0:  # one seed per call, left on the device: drawing it does not wait for the GPU
        seed = torch.randint(0, 2 ** 31 - 1, (1,), generator=generator,
                             device=generator.device if generator is not None else x.device).to(x.device)
    else:
        seed = out  # never read
    lo, hi = clip if clip is not None else (0.0, 0.0)
    _dac_conv_kernel[(triton.cdiv(m, BLOCK_M),)](
        xl, w_mat, w_lo, out, seed,
        m, h, w, c, ho, wo, cout, stride[0], stride[1], padding[0], padding[1],
        in_step, float(in_half), in_step / out_step, noise_sd, float(lo), float(hi), out_step * digital_scale,
        KH=kh, KW=kw, BLOCK_M=BLOCK_M, BLOCK_C=_pow2_at_least_16(c), BLOCK_N=_pow2_at_least_16(cout),
        CLAMP_IN=per.inp_bound < 1.0, NOISE=noise_sd > 0, ADC=adc, CLIP=clip is not None,
        PRECISION=INPUT_PRECISION, num_warps=NUM_WARPS)
    return out.permute(0, 3, 1, 2)
