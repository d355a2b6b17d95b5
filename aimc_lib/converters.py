"""The periphery's specification: what the converters of an analog layer are (no computation).

:class:`Periphery` names an analog layer's input DAC, output noise and ADC; the helpers here give
its levels, steps and output sizes. Every backend of :mod:`aimc_lib.periphery` (PyTorch, compiled
C, Triton) reads the converters from here, so they cannot disagree about them. The steps of one
analog matrix-vector multiplication are described in :mod:`aimc_lib.periphery`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

NOISE_MANAGEMENT = ("abs_max", "none")
GDC_READOUTS = ("exact", "periphery", "known-inputs")
GDC_READOUT_FLOOR = 1e-4  # aihwkit's clamp(min=0.0001) of the readout
#: Converter resolutions above this are beyond float32's resolution (use None for an ideal converter).
MAX_BITS = 24
#: Largest converter range (inp_bound, out_bound) accepted, far beyond any real periphery and small
#: enough that its levels and products stay finite in float32.
MAX_BOUND = 1e6
#: Most calibration reads GDC's readout may average (Periphery.gdc_reads).
MAX_GDC_READS = 1024
#: Largest output noise std accepted (normalised output units; 1 is a full-scale output).
MAX_OUT_NOISE = 1e3


def _as_number(name: str, value):
    """Python, numpy and one-element tensor numbers by value; bools and anything else refused."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise ValueError(f"Periphery.{name} must be a number, got {value!r}")
    return value


def _check_bits(name: str, bits):
    if bits is None:
        return None
    bits = _as_number(name, bits)
    if not hasattr(bits, "__index__") or not 2 <= int(bits) <= MAX_BITS:
        raise ValueError(f"Periphery.{name} must be an integer in [2, {MAX_BITS}] (a signed converter with "
                         f"2^bits - 1 levels) or None for an ideal converter, got {bits!r}")
    return int(bits)


def _check_range(name: str, value, low: float, high: float, low_open: bool, allow_none: bool = False):
    if value is None and allow_none:
        return None
    value = float(_as_number(name, value))
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        raise ValueError(f"Periphery.{name} must be a finite number in {'(' if low_open else '['}{low:g}, {high:g}]"
                         f"{' or None' if allow_none else ''}, got {value!r}")
    return value


