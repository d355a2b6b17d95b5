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
one matrix product: the same multiply-adds as the original conv). That is the PyTorch path, in
chunks of a few images so the patch matrix and the outputs stay in the cache through the DAC, the
product and the output stage. Where a C compiler is available (:mod:`aimc_lib.periphery_cpu`), an
x86-64 CPU with AVX2 runs the whole DAC conv as one compiled pass without a patch matrix (a few
output pixels at a time: their DAC levels, the product in registers, the output stage); other CPUs
run the abs-max, the DAC and the output stage as compiled loops around PyTorch's matrix product
(bit-identical to the PyTorch path without noise). On a GPU one fused Triton kernel
(:mod:`aimc_lib.periphery_triton`) does the patch scales, the DAC, the product and the output
stage without a patch matrix. All draw their own noise (the same distribution, tested). With an ideal DAC
(``n_in=None``) or a fixed input range (``noise_management="none"``: every input is quantised
once, whatever its patch) nothing is unfolded.

Where this differs from aihwkit's torch tile forward (``simulator/tiles/analog_mvm.py`` with
``simulator/parameters/io.py``), for the preset :meth:`Periphery.aihwkit_like`:

* weights are normalised per layer (one ``W_max`` per crossbar, aihwkit's
  ``weight_scaling_omega = 1`` without column-wise scaling); a layer is one crossbar of at most
  505 rows here (aihwkit splits inputs above ``max_input_size = 512``; none of ResNet-32's layers
  is that large);
* the FC bias is a crossbar row driven by a constant input 1 (aihwkit's ``digital_bias = False``);
  with abs-max scaling that 1 is part of the input vector;
* weight read noise comes from the PCM model (1/f noise per read), not from ``w_noise``; no input
  noise, no asymmetries, no IR drop, no bound management (``bound_management = NONE``), no
  stochastic rounding: the choices of the issue's preset;
* random draws: output noise comes from an explicit generator per read (see
  :class:`aimc_lib.mapping.AnalogChip`), drawn on the activations' device (in the fused GPU
  kernel: Philox draws keyed by a seed taken from that generator once per layer call; in the
  compiled CPU functions: xoshiro256** keyed the same way, Box-Muller in the one-pass conv, a
  ziggurat keyed also by each MVM's index in the patch-matrix loops).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

NOISE_MANAGEMENT = ("abs_max", "none")
GDC_READOUTS = ("exact", "periphery")
GDC_READOUT_FLOOR = 1e-4  # aihwkit's clamp(min=0.0001) of the readout


def _check_bits(name: str, bits) -> None:
    if bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise ValueError(f"Periphery.{name} must be an integer >= 2 (a signed converter with "
                         f"2^bits - 1 levels) or None for an ideal converter, got {bits!r}")
    if bits > 24:
        raise ValueError(f"Periphery.{name} = {bits} is beyond float32 resolution; use None for ideal")


def _check_positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Periphery.{name} must be a finite number > 0{' or None' if allow_none else ''}, "
                         f"got {value!r}")


