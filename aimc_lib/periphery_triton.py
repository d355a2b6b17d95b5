"""The abs-max DAC convolution of :mod:`aimc_lib.periphery` as one fused GPU kernel (Triton).

Same arithmetic as the PyTorch path (``periphery.patch_abs_max`` then ``periphery._dac_conv``),
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

Output noise comes from the simulation's counter-based stream (:mod:`aimc_lib.rng`: Philox4x32-10,
Triton's ``tl.philox``, with the reference's Box-Muller in float32): the output of image ``n`` at
pixel ``p`` and channel ``c`` is value ``p * C_out + c`` of row ``row0 + n`` of the layer's stream,
so the kernel draws the same noise as the PyTorch path, up to the float32 rounding of log, sin
and cos. Without noise the two paths agree up to the order of the float additions and the
weights' last two bits (``INPUT_PRECISION``; tested output by output against that bound); an
output on an ADC rounding boundary can land one level apart.

Used for CUDA tensors when Triton is installed (it ships with PyTorch on Linux); the tests also
run it on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import torch

from .converters import conv_output_hw, half_levels, in_step, out_step, output_stage_args
from .rng import TWO_PI_F32

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
    TWO_PI = tl.constexpr(TWO_PI_F32)
    _ROUND = tl.constexpr(12582912.0)  # 1.5 * 2^23: (v + R) - R rounds a float32 |v| < 2^22 to an integer, ties to even

    @triton.jit
    def _stream_normal(seed_lo, seed_hi, c2, c3, row, j):
        """Value ``j`` of row ``row`` of the stream (seed, c2, c3): :func:`aimc_lib.rng.normal`."""
        zero = (j * 0).to(tl.uint32)
        x0, x1, x2, x3 = tl.philox_impl((j // 4).to(tl.uint32), row.to(tl.uint32) + zero, zero + c2, zero + c3,
                                        seed_lo, seed_hi, 10)
        lane = j % 4
        a = tl.where(lane < 2, x0, x2)
        b = tl.where(lane < 2, x1, x3)
        u1 = ((a >> 8) + 1).to(tl.float32) * 5.9604644775390625e-08  # 2^-24
        u2 = (b >> 8).to(tl.float32) * 5.9604644775390625e-08
        r = tl.sqrt(-2.0 * tl.log(u1))
        theta = u2 * TWO_PI
        return tl.where(lane % 2 == 0, r * tl.cos(theta), r * tl.sin(theta))

    @triton.jit
    def _stream_kernel(out_ptr, words_ptr, seed_lo, seed_hi, c2, c3, row0, ROWS, COLS, BLOCK: tl.constexpr):
        """The stream's normals ``[ROWS, COLS]`` and the raw words of value 0 of each block (for tests)."""
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = i < ROWS * COLS
        row = i // COLS
        j = i % COLS
        k0 = seed_lo.to(tl.uint32)
        k1 = seed_hi.to(tl.uint32)
        tl.store(out_ptr + i, _stream_normal(k0, k1, c2.to(tl.uint32), c3.to(tl.uint32), row0 + row, j), mask=ok)
        zero = (j * 0).to(tl.uint32)
        x0, x1, x2, x3 = tl.philox_impl((j // 4).to(tl.uint32), (row0 + row).to(tl.uint32) + zero,
                                        zero + c2.to(tl.uint32), zero + c3.to(tl.uint32), k0, k1, 10)
        lane = j % 4
        word = tl.where(lane == 0, x0, tl.where(lane == 1, x1, tl.where(lane == 2, x2, x3)))
        tl.store(words_ptr + i, word.to(tl.int64), mask=ok)

    @triton.jit(do_not_specialize=["seed_lo", "seed_hi", "c2", "c3", "row0"])
    def _dac_conv_kernel(x_ptr, w_ptr, w_lo_ptr, out_ptr, seed_lo, seed_hi, c2, c3, row0,
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
        if NOISE:  # value (p * COUT + c) of row (row0 + n) of the layer's stream
            j = (rows % (HO * WO))[:, None] * COUT + cols[None, :]
            k0 = seed_lo.to(tl.uint32)
            k1 = seed_hi.to(tl.uint32)
            y += _stream_normal(k0, k1, c2.to(tl.uint32), c3.to(tl.uint32), (row0 + n)[:, None], j) * noise_sd
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


def stream(seed: int, words: tuple[int, int], rows: int, cols: int, row0: int = 0,
           device="cuda") -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's draws of the stream, to check them against :func:`aimc_lib.rng.normal`: the
    normals ``[rows, cols]`` and the 32-bit word each value comes from (lane ``j % 4`` of its block)."""
    out = torch.empty((rows, cols), dtype=torch.float32, device=device)
    raw = torch.empty((rows, cols), dtype=torch.int64, device=device)
    block = 256
    _stream_kernel[(triton.cdiv(rows * cols, block),)](out, raw, seed & 0xFFFFFFFF, seed >> 32, words[0], words[1],
                                                       row0, rows, cols, BLOCK=block)
    return out, raw


def supports(x: torch.Tensor, w4d: torch.Tensor, per) -> bool:
    """Whether the kernel can compute this layer (else the backend uses the PyTorch path for it)."""
    return (available and x.is_cuda and x.dtype == torch.float32
            and x.shape[1] <= MAX_IN_CHANNELS  # one program holds all channels
            and w4d.shape[0] <= MAX_OUT_CHANNELS
            and per.inp_bits <= MAX_INPUT_BITS  # DAC levels exact on the tensor cores
            and (per.out_bits or 0) <= 22)  # its float32 rounding is exact there


def dac_conv(x: torch.Tensor, w4d: torch.Tensor, stride: tuple, padding: tuple, per, digital_scale: float,
             noise=None, row0: int = 0) -> torch.Tensor:
    """``conv(x)`` through ``per`` (a :class:`~aimc_lib.converters.Periphery` with a DAC and abs-max
    noise management): ``x`` ``[N, C, H, W]`` (any memory format), ``w4d`` ``[Cout, C, kh, kw]``
    normalised weights, ``noise`` the layer's :class:`~aimc_lib.rng.Stream` (image ``n`` is its row
    ``row0 + n``). Returns ``[N, Cout, Ho, Wo]`` in channels-last memory, as the PyTorch path
    (``periphery._dac_conv`` on ``periphery.patch_abs_max``).
    """
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
        raise ValueError("dac_conv: batch too large for int32 offsets; evaluate in smaller batches")
    xl = x.permute(0, 2, 3, 1).contiguous()  # NHWC (free for channels-last input)
    w_mat = w4d.permute(2, 3, 1, 0).reshape(kh * kw * c, cout).contiguous()  # rows in (offset, channel) order
    w_mat, w_lo = split_tf32(w_mat) if INPUT_PRECISION == "tf32x2" else (w_mat, w_mat)
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype, device=x.device)
    in_half = half_levels(per.inp_bits)
    step_in, step_out = in_step(per), out_step(per)
    noise_sd, adc, clip = output_stage_args(per)
    if noise_sd > 0 and noise is None:
        raise ValueError("a periphery with output noise needs a noise stream (aimc_lib.rng.Stream)")
    seed, (c2, c3) = (noise.seed, noise.words) if noise_sd > 0 else (0, (0, 0))
    lo, hi = clip if clip is not None else (0.0, 0.0)
    _dac_conv_kernel[(triton.cdiv(m, BLOCK_M),)](
        xl, w_mat, w_lo, out, seed & 0xFFFFFFFF, seed >> 32, c2, c3, row0,
        m, h, w, c, ho, wo, cout, stride[0], stride[1], padding[0], padding[1],
        step_in, float(in_half), step_in / step_out, noise_sd, float(lo), float(hi), step_out * digital_scale,
        KH=kh, KW=kw, BLOCK_M=BLOCK_M, BLOCK_C=_pow2_at_least_16(c), BLOCK_N=_pow2_at_least_16(cout),
        CLAMP_IN=per.inp_bound < 1.0, NOISE=noise_sd > 0, ADC=adc, CLIP=clip is not None,
        PRECISION=INPUT_PRECISION, num_warps=NUM_WARPS)
    return out.permute(0, 3, 1, 2)
