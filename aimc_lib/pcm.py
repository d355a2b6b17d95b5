"""Statistical model of a phase-change memory (PCM) device.

Characterised on >10,000 devices of IBM's 1M-device PCM array (Nandakumar et al., ICECS 2019), as
used by Joshi et al. (Nat. Commun. 2020) and by aihwkit's ``PCMLikeNoiseModel``. Conductances are
in microsiemens (uS), times in seconds; ``g = G / G_max`` is the normalized conductance.

A device goes through three stages:

1. **Programming** (:func:`program`): the iterative program-and-verify loop lands near the
   target, ``G_P = G_T + sigma_P(g_T) xi`` with ``sigma_P(g) = max(-1.1731 g^2 + 1.9650 g +
   0.2635, 0)`` uS, clipped at 0. Each device also receives its drift exponent
   ``nu = |mu_nu(g_T) + sigma_nu(g_T) xi|`` here, once.
2. **Drift** (:func:`drift`): structural relaxation of the amorphous phase lowers the
   conductance as a power law of time, ``G_D(t) = G_P ((t + t0) / t0)^-nu``, ``t0 = 20 s``.
3. **Read** (:func:`read`): every read sees fresh 1/f noise whose std grows slowly with time,
   ``sigma = |G_D| Q_s sqrt(ln((t + t0 + t_read) / (2 t_read)))``, ``Q_s = min(0.0088 /
   g_P^0.65, 0.2)``, clipped at 0.

Every random draw comes from an explicit source: a :class:`aimc_lib.rng.Stream` (the simulation's
counter-based stream, which a chip uses: the same draws on every device and backend) or a
:class:`torch.Generator` (sequential draws, e.g. for a few devices in the book's chapters).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import torch

from .checks import ArgumentError, bool_flag, is_number, number
from .rng import Stream


#: The ways a read compensates the drift (implemented in :mod:`aimc_lib.mapping`): none, global
#: drift compensation, GDC plus re-estimated BatchNorm statistics.
COMPENSATIONS = ("none", "gdc", "adabs")


def check_compensation(name: str) -> str:
    """One of :data:`COMPENSATIONS`, else a ValueError naming them."""
    if name not in COMPENSATIONS:
        raise ValueError(f"unknown compensation {name!r}; choose one of {COMPENSATIONS}")
    return name


@dataclass(frozen=True)
class PCMParams:
    """Parameters of the PCM model. Scales of 1.0 are the calibrated model, 0.0 switch an effect off.

    Attributes:
        g_max_us: largest programmable conductance G_max (uS).
        t0_s: time after programming at which drift is referenced (s).
        t_read_s: duration of one read pulse (s), sets the 1/f noise bandwidth.
        prog_noise_scale: multiplies the programming-noise std sigma_P.
        drift_scale: multiplies every drift exponent nu (0 = no drift).
        read_noise_scale: multiplies the 1/f read-noise std.
        noise_on_zero_target: if True (default), the device of a differential pair whose target is
            0 also receives programming noise (0.26 uS std, clipped at 0), as the calibrated model
            (and aihwkit's) does: a RESET device is not at exactly 0 uS. If False it stays exactly
            at 0 uS, an idealisation (paired studies of both: ``RESULTS.md``).
    """

    g_max_us: float = 25.0
    t0_s: float = 20.0
    t_read_s: float = 250e-9
    prog_noise_scale: float = 1.0
    drift_scale: float = 1.0
    read_noise_scale: float = 1.0
    noise_on_zero_target: bool = True

    def __post_init__(self):
        """Every field by value (numpy and one-element tensor scalars become Python floats, so that
        nothing downstream, e.g. a result's JSON, sees their type) and within its range (:data:`RANGES`)."""
        for name, (low, high) in RANGES.items():
            object.__setattr__(self, name, number(f"PCMParams.{name}", getattr(self, name), low, high,
                                                  low_open=low == 0.0 and name not in SCALES))
        bool_flag("PCMParams.noise_on_zero_target", self.noise_on_zero_target)
        if not self.t_read_s < self.t0_s:
            raise ArgumentError(f"PCMParams.t_read_s must be shorter than t0_s (a read pulse lasts "
                                f"less than the drift reference time), got {self.t_read_s} >= {self.t0_s}")

    def to_dict(self) -> dict:
        return asdict(self)


#: The scales of the calibrated model's effects (1 = calibrated, 0 = off).
SCALES = ("prog_noise_scale", "drift_scale", "read_noise_scale")

#: The accepted range of every number of :class:`PCMParams` (inclusive). G_max: the PCM devices of
#: the paper and of aihwkit have 10 to 100 uS; below 0.1 uS the programming noise (0.26 uS) is
#: the whole signal, above 1 mS no PCM device goes. t0: the drift reference is seconds to minutes
#: (20 s calibrated); t_read: a read pulse is ns to us (250 ns calibrated). Scales: beyond ten
#: times the calibrated noise or drift no measured device goes, and drift exponents or noise stds
#: that large drive float32 conductances to 0 or Inf within the times a chip is read at.
RANGES = {"g_max_us": (0.1, 1000.0), "t0_s": (1e-6, 1e6), "t_read_s": (1e-12, 1.0),
          **{name: (0.0, 10.0) for name in SCALES}}


def check_time(t_s: float) -> float:
    """Validate a time since programming (s): a finite number >= 0 (not a string or a bool)."""
    if not is_number(t_s) or not math.isfinite(float(t_s)) or float(t_s) < 0:
        raise ArgumentError(f"time since programming must be a finite number of seconds >= 0, got {t_s!r}")
    return float(t_s)


def prog_noise_std_us(g_target_us: torch.Tensor, p: PCMParams = PCMParams()) -> torch.Tensor:
    """Programming-noise std sigma_P (uS) at target conductance ``g_target_us`` (calibrated, unscaled)."""
    g = g_target_us / p.g_max_us
    return (-1.1731 * g ** 2 + 1.9650 * g + 0.2635).clamp(min=0.0)


def drift_nu_stats(g_target_us: torch.Tensor, p: PCMParams = PCMParams()) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the drift exponent (before the absolute value) at target ``g_target_us``."""
    g = (g_target_us / p.g_max_us).clamp(min=1e-7)
    mu = (-0.0155 * torch.log(g) + 0.0244).clamp(0.049, 0.1)
    sigma = (-0.0125 * torch.log(g) - 0.0059).clamp(0.008, 0.045)
    return mu, sigma


def read_noise_q_s(g_prog_us: torch.Tensor, p: PCMParams = PCMParams()) -> torch.Tensor:
    """1/f noise amplitude Q_s = min(0.0088 / g_P^0.65, 0.2) for programmed conductance ``g_prog_us``."""
    g = (g_prog_us / p.g_max_us).clamp(min=1e-3)
    return (0.0088 / g ** 0.65).clamp(max=0.2)


def read_noise_time_factor(t_s: float, p: PCMParams = PCMParams()) -> float:
    """sqrt(ln((t + t0 + t_read) / (2 t_read))): growth of the 1/f read noise with time."""
    t = check_time(t_s)
    return math.sqrt(math.log((t + p.t0_s + p.t_read_s) / (2 * p.t_read_s)))


def _check_targets(g_target_us: torch.Tensor, p: PCMParams) -> None:
    if not torch.isfinite(g_target_us).all():
        raise ValueError("target conductances hold NaN or Inf")
    if (g_target_us < 0).any() or (g_target_us > p.g_max_us * (1 + 1e-6)).any():
        raise ValueError(f"target conductances must lie in [0, G_max = {p.g_max_us}] uS")


def standard_normal(like: torch.Tensor, source) -> torch.Tensor:
    """Standard normals of ``like``'s shape and device from ``source``: a :class:`~aimc_lib.rng.Stream`
    (value ``i`` of the flattened tensor is value ``i`` of the stream's row 0) or a
    :class:`torch.Generator` / ``None`` (torch's sequential draws)."""
    if isinstance(source, Stream):
        return source.normal_like(like)
    if source is not None and not isinstance(source, torch.Generator):
        raise ValueError(f"random draws need an aimc_lib.rng.Stream or a torch.Generator, got {type(source).__name__}")
    return torch.randn(like.shape, generator=source, device=like.device)


def program(g_target_us: torch.Tensor, p: PCMParams = PCMParams(),
            generator: torch.Generator | tuple[Stream, Stream] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Program devices to ``g_target_us`` (uS).

    Returns ``(g_prog_us, nu)``: programmed conductances (>= 0, uS) and one drift exponent per
    device. Devices with target exactly 0 stay at 0 only if ``p.noise_on_zero_target`` is False.
    ``generator``: a :class:`torch.Generator` (programming noise, then drift exponents, drawn in
    turn) or a pair of :class:`~aimc_lib.rng.Stream` (one for each).
    """
    _check_targets(g_target_us, p)
    g_t = g_target_us.float()
    if isinstance(generator, tuple):
        prog_source, nu_source = generator
    else:
        prog_source = nu_source = generator
    xi = standard_normal(g_t, prog_source)
    noise = p.prog_noise_scale * prog_noise_std_us(g_t, p) * xi
    if not p.noise_on_zero_target:
        noise = torch.where(g_t > 0, noise, torch.zeros_like(noise))
    g_prog = (g_t + noise).clamp(min=0.0)
    mu, sigma = drift_nu_stats(g_t, p)
    nu = (mu + sigma * standard_normal(g_t, nu_source)).abs()
    return g_prog, nu * p.drift_scale


def check_read_time(t_s: float, p: PCMParams = PCMParams(), name: str = "t_s") -> float:
    """A time since programming (s) at which a chip of ``p`` can be read in float32: finite, >= 0, and
    before every device's conductance underflows (the check :func:`time_grid` makes for a grid)."""
    if not isinstance(p, PCMParams):
        raise ArgumentError(f"params must be an aimc_lib.pcm.PCMParams, got {type(p).__name__}")
    t = check_time(t_s)
    _check_float32_time(t, p, name)
    return t


def drift(g_prog_us: torch.Tensor, nu: torch.Tensor, t_s: float, p: PCMParams = PCMParams()) -> torch.Tensor:
    """Conductance (uS) ``t_s`` seconds after programming: ``G_P ((t + t0) / t0)^-nu``."""
    t = check_read_time(t_s, p)
    return g_prog_us * torch.pow(torch.tensor((t + p.t0_s) / p.t0_s, device=nu.device), -nu)


def read(g_prog_us: torch.Tensor, nu: torch.Tensor, t_s: float, p: PCMParams = PCMParams(),
         generator: torch.Generator | Stream | None = None) -> torch.Tensor:
    """One read (uS) at ``t_s`` seconds after programming: drift plus fresh 1/f read noise, >= 0.

    ``generator``: a :class:`torch.Generator` or the read's :class:`~aimc_lib.rng.Stream`."""
    g_d = drift(g_prog_us, nu, t_s, p)
    if p.read_noise_scale == 0:
        return g_d
    std = g_d.abs() * read_noise_q_s(g_prog_us, p) * read_noise_time_factor(t_s, p) * p.read_noise_scale
    return (g_d + std * standard_normal(g_d, generator)).clamp(min=0.0)


def mean_drift_factor(t_s: float, nu: float = 0.049, p: PCMParams = PCMParams()) -> float:
    """Fraction of its programmed conductance a device with exponent ``nu`` keeps after ``t_s``."""
    t = check_time(t_s)
    return ((t + p.t0_s) / p.t0_s) ** (-nu * p.drift_scale)


# Time grids that float32 conductances can hold: the physics' bounds on the times a chip is read at.

#: Smallest positive normal float32 (conductances below it lose precision, then read as 0).
FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)
#: Largest mean and std of the drift exponent (the upper clamps of :func:`drift_nu_stats`,
#: reached at the smallest conductances).
NU_MEAN_MAX, NU_SIGMA_MAX = (float(s) for s in drift_nu_stats(torch.zeros(1)))
#: Largest drift exponent of the calibrated model, the largest mean plus a 5-sigma tail.
NU_MAX = NU_MEAN_MAX + 5 * NU_SIGMA_MAX


def underflow_time_s(t0_s: float = 20.0, drift_scale: float = 1.0, nu: float = NU_MAX,
                     g_us: float = 1.0) -> float:
    """Time (s) after which a device of ``g_us`` uS drifting with exponent ``nu * drift_scale``
    falls below the smallest normal float32 (``inf`` without drift)."""
    exponent = nu * drift_scale
    if exponent <= 0:
        return math.inf
    log_ratio = (math.log(g_us) - math.log(FLOAT32_TINY)) / exponent  # ((t + t0) / t0) = e^log_ratio
    return math.inf if log_ratio > 700 else t0_s * math.expm1(log_ratio)


#: The largest time (s) float32 can hold as (t + t0) / t0 with t0 = 1 s (about 3.4e38 s).
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _check_float32_time(t_max: float, params: PCMParams, name: str) -> None:
    if t_max / params.t0_s + 1 >= FLOAT32_MAX:
        raise ArgumentError(f"{name}: {t_max:g} s is beyond float32 range for drift ((t + t0) / t0 "
                            f"overflows); use times below {FLOAT32_MAX * params.t0_s:.1e} s")
    t_all = underflow_time_s(params.t0_s, params.drift_scale, NU_MEAN_MAX, 1.0)
    if t_max >= t_all:
        raise ArgumentError(f"{name}: at {t_max:g} s every device's float32 conductance underflows "
                            f"to 0 (drift_scale {params.drift_scale:g}); use times below {t_all:.1e} s")


def time_grid(times_s, params: PCMParams | None = None, name: str = "times_s") -> list[float]:
    """A time grid (s after programming): non-empty, numbers, finite, >= 0, strictly increasing.

    With ``params`` (:class:`PCMParams`), times at which the float32 conductances of
    a typical device underflow (every weight would read as 0) are refused, and times at which the
    most-drifting devices underflow are warned about.
    """
    if isinstance(times_s, (str, bytes)) or is_number(times_s) and not isinstance(times_s, torch.Tensor):
        raise ArgumentError(f"{name} must be a list of times in s (>= 0, increasing), got {times_s!r}")
    if isinstance(times_s, torch.Tensor):
        times_s = times_s.flatten().tolist() if times_s.dim() <= 1 else times_s
    try:
        items = list(times_s)
    except TypeError:
        raise ArgumentError(f"{name} must be a list of times in s (>= 0, increasing), "
                            f"got {type(times_s).__name__}") from None
    if not items:
        raise ArgumentError(f"{name} must hold at least one time in s, got an empty list")
    times = [number(f"{name}[{j}] (time since programming, s)", t, 0.0) for j, t in enumerate(items)]
    for j in range(1, len(times)):
        if not times[j] > times[j - 1]:
            raise ArgumentError(f"{name} must be strictly increasing (a chip is read forward in time), "
                                f"got {times[j - 1]:g} then {times[j]:g} at positions {j - 1}, {j}")
    if params is not None:
        t_max = times[-1]
        _check_float32_time(t_max, params, name)
        t_some = underflow_time_s(params.t0_s, params.drift_scale, NU_MAX, 1.0)
        if t_max >= t_some:
            warnings.warn(f"{name}: at {t_max:g} s the most-drifting devices' float32 conductances "
                          f"underflow to 0 (from {t_some:.1e} s on); results there are not physical",
                          stacklevel=3)
    return times