@dataclass(frozen=True)
class Periphery:
    """Input DAC, output noise and ADC of every analog layer (module docstring for the order).

    Attributes:
        inp_bits: DAC resolution in bits (``None``: ideal, no quantisation or clipping of inputs).
        inp_bound: DAC range ``[-inp_bound, inp_bound]`` after input scaling.
        noise_management: ``"abs_max"`` (each input vector scaled by its abs-max) or ``"none"``.
        out_noise: std of the additive Gaussian output noise, in normalised output units
            (a weight of ``W_max`` times a full-scale input gives 1).
        out_bits: ADC resolution in bits (``None``: ideal, no quantisation).
        out_bound: ADC range ``[-out_bound, out_bound]`` in normalised output units (``None``:
            no clipping; required when ``out_bits`` is set).
        gdc_readout: ``"exact"`` or ``"periphery"`` (one-hot readout through the periphery).
    """

    inp_bits: int | None = None
    inp_bound: float = 1.0
    noise_management: str = "abs_max"
    out_noise: float = 0.0
    out_bits: int | None = None
    out_bound: float | None = None
    gdc_readout: str = "exact"

    def __post_init__(self):
        _check_bits("inp_bits", self.inp_bits)
        _check_bits("out_bits", self.out_bits)
        _check_positive("inp_bound", self.inp_bound)
        _check_positive("out_bound", self.out_bound, allow_none=True)
        if self.out_bits is not None and self.out_bound is None:
            raise ValueError("Periphery.out_bits needs out_bound (the ADC's range)")
        if (isinstance(self.out_noise, bool) or not isinstance(self.out_noise, (int, float))
                or not math.isfinite(self.out_noise) or self.out_noise < 0):
            raise ValueError(f"Periphery.out_noise must be a finite number >= 0, got {self.out_noise!r}")
        if self.noise_management not in NOISE_MANAGEMENT:
            raise ValueError(f"Periphery.noise_management must be one of {NOISE_MANAGEMENT}, "
                             f"got {self.noise_management!r}")
        if self.gdc_readout not in GDC_READOUTS:
            raise ValueError(f"Periphery.gdc_readout must be one of {GDC_READOUTS}, got {self.gdc_readout!r}")

    @classmethod
    def ideal(cls) -> "Periphery":
        """No converters, no output noise: a read is exactly the weights' product (today's chips)."""
        return cls()

    @classmethod
    def aihwkit_like(cls, gdc_readout: str = "periphery") -> "Periphery":
        """aihwkit's hardware-aware-training tutorial forward: 8-bit DAC and ADC, output noise 0.04.

        ``inp_res = out_res = 1/254``, ``inp_bound = 1``, ``out_bound = 10``, ``out_noise = 0.04``,
        ABS_MAX noise management, no bound management.
        """
        return cls(inp_bits=8, inp_bound=1.0, noise_management="abs_max", out_noise=0.04,
                   out_bits=8, out_bound=10.0, gdc_readout=gdc_readout)

    @property
    def is_ideal(self) -> bool:
        """True when every read is the plain product (the periphery changes nothing)."""
        return (self.inp_bits is None and self.out_bits is None and self.out_bound is None
                and self.out_noise == 0 and self.gdc_readout == "exact")

    def to_dict(self) -> dict:
        return asdict(self)


def quantize(x: torch.Tensor, bits: int, bound: float) -> torch.Tensor:
    """Round ``x`` to the ``2^bits - 1`` levels of a signed converter over ``[-bound, bound]``, then clip."""
    half = 2 ** (bits - 1) - 1  # levels on each side of 0; bound = half * step
    step = bound / half
    return (x / step).round_().clamp_(-half, half).mul_(step)


def converter_levels(bits: int, bound: float) -> torch.Tensor:
    """All output levels of :func:`quantize` (``2^bits - 1`` of them, ascending)."""
    half = 2 ** (bits - 1) - 1
    return torch.arange(-half, half + 1, dtype=torch.float32) * (bound / half)


