"""The periphery of an analog crossbar: input DAC, output noise, ADC and digital rescaling.

A crossbar computes ``y = G x`` in analog, but its inputs arrive as digital numbers and its
outputs leave as digital numbers. Per analog layer and per matrix-vector multiplication (MVM),
the hardware (and this model) does, in order:

1. **Input scaling** (aihwkit's "noise management"): ``"abs_max"`` divides each input vector by
   its own largest magnitude ``s = max_i |x_i|`` (``s = 1`` for an all-zero vector), so the
   DAC's full range is used; ``"none"`` sends the inputs as they are (``s = 1``), i.e. a fixed
   input range ``[-inp_bound, inp_bound]`` in activation units.
2. **DAC**: ``n_in``-bit signed converter: ``2^n_in - 1`` levels spaced
   ``2 inp_bound / (2^n_in - 2)`` apart over ``[-inp_bound, inp_bound]`` (round to nearest,
   then clip). ``n_in = 8`` and ``inp_bound = 1`` give aihwkit's ``inp_res = 1/254``.
3. **Crossbar product** with the chip's normalised weights ``(G+ - G-) / G_max`` (drifted and
   noisy as read at time ``t``; the largest programmed weight of the layer maps to 1).
4. **Output noise**: additive Gaussian noise of std ``out_noise`` in these normalised output
   units, fresh for every output of every MVM.
5. **ADC**: ``n_out``-bit converter over ``[-out_bound, out_bound]``: round to the grid
   ``2 out_bound / (2^n_out - 2)``, then clip (``out_bound = 10``, 8 bits: aihwkit's
   ``out_res = 1/254``, ``out_bound = 10``).
6. **Digital rescaling**: times the input scale ``s``, times ``W_max`` (undoing the
   normalisation), times the layer's GDC factor ``alpha(t)``, all after the ADC.

GDC's readout (the mean absolute crossbar output for all one-hot inputs) is either ``"exact"``
(computed from the conductances, as without a periphery) or ``"periphery"`` (the one-hot inputs
go through steps 1-5 like any input, as aihwkit's ``GlobalDriftCompensation`` reads them; its
readout is floored at 1e-4 as aihwkit's).

Convolutions stay convolutions. The abs-max of every im2col column (one output pixel's input
patch) is a max-pool of the channel-wise abs-max, and noise, ADC, clipping and rescaling act
element-wise on the conv output. Only the DAC needs more: one input value belongs to up to
``k*k`` patches with different scales, so it is quantised once per kernel offset (``k*k``
strided views of the padded input, written side by side into a channels-last patch matrix, then
one matrix product: the same multiply-adds as the original conv). This module is the
PyTorch path, in chunks of a few images so the patch matrix and the outputs stay in the cache
through the DAC, the product and the output stage: the complete, readable reference that the book
teaches. Faster backends of the same computation (a compiled one-pass conv on x86-64 CPUs, a fused
Triton kernel on GPUs) are chosen in :mod:`aimc_lib.backends`. With an ideal DAC (``n_in=None``)
or a fixed input range (``noise_management="none"``: every input is quantised once, whatever its
patch) nothing is unfolded.

**Output noise** is drawn from the simulation's counter-based stream (:mod:`aimc_lib.rng`): the
noise of an output is named by the layer's :class:`~aimc_lib.rng.Stream` (chip seed, read, layer),
its image's index ``row0 + n`` among the images the read has computed, and its position within
the image (channels-last order: ``(h * Wo + w) * C_out + c`` for a conv, the output's index for a
linear layer). So every backend draws the same noise, however the images are batched.

Where this differs from aihwkit's torch tile forward (``simulator/tiles/analog_mvm.py`` with
``simulator/parameters/io.py``), for the preset :meth:`~aimc_lib.converters.Periphery.aihwkit_like`:

* weights are normalised per layer (one ``W_max`` per crossbar, aihwkit's
  ``weight_scaling_omega = 1`` without column-wise scaling); a layer is one crossbar of at most
  505 rows here (aihwkit splits inputs above ``max_input_size = 512``; none of ResNet-32's layers
  is that large);
* the FC bias is a crossbar row driven by a constant input 1 (aihwkit's ``digital_bias = False``);
  with abs-max scaling that 1 is part of the input vector;
* weight read noise comes from the PCM model (1/f noise per read), not from ``w_noise``; no input
  noise, no asymmetries, no IR drop, no bound management (``bound_management = NONE``), no
  stochastic rounding: the choices of aihwkit's tutorial preset;
* random draws: output noise from the counter-based stream of :mod:`aimc_lib.rng`, drawn on the
  activations' device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .converters import (GDC_READOUT_FLOOR, Periphery, conv_output_hw, converter_levels, dac_levels_, half_levels,
                         in_step, out_step, quantize)
from .rng import Stream

__all__ = ["Periphery", "quantize", "converter_levels", "conv_output_hw", "analog_matmul", "analog_conv2d",
           "one_hot_readout", "output_noise", "matmul_product", "patch_abs_max", "PATCH_CHUNK_BYTES"]


def output_noise(stream: Stream, shape: tuple, row0: int = 0, device=None) -> torch.Tensor:
    """Standard normals for an output of ``shape`` ``[images, ...]``: image ``n`` is row ``row0 + n`` of
    ``stream``, its values in row-major order of the remaining dimensions (pass channels-last shapes)."""
    rows = shape[0]
    cols = 1
    for d in shape[1:]:
        cols *= d
    return stream.normal(rows, cols, row0, device).view(shape)


def _output_stage_(y: torch.Tensor, mult, s: torch.Tensor, per: Periphery, noise: Stream | None, row0: int,
                   digital_scale: float) -> torch.Tensor:
    """From the raw product to the digital result, in place on ``y`` (``[images, ..., C_out]``, the
    channels-last order of the noise): ``y * mult`` is the crossbar's output in normalised units
    (``mult``: 1/s, or the DAC step); then output noise, the ADC (round to its levels, clip) and
    the digital rescaling by ``s * digital_scale`` (``s`` broadcasts against ``y``)."""
    step = out_step(per)
    y.mul_(mult / step)
    if per.out_noise > 0:
        if noise is None:
            raise ValueError("a periphery with output noise needs a noise stream (aimc_lib.rng.Stream)")
        y.add_(output_noise(noise, tuple(y.shape), row0, y.device).mul_(per.out_noise / step))
    if per.out_bits is not None:
        y.round_().clamp_(-half_levels(per.out_bits), half_levels(per.out_bits))
    elif per.out_bound is not None:
        y.clamp_(-per.out_bound, per.out_bound)
    return y.mul_(s * (step * digital_scale))


def _nonzero_scale(s: torch.Tensor) -> torch.Tensor:
    return torch.where(s > 0, s, torch.ones_like(s))  # an all-zero input vector: scale 1 (as aihwkit)


def analog_matmul(x: torch.Tensor, w_norm: torch.Tensor, per: Periphery, noise: Stream | None = None,
                  digital_scale: float = 1.0, row0: int = 0) -> torch.Tensor:
    """``x @ w_norm.T`` for input vectors ``x`` ``[batch, ..., in]`` through the periphery (PyTorch reference).

    ``w_norm`` ``[out, in]``: the crossbar's normalised weights. Returns the digital result:
    the ADC's output times the input scale times ``digital_scale`` (e.g. ``W_max * alpha``).
    ``noise``: the stream of the output noise; ``x[b]`` is its row ``row0 + b``, the outputs of
    ``x[b]`` in row-major order its values (so ``[images, pixels, in]`` patches draw a conv's noise).
    """
    y, mult, s = matmul_product(x, w_norm, per)
    return _output_stage_(y, mult, s, per, noise, row0, digital_scale)


def matmul_product(x: torch.Tensor, w_norm: torch.Tensor, per: Periphery) -> tuple[torch.Tensor, object, torch.Tensor]:
    """Steps 1-3 of :func:`analog_matmul`: input scaling, DAC and the crossbar's product. Returns the raw
    product ``y``, its factor ``mult`` into normalised output units (``1/s``, or the DAC step) and the
    input scales ``s`` (``[batch, ..., 1]``), for an output stage."""
    if x.dim() < 2:
        raise ValueError(f"analog_matmul: x must be [batch, ..., in], got shape {tuple(x.shape)}")
    if per.noise_management == "abs_max":
        s = _nonzero_scale(x.abs().amax(dim=-1, keepdim=True))
    else:
        s = torch.ones_like(x[..., :1])
    if per.inp_bits is None:
        return x @ w_norm.T, 1.0 / s, s
    step = in_step(per)
    return dac_levels_(x / (s * step), per) @ w_norm.T, step, s


def _window_max(m: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Max of ``m >= 0`` ``[N, H, W]`` over every conv window (zero padding), as separable shifted maxima."""
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    p = F.pad(m, (pw, pw, ph, ph))
    w_out, h_out = p.shape[2] - kw + 1, p.shape[1] - kh + 1
    r = p[:, :, :w_out]
    for j in range(1, kw):
        r = torch.maximum(r, p[:, :, j:j + w_out])
    c = r[:, :h_out]
    for i in range(1, kh):
        c = torch.maximum(c, r[:, i:i + h_out])
    return c[:, ::sh, ::sw]


def patch_abs_max(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Abs-max of every im2col column: a max-pool of the channel-wise abs-max. ``[N, Ho, Wo]``."""
    return _window_max(x.abs().amax(dim=1), conv)


#: Bytes of the patch matrix per chunk on a CPU, small enough to stay in the caches between building
#: the DAC levels, the matrix product and the output stage (on a GPU the whole batch is one chunk).
PATCH_CHUNK_BYTES = 2 << 20


def _dac_conv(x: torch.Tensor, s: torch.Tensor, w4d: torch.Tensor, conv: nn.Conv2d, per: Periphery,
              noise: Stream | None, row0: int, digital_scale: float) -> torch.Tensor:
    """The conv through an abs-max DAC, channels-last throughout; ``s`` ``[N, Ho, Wo]`` the patch scales.

    Chunk by chunk of images: each kernel offset's strided view of the padded input is scaled by its
    patches' ``1 / (s * step)`` into one block of the patch matrix and rounded to the DAC's levels; one
    matrix product (the same multiply-adds as the conv) gives the crossbar outputs of every patch; the
    output stage (noise, ADC, rescaling) runs on them while they are in the cache.
    """
    step = in_step(per)
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    n, c = x.shape[:2]
    ho, wo = s.shape[-2:]
    s_rows = s.reshape(n, ho, wo, 1)
    inv = (1.0 / (s * step)).reshape(n, ho, wo, 1)
    k, cout = kh * kw * c, w4d.shape[0]
    w_mat = w4d.permute(2, 3, 1, 0).reshape(k, cout)  # rows in the patch matrix's (offset, channel) order
    per_image = ho * wo * k * x.element_size()
    chunk = n if x.is_cuda else max(1, min(n, PATCH_CHUNK_BYTES // per_image))
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype, device=x.device)
    cols = torch.empty((chunk, ho, wo, kh * kw, c), dtype=x.dtype, device=x.device)
    xp = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # [N, H, W, C]
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    for b0 in range(0, n, chunk):
        b1 = min(n, b0 + chunk)
        cb = cols[: b1 - b0]
        for o, (i, j) in enumerate(offsets):
            view = xp[b0:b1, i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw, :]
            torch.mul(view, inv[b0:b1], out=cb[:, :, :, o, :])
        cb.round_()
        if per.inp_bound < 1.0:  # |x| / s <= 1: only an input range below 1 can clip
            cb.clamp_(-half_levels(per.inp_bits), half_levels(per.inp_bits))
        rows = out[b0:b1]
        torch.mm(cb.view(-1, k), w_mat, out=rows.view(-1, cout))
        _output_stage_(rows, step, s_rows[b0:b1], per, noise, row0 + b0, digital_scale)
    return out.permute(0, 3, 1, 2)  # NCHW shape, channels-last memory


def check_plain_conv(conv: nn.Conv2d) -> None:
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError("analog_conv2d supports plain convolutions (groups=1, dilation=1, zero padding)")


def analog_conv2d(x: torch.Tensor, w4d_norm: torch.Tensor, conv: nn.Conv2d, per: Periphery,
                  noise: Stream | None = None, digital_scale: float = 1.0, row0: int = 0) -> torch.Tensor:
    """``conv(x)`` with normalised weights ``w4d_norm`` through the periphery (PyTorch reference).

    The same as :func:`analog_matmul` on every im2col column (one MVM per output pixel), without
    unfolding when the DAC is ideal. Returns the digital result (ADC output times input scale times
    ``digital_scale``), ``[N, C_out, Ho, Wo]`` in channels-last memory. Image ``n`` of ``x`` is row
    ``row0 + n`` of the noise stream.
    """
    check_plain_conv(conv)
    if per.noise_management == "abs_max":
        s = _nonzero_scale(patch_abs_max(x, conv))
    else:
        hw = conv_output_hw(*x.shape[2:], conv.kernel_size, conv.stride, conv.padding)
        s = torch.ones((x.shape[0],) + hw, dtype=x.dtype, device=x.device)
    if per.inp_bits is not None and per.noise_management == "abs_max":
        return _dac_conv(x, s, w4d_norm, conv, per, noise, row0, digital_scale)
    if per.inp_bits is None:
        y_raw, mult = F.conv2d(x, w4d_norm, None, conv.stride, conv.padding), 1.0 / s.unsqueeze(-1)
    else:  # one input range for every patch: quantise each input once
        y_raw = F.conv2d(quantize(x.clone(), per.inp_bits, per.inp_bound), w4d_norm, None, conv.stride, conv.padding)
        mult = 1.0
    y = y_raw.permute(0, 2, 3, 1).contiguous()  # channels-last rows: the noise's order
    _output_stage_(y, mult, s.unsqueeze(-1), per, noise, row0, digital_scale)
    return y.permute(0, 3, 1, 2)


KNOWN_INPUT_BLOCK = 16


def walsh_patterns(n: int) -> torch.Tensor:
    """``n`` +-1 vectors of length ``n``: the Walsh-Hadamard matrix of the next power of two, cut to
    ``n`` rows and columns (row ``j``, column ``i``: ``(-1)^popcount(i & j)``; row 0 is all ones)."""
    m = 1 << max(0, (n - 1).bit_length())
    idx = torch.arange(m)
    bits = idx[:, None] & idx[None, :]
    parity = torch.zeros(m, m, dtype=torch.long)
    while bool(bits.any()):
        parity ^= bits & 1
        bits = bits >> 1
    return (1 - 2 * parity[:n, :n]).to(torch.float64)


def known_inputs(n: int, block: int = KNOWN_INPUT_BLOCK) -> torch.Tensor:
    """GDC's known calibration inputs for a crossbar of ``n`` rows: ``n`` vectors, each the Walsh
    pattern (:func:`walsh_patterns`) of one block of ``block`` rows and zero elsewhere (a last,
    shorter block gets its own). A pattern over every row would make each output a sum of all a
    column's weights, beyond the ADC's range; 16 rows keep it inside (``scripts/gdc_readout_study.py``)."""
    x = torch.zeros(n, n, dtype=torch.float64)
    for start in range(0, n, block):
        m = min(block, n - start)
        x[start:start + m, start:start + m] = walsh_patterns(m)
    return x


def known_input_outputs(w_norm: torch.Tensor, per: Periphery, noise: Stream | None = None) -> torch.Tensor:
    """GDC's readout with known inputs: the digital outputs ``[n_in, out]`` of :func:`known_inputs`
    through the periphery, ``per.gdc_reads`` reads averaged (read ``j`` draws rows
    ``j * in .. (j + 1) * in - 1`` of ``noise``).

    Each pattern's largest magnitude is 1, so input scaling leaves it as it is; the DAC turns it into
    its levels as in :func:`matmul_product`. The products are summed in float64, which is exact for
    these few terms, so every device and backend gets the same outputs.
    """
    n_in = w_norm.shape[1]
    x = known_inputs(n_in).to(w_norm.device)
    mult = 1.0
    if per.inp_bits is not None:
        mult = in_step(per)
        x = dac_levels_(x / mult, per)
    product = (x @ w_norm.to(torch.float64).T).to(w_norm.dtype)
    out = torch.zeros_like(product)
    for j in range(per.gdc_reads):
        out += _output_stage_(product.clone(), mult, torch.ones(n_in, 1, dtype=w_norm.dtype, device=w_norm.device),
                              per, noise, j * n_in, 1.0)
    return out / per.gdc_reads


def known_input_alpha(reference: torch.Tensor, now: torch.Tensor) -> float:
    """GDC's factor from known inputs: ``sum(y_ref^2) / sum(y_ref * y_t)``, the inverse of the
    least-squares slope of the outputs at t on those at t_ref (noise at t does not bias it);
    1 if the outputs at t carry nothing of the reference."""
    num, den = float((reference * reference).sum()), float((reference * now).sum())
    return num / den if den > 0 else 1.0


def one_hot_readout(w_norm: torch.Tensor, per: Periphery, noise: Stream | None = None) -> float:
    """GDC readout through the periphery: mean absolute output over all one-hot inputs (floored at 1e-4),
    the outputs of ``per.gdc_reads`` reads averaged first.

    Read ``j`` of the one-hot inputs draws rows ``j * in .. (j + 1) * in - 1`` of ``noise``. Every
    backend computes the same numbers here (a one-hot product is exact), so the reference is used.

    The absolute value makes this estimate of ``mean |w|`` too large by about the output noise's share
    once drift has shrunk the weights toward it (GDC's alpha then comes out too small); averaging
    reads shrinks that bias (measured: ``scripts/gdc_readout_study.py``).
    """
    n_in = w_norm.shape[1]
    eye = torch.eye(n_in, dtype=w_norm.dtype, device=w_norm.device)
    out = analog_matmul(eye, w_norm, per, noise)
    for j in range(1, per.gdc_reads):
        out += analog_matmul(eye, w_norm, per, noise, row0=j * n_in)
    if per.gdc_reads > 1:
        out /= per.gdc_reads
    return max(float(out.abs().mean()), GDC_READOUT_FLOOR)


def gdc_readout(w_norm: torch.Tensor, per: Periphery, noise: Stream | None = None) -> float | torch.Tensor:
    """GDC's readout of one crossbar through the periphery, as ``per.gdc_readout`` says: the mean
    absolute output over the one-hot inputs (:func:`one_hot_readout`, a number) or the outputs of
    the known inputs (:func:`known_input_outputs`, a tensor). :func:`gdc_alpha` compares two."""
    if per.gdc_readout == "known-inputs":
        return known_input_outputs(w_norm, per, noise)
    return one_hot_readout(w_norm, per, noise)


def gdc_alpha(reference: float | torch.Tensor, now: float | torch.Tensor) -> float:
    """GDC's factor from two readouts of :func:`gdc_readout` (at t_ref and at t): their ratio for the
    one-hot readout, the least-squares gain (:func:`known_input_alpha`) for the known inputs."""
    if isinstance(reference, torch.Tensor):
        return known_input_alpha(reference, now)
    return reference / now