@dataclass(frozen=True)
class Periphery:
    """Input DAC, output noise and ADC of every analog layer (see :mod:`aimc_lib.periphery` for the order).

    Attributes:
        inp_bits: DAC resolution in bits (``None``: ideal, no quantisation or clipping of inputs).
        inp_bound: DAC range ``[-inp_bound, inp_bound]`` after input scaling.
        noise_management: ``"abs_max"`` (each input vector scaled by its abs-max) or ``"none"``.
        out_noise: std of the additive Gaussian output noise, in normalised output units
            (a weight of ``W_max`` times a full-scale input gives 1).
        out_bits: ADC resolution in bits (``None``: ideal, no quantisation).
        out_bound: ADC range ``[-out_bound, out_bound]`` in normalised output units (``None``:
            no clipping; required when ``out_bits`` is set).
        gdc_readout: ``"exact"``, ``"periphery"`` (aihwkit's: the mean absolute output over the
            one-hot inputs, through the periphery) or ``"known-inputs"`` (+-1 Walsh patterns on
            blocks of 16 rows through the periphery, alpha the least-squares gain of the outputs
            at t_ref on those at t: no absolute value; :func:`aimc_lib.periphery.known_inputs`).
        gdc_reads: with a readout through the periphery, how many reads of every calibration input
            are averaged (before the absolute value; 1, aihwkit's, or more: a chip can repeat its
            calibration reads; the output noise in the readout shrinks as 1/sqrt(gdc_reads)).

    Numbers are taken by value (numpy and one-element tensor scalars become Python numbers).
    """

    inp_bits: int | None = None
    inp_bound: float = 1.0
    noise_management: str = "abs_max"
    out_noise: float = 0.0
    out_bits: int | None = None
    out_bound: float | None = None
    gdc_readout: str = "exact"
    gdc_reads: int = 1

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "inp_bits", _check_bits("inp_bits", self.inp_bits))
        set_(self, "out_bits", _check_bits("out_bits", self.out_bits))
        set_(self, "inp_bound", _check_range("inp_bound", self.inp_bound, 0.0, MAX_BOUND, low_open=True))
        set_(self, "out_bound", _check_range("out_bound", self.out_bound, 0.0, MAX_BOUND, low_open=True,
                                             allow_none=True))
        set_(self, "out_noise", _check_range("out_noise", self.out_noise, 0.0, MAX_OUT_NOISE, low_open=False))
        if self.out_bits is not None and self.out_bound is None:
            raise ValueError("Periphery.out_bits needs out_bound (the ADC's range)")
        if self.noise_management not in NOISE_MANAGEMENT:
            raise ValueError(f"Periphery.noise_management must be one of {NOISE_MANAGEMENT}, "
                             f"got {self.noise_management!r}")
        reads = _as_number("gdc_reads", self.gdc_reads)
        if not hasattr(reads, "__index__") or not 1 <= int(reads) <= MAX_GDC_READS:
            raise ValueError(f"Periphery.gdc_reads must be an integer in [1, {MAX_GDC_READS}], got {self.gdc_reads!r}")
        set_(self, "gdc_reads", int(reads))
        if self.gdc_readout not in GDC_READOUTS:
            raise ValueError(f"Periphery.gdc_readout must be one of {GDC_READOUTS}, got {self.gdc_readout!r}")

    @classmethod
    def ideal(cls) -> "Periphery":
        """No converters, no output noise: a read is exactly the weights' product."""
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


def half_levels(bits: int) -> int:
    """Levels on each side of 0 of a signed ``bits``-bit converter (``2^(bits-1) - 1``)."""
    return 2 ** (bits - 1) - 1


def quantize(x: torch.Tensor, bits: int, bound: float) -> torch.Tensor:
    """Round ``x`` to the ``2^bits - 1`` levels of a signed converter over ``[-bound, bound]``, then clip."""
    half = half_levels(bits)  # bound = half * step
    step = bound / half
    return (x / step).round_().clamp_(-half, half).mul_(step)


def converter_levels(bits: int, bound: float) -> torch.Tensor:
    """All output levels of :func:`quantize` (``2^bits - 1`` of them, ascending)."""
    half = half_levels(bits)
    return torch.arange(-half, half + 1, dtype=torch.float32) * (bound / half)


def in_step(per: Periphery) -> float:
    """The DAC's step (input units after scaling)."""
    return per.inp_bound / half_levels(per.inp_bits)


def out_step(per: Periphery) -> float:
    """The ADC's step in normalised output units (1 without an ADC)."""
    return per.out_bound / half_levels(per.out_bits) if per.out_bits is not None else 1.0


def dac_levels_(x_scaled: torch.Tensor, per: Periphery) -> torch.Tensor:
    """In place: inputs already divided by ``s * step`` -> the DAC's integer levels (round, clip)."""
    half = half_levels(per.inp_bits)
    return x_scaled.round_().clamp_(-half, half)


def output_stage_args(per: Periphery) -> tuple[float, bool, tuple[float, float] | None]:
    """The output stage in ADC steps: (noise std, whether to round to the ADC's levels, clip range or None)."""
    half = half_levels(per.out_bits) if per.out_bits is not None else None
    clip = (-half, half) if half is not None else ((-per.out_bound, per.out_bound) if per.out_bound else None)
    return per.out_noise / out_step(per), half is not None, clip


def conv_output_hw(h: int, w: int, kernel: tuple, stride: tuple, padding: tuple) -> tuple[int, int]:
    """Height and width of a convolution's output (zero padding, no dilation), for every backend."""
    return ((h + 2 * padding[0] - kernel[0]) // stride[0] + 1, (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)