def _half_levels(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def _out_step(per: Periphery) -> float:
    """The ADC's step in normalised output units (1 without an ADC)."""
    return per.out_bound / _half_levels(per.out_bits) if per.out_bits is not None else 1.0


def _output_stage_(y: torch.Tensor, mult, s: torch.Tensor, per: Periphery, generator: torch.Generator | None,
                   digital_scale: float, c_seed: int | None = None, row0: int = 0,
                   compiled: bool = True) -> torch.Tensor:
    """From the raw product to the digital result, in place on ``y``.

    ``y * mult`` is the crossbar's output in normalised units (``mult``: 1/s, or the DAC step);
    then output noise (drawn in ``y``'s memory order), the ADC (round to its levels, clip) and the
    digital rescaling by ``s * digital_scale``. Element-wise on the output: a conv output stays a
    conv output, channels-last rows stay rows (``s`` broadcasts: ``[B, 1]``, ``[N, 1, H, W]`` or
    ``[..., 1]``). On a CPU with the compiled functions (:mod:`aimc_lib.periphery_cpu`) one C loop
    does it, with noise keyed by ``c_seed`` (drawn from ``generator`` if None) and each row's index
    ``row0 + i`` in the batch.
    """
    step = _out_step(per)
    c_lib, rows = (_c_lib(y), _as_rows(y, s)) if compiled else (None, None)
    if c_lib is not None and rows is not None:  # the same arithmetic in one fused C loop (periphery_cpu)
        from . import periphery_cpu
        gain = (mult / step).reshape(-1).contiguous() if isinstance(mult, torch.Tensor) else mult / step
        seed = c_seed if c_seed is not None else _c_seed(per, generator)
        row_scale = (s * (step * digital_scale)).reshape(-1).contiguous()
        noise_sd, adc, clip = _c_output_stage(per)
        periphery_cpu.output_stage_(rows, gain, row_scale, noise_sd, seed, adc, clip, row0)
        return y
    y.mul_(mult / step)
    if per.out_noise > 0:
        y.add_(torch.empty_like(y).normal_(0.0, per.out_noise / step, generator=generator))
    if per.out_bits is not None:
        y.round_().clamp_(-_half_levels(per.out_bits), _half_levels(per.out_bits))
    elif per.out_bound is not None:
        y.clamp_(-per.out_bound, per.out_bound)
    return y.mul_(s * (step * digital_scale))


def _c_output_stage(per: Periphery) -> tuple:
    """The compiled output stage's converter arguments in ADC steps: (noise std, adc, clip range or None)."""
    half = _half_levels(per.out_bits) if per.out_bits is not None else None
    clip = (-half, half) if half is not None else ((-per.out_bound, per.out_bound) if per.out_bound else None)
    return per.out_noise / _out_step(per), half is not None, clip


def _c_seed(per: Periphery, generator: torch.Generator | None) -> int:
    """One 64-bit seed for the C output stage's noise, from ``generator`` (0 without noise: no draw)."""
    return int(torch.randint(0, 2 ** 63 - 1, (1,), generator=generator)) if per.out_noise > 0 else 0


#: Use the compiled paths (the fused Triton kernel on a GPU, the C functions on a CPU) where available;
#: False forces PyTorch ops everywhere (the benchmark compares the two).
COMPILED = True


def _c_lib(t: torch.Tensor):
    """The compiled CPU functions (:mod:`aimc_lib.periphery_cpu`) for a float32 CPU tensor, else None."""
    if not COMPILED or t.is_cuda or t.dtype != torch.float32:
        return None
    from . import periphery_cpu
    return periphery_cpu.lib()


def _as_rows(y: torch.Tensor, s: torch.Tensor) -> torch.Tensor | None:
    """``y`` as a ``[rows, cols]`` view with one scale ``s`` per row (the C output stage's layout), or None.

    Rows are input vectors (``y [B, out]``, ``s [B, 1]``), channels-last output pixels of a conv
    (``y [N, C, H, W]`` in channels-last memory, ``s [N, 1, H, W]``), or rows ``y [..., C]`` with ``s [..., 1]``.
    """
    if y.dim() == 4 and s.dim() == 4 and s.shape[1] == 1 and s.shape[2:] == y.shape[2:]:
        nhwc = y.permute(0, 2, 3, 1)
        return nhwc.view(-1, y.shape[1]) if nhwc.is_contiguous() and s.is_contiguous() else None
    if s.shape[:-1] == y.shape[:-1] and s.shape[-1] == 1 and y.is_contiguous() and s.is_contiguous():
        return y.view(-1, y.shape[-1])
    return None


def _nonzero_scale(s: torch.Tensor) -> torch.Tensor:
    return torch.where(s > 0, s, torch.ones_like(s))  # an all-zero input vector: scale 1 (as aihwkit)


def _dac_levels_(x_scaled: torch.Tensor, per: Periphery) -> torch.Tensor:
    """In place: inputs already divided by ``s * step`` -> the DAC's integer levels (round, clip)."""
    half = _half_levels(per.inp_bits)
    return x_scaled.round_().clamp_(-half, half)


def analog_matmul(x: torch.Tensor, w_norm: torch.Tensor, per: Periphery,
                  generator: torch.Generator | None = None, digital_scale: float = 1.0,
                  compiled: bool = True) -> torch.Tensor:
    """``x @ w_norm.T`` for input vectors ``x`` ``[batch, in]`` through the periphery.

    ``w_norm`` ``[out, in]``: the crossbar's normalised weights. Returns the digital result:
    the ADC's output times the input scale times ``digital_scale`` (e.g. ``W_max * alpha``).
    ``compiled=False``: PyTorch ops only, never the compiled CPU loops (same results without
    noise; noise from ``generator`` itself, so the same on every machine).
    """
    if per.noise_management == "abs_max":
        s = _nonzero_scale(x.abs().amax(dim=-1, keepdim=True))
    else:
        s = torch.ones_like(x[..., :1])
    if per.inp_bits is None:
        return _output_stage_(x @ w_norm.T, 1.0 / s, s, per, generator, digital_scale, compiled=compiled)
    in_step = per.inp_bound / _half_levels(per.inp_bits)
    levels = _dac_levels_(x / (s * in_step), per)
    return _output_stage_(levels @ w_norm.T, in_step, s, per, generator, digital_scale, compiled=compiled)


def _channel_abs_max(x: torch.Tensor) -> torch.Tensor:
    """``max_c |x[n, c, h, w]|``, ``[N, H, W]`` (a reduction over the contiguous axis when channels_last)."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        n, c, h, w = x.shape
        if _c_lib(x) is not None:
            from . import periphery_cpu
            return periphery_cpu.channel_abs_max(x.permute(0, 2, 3, 1))
        return x.permute(0, 2, 3, 1).reshape(-1, c).abs().amax(1).view(n, h, w)
    return x.abs().amax(dim=1)


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


def _patch_abs_max(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Abs-max of every im2col column: a max-pool of the channel-wise abs-max. ``[N, 1, Ho, Wo]``."""
    return _window_max(_channel_abs_max(x), conv).unsqueeze(1)


#: Bytes of the patch matrix per chunk on a CPU, small enough to stay in the caches between building
#: the DAC levels, the matrix product and the output stage (on a GPU the whole batch is one chunk).
PATCH_CHUNK_BYTES = 2 << 20


def _use_triton(x: torch.Tensor, w4d: torch.Tensor, per: Periphery) -> bool:
    """Whether the DAC conv runs as one fused Triton kernel (:mod:`aimc_lib.periphery_triton`)."""
    if not (COMPILED and x.is_cuda):
        return False
    from . import periphery_triton  # imported on first use: Triton is only needed on a GPU
    return (periphery_triton.available and x.dtype == torch.float32
            and torch.cuda.get_device_capability(x.device)[0] >= 8  # TF32 tensor cores (Ampere or newer)
            and x.shape[1] <= periphery_triton.MAX_IN_CHANNELS  # one program holds all channels
            and w4d.shape[0] <= periphery_triton.MAX_OUT_CHANNELS
            and per.inp_bits <= periphery_triton.MAX_INPUT_BITS  # DAC levels exact on the tensor cores
            and (per.out_bits or 0) <= 22)  # its float32 rounding is exact there


def _dac_conv(x: torch.Tensor, s: torch.Tensor, w4d: torch.Tensor, conv: nn.Conv2d, per: Periphery,
              generator: torch.Generator | None, digital_scale: float) -> torch.Tensor:
    """The conv through an abs-max DAC, channels-last throughout (see :func:`analog_conv2d` for the
    one-pass compiled paths: a fused Triton kernel on a GPU, C on x86-64 CPUs).

    Chunk by chunk of images: each kernel offset's strided view of the padded input is scaled by its patches'
    ``1 / (s * step)`` into one block of the patch matrix and rounded to the DAC's levels; one
    matrix product (the same multiply-adds as the conv) gives the crossbar outputs of every
    patch; the output stage (noise, ADC, rescaling) runs on them while they are in the cache.
    """
    in_step = per.inp_bound / _half_levels(per.inp_bits)
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    n, c = x.shape[:2]
    ho, wo = s.shape[-2:]
    s_rows = s.reshape(n, ho, wo, 1)
    inv = (1.0 / (s * in_step)).reshape(n, ho, wo, 1)
    k, cout = kh * kw * c, w4d.shape[0]
    w_mat = w4d.permute(2, 3, 1, 0).reshape(k, cout)  # rows in the patch matrix's (offset, channel) order
    c_lib, c_seed = _c_lib(x), None
    per_image = ho * wo * k * x.element_size()
    chunk = n if x.is_cuda else max(1, min(n, PATCH_CHUNK_BYTES // per_image))
    out = torch.empty((n, ho, wo, cout), dtype=x.dtype, device=x.device)
    cols = torch.empty((chunk, ho, wo, kh * kw, c), dtype=x.dtype, device=x.device)
    if c_lib is not None:
        from . import periphery_cpu
        x_nhwc, inv_c = x.permute(0, 2, 3, 1).contiguous(), inv.reshape(n, ho, wo).contiguous()
        c_seed = _c_seed(per, generator)  # one per call: each output row's noise is keyed by its index
    else:
        xp = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # [N, H, W, C]
        offsets = [(i, j) for i in range(kh) for j in range(kw)]
    for b0 in range(0, n, chunk):
        b1 = min(n, b0 + chunk)
        cb = cols[: b1 - b0]
        if c_lib is not None:  # the same scale, round and clip in one C loop, no padded copy
            periphery_cpu.dac_patches(x_nhwc[b0:b1], inv_c[b0:b1], cb, (kh, kw), (sh, sw), (ph, pw),
                                      _half_levels(per.inp_bits), per.inp_bound < 1.0)
        else:
            for o, (i, j) in enumerate(offsets):
                view = xp[b0:b1, i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw, :]
                torch.mul(view, inv[b0:b1], out=cb[:, :, :, o, :])
            cb.round_()
            if per.inp_bound < 1.0:  # |x| / s <= 1: only an input range below 1 can clip
                cb.clamp_(-_half_levels(per.inp_bits), _half_levels(per.inp_bits))
        rows = out[b0:b1]
        torch.mm(cb.view(-1, k), w_mat, out=rows.view(-1, cout))
        _output_stage_(rows, in_step, s_rows[b0:b1], per, generator, digital_scale, c_seed, b0 * ho * wo)
    return out.permute(0, 3, 1, 2)  # NCHW shape, channels-last memory


def analog_conv2d(x: torch.Tensor, w4d_norm: torch.Tensor, conv: nn.Conv2d, per: Periphery,
                  generator: torch.Generator | None = None, digital_scale: float = 1.0) -> torch.Tensor:
    """``conv(x)`` with normalised weights ``w4d_norm`` through the periphery (one MVM per output pixel).

    The same as :func:`analog_matmul` on every im2col column, without unfolding when the DAC is
    ideal. Returns the digital result (ADC output times input scale times ``digital_scale``).
    """
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
        raise ValueError("analog_conv2d supports plain convolutions (groups=1, dilation=1, zero padding)")
    if per.inp_bits is not None and per.noise_management == "abs_max":
        if _use_triton(x, w4d_norm, per):  # scales, DAC, product and output stage in one GPU kernel
            from .periphery_triton import dac_conv
            return dac_conv(x, w4d_norm, conv.stride, conv.padding, per, digital_scale, generator)
        c_lib = _c_lib(x)
        if c_lib is not None and c_lib.has_dac_conv:
            return _one_pass_dac_conv(x, w4d_norm, conv, per, generator, digital_scale)
    if per.noise_management == "abs_max":
        s = _nonzero_scale(_patch_abs_max(x, conv))
    else:
        hw = conv_output_hw(*x.shape[2:], conv.kernel_size, conv.stride, conv.padding)
        s = torch.ones((x.shape[0], 1) + hw, dtype=x.dtype, device=x.device)
    if per.inp_bits is None:
        y_raw = F.conv2d(x, w4d_norm, None, conv.stride, conv.padding)
        return _output_stage_(y_raw, 1.0 / s, s, per, generator, digital_scale)
    if per.noise_management == "none":  # one input range for every patch: quantise each input once
        y_raw = F.conv2d(quantize(x.clone(), per.inp_bits, per.inp_bound), w4d_norm, None, conv.stride, conv.padding)
        return _output_stage_(y_raw, 1.0, s, per, generator, digital_scale)
    return _dac_conv(x, s, w4d_norm, conv, per, generator, digital_scale)


def _one_pass_dac_conv(x: torch.Tensor, w4d: torch.Tensor, conv: nn.Conv2d, per: Periphery,
                       generator: torch.Generator | None, digital_scale: float) -> torch.Tensor:
    """The abs-max DAC conv as one compiled pass on an x86-64 CPU (:func:`aimc_lib.periphery_cpu.dac_conv`):
    the scales, the DAC levels, the product and the output stage of a few output pixels at a time, in the
    L1 cache; the same arithmetic as :func:`_dac_conv` but for the order of the sums."""
    from . import periphery_cpu
    in_step = per.inp_bound / _half_levels(per.inp_bits)
    k = w4d.shape[1] * w4d.shape[2] * w4d.shape[3]
    noise_sd, adc, clip = _c_output_stage(per)
    out = periphery_cpu.dac_conv(
        x.permute(0, 2, 3, 1).contiguous(), w4d.permute(2, 3, 1, 0).reshape(k, w4d.shape[0]), conv.kernel_size,
        conv.stride, conv.padding, in_step, _half_levels(per.inp_bits), per.inp_bound < 1.0,
        in_step / _out_step(per), _out_step(per) * digital_scale, noise_sd, _c_seed(per, generator), adc, clip)
    return out.permute(0, 3, 1, 2)  # NCHW shape, channels-last memory


def conv_output_hw(h: int, w: int, kernel: tuple, stride: tuple, padding: tuple) -> tuple[int, int]:
    """Height and width of a convolution's output (zero padding, no dilation), for every path."""
    return ((h + 2 * padding[0] - kernel[0]) // stride[0] + 1, (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)


def one_hot_readout(w_norm: torch.Tensor, per: Periphery, generator: torch.Generator | None = None) -> float:
    """GDC readout through the periphery: mean absolute output over all one-hot inputs (floored at 1e-4).

    PyTorch ops only (``compiled=False``): the readout is part of a chip's calibration, so a seed
    gives the same GDC factors on every machine, with or without a C compiler.
    """
    eye = torch.eye(w_norm.shape[1], dtype=w_norm.dtype, device=w_norm.device)
    return max(float(analog_matmul(eye, w_norm, per, generator, compiled=False).abs().mean()), GDC_READOUT_FLOOR)


class AnalogLayer(nn.Module):
    """A conv or linear layer computed by a crossbar with its periphery.

    Holds the crossbar's normalised weights (``(G+ - G-) / G_max`` as read) and the digital
    factor ``W_max * alpha`` applied after the ADC. The FC bias, if any, is the crossbar's last
    column, driven by a constant input 1. ``generator`` draws the output noise.

    A read is for inference: no gradient flows through the converters (rounding has none), so
    the forward pass runs without autograd even where it is enabled (a plain ``model(x)`` call).
    """

    def __init__(self, layer: nn.Module, w2d_norm: torch.Tensor, digital_scale: float, periphery: Periphery,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"AnalogLayer wraps Conv2d or Linear layers, got {type(layer).__name__}")
        self.layer = layer
        self.has_bias = getattr(layer, "bias", None) is not None
        if isinstance(layer, nn.Conv2d):
            if self.has_bias:
                raise ValueError("AnalogLayer: conv layers with a bias are not supported (ResNet convs have none)")
            w = w2d_norm.reshape(layer.weight.shape)
        else:
            w = w2d_norm
        self.register_buffer("w_norm", w.to(layer.weight.device, layer.weight.dtype).contiguous())
        self.digital_scale = float(digital_scale)
        self.periphery = periphery
        self.generator = generator

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, nn.Conv2d):
            return analog_conv2d(x, self.w_norm, self.layer, self.periphery, self.generator, self.digital_scale)
        if self.has_bias:
            x = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
        return analog_matmul(x, self.w_norm, self.periphery, self.generator, self.digital_scale)
