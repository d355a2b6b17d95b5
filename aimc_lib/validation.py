"""Argument checks shared by the library's public functions and the command line.

Every check raises :class:`ArgumentError` (a ``ValueError`` and a ``TypeError``) with a one-line
message that names the argument and the accepted values, before any computation starts, so that
a bad argument never ends in a traceback from deep inside torch or numpy, nor in a silently wrong
result.
"""
from __future__ import annotations

import math
import numbers
import os
import warnings
from pathlib import Path

import torch

#: Smallest positive normal float32 (conductances below it lose precision, then read as 0).
FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)
#: Largest drift exponent of the calibrated model (mu_nu <= 0.1, sigma_nu <= 0.045, 5 sigma tail).
NU_MAX = 0.1 + 5 * 0.045
NU_MEAN_MAX = 0.1


class ArgumentError(ValueError, TypeError):
    """A public function or the command line got an argument outside its accepted range or type."""


def is_number(v) -> bool:
    """A real number (Python, numpy or a one-element tensor), not a bool or a string."""
    if isinstance(v, torch.Tensor):
        return v.numel() == 1 and not v.dtype.is_complex and v.dtype != torch.bool
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def number(name: str, v, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """``v`` as a finite float in the given range, else ArgumentError naming ``name`` and the range."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    if not is_number(v):
        raise ArgumentError(f"{name} must be a number in {rng}, got {v!r} ({type(v).__name__})")
    x = float(v)
    if (not math.isfinite(x) or (low is not None and (x < low or (low_open and x == low)))
            or (high is not None and (x > high or (high_open and x == high)))):
        raise ArgumentError(f"{name} must be a finite number in {rng}, got {v!r}")
    return x


def integer(name: str, v, low: int | None = None, high: int | None = None) -> int:
    """``v`` as an int in ``low..high`` (bounds inclusive), else ArgumentError; bools and floats refused."""
    rng = (f"in {low}..{high}" if low is not None and high is not None else f">= {low}" if low is not None
           else f"<= {high}" if high is not None else "")
    ok_type = (isinstance(v, numbers.Integral) and not isinstance(v, bool)) or (
        isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype.is_floating_point
        and not v.dtype.is_complex and v.dtype != torch.bool)
    if not ok_type:
        raise ArgumentError(f"{name} must be an integer {rng}, got {v!r} ({type(v).__name__})".replace("  ", " "))
    i = int(v)
    if (low is not None and i < low) or (high is not None and i > high):
        raise ArgumentError(f"{name} must be an integer {rng}, got {i}")
    return i


def positive_int(name: str, v, high: int | None = None) -> int:
    """An integer >= 1 (chip counts, batch sizes, image counts)."""
    return integer(name, v, 1, high)


#: Largest seed (chip k uses seed + k, and torch accepts seeds below 2**63).
SEED_MAX = 2 ** 63 - 1


def seed(v, name: str = "seed", n: int = 1) -> int:
    """A seed in ``0 .. 2**63 - 1 - (n - 1)`` (``n`` consecutive seeds are used: seed, seed + 1, ...)."""
    if n > MAX_CHIPS:
        raise ArgumentError(f"{n} consecutive seeds asked for; at most {MAX_CHIPS}")
    return integer(name, v, 0, SEED_MAX - (n - 1))


#: More chips than this is a typo (each chip is a full evaluation of the time grid).
MAX_CHIPS = 1_000_000


def bool_flag(name: str, v) -> bool:
    if not isinstance(v, bool):
        raise ArgumentError(f"{name} must be True or False, got {v!r} ({type(v).__name__})")
    return v


def choice(name: str, v, choices) -> str:
    if not isinstance(v, str) or v not in choices:
        raise ArgumentError(f"{name} must be one of {tuple(choices)}, got {v!r}")
    return v


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


def time_grid(times_s, params=None, name: str = "times_s") -> list[float]:
    """A time grid (s after programming): non-empty, numbers, finite, >= 0, strictly increasing.

    With ``params`` (:class:`aimc_lib.pcm.PCMParams`), times at which the float32 conductances of
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
        if t_max / params.t0_s + 1 >= FLOAT32_MAX:
            raise ArgumentError(f"{name}: {t_max:g} s is beyond float32 range for drift ((t + t0) / t0 "
                                f"overflows); use times below {FLOAT32_MAX * params.t0_s:.1e} s")
        t_all = underflow_time_s(params.t0_s, params.drift_scale, NU_MEAN_MAX, 1.0)
        if t_max >= t_all:
            raise ArgumentError(f"{name}: at {t_max:g} s every device's float32 conductance underflows "
                                f"to 0 (drift_scale {params.drift_scale:g}); use times below {t_all:.1e} s")
        t_some = underflow_time_s(params.t0_s, params.drift_scale, NU_MAX, 1.0)
        if t_max >= t_some:
            warnings.warn(f"{name}: at {t_max:g} s the most-drifting devices' float32 conductances "
                          f"underflow to 0 (from {t_some:.1e} s on); results there are not physical",
                          stacklevel=3)
    return times


def device(v, name: str = "device") -> torch.device:
    """A torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    if isinstance(v, torch.device):
        dev = v
    else:
        if not isinstance(v, str):
            raise ArgumentError(f"{name} must be a device name such as 'cpu' or 'cuda', got {v!r}")
        try:
            dev = torch.device(v)
        except (RuntimeError, ValueError):
            raise ArgumentError(f"{name}: unknown device {v!r}; use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ArgumentError(f"{name} {v!r}: CUDA is not available on this machine (torch "
                                f"{torch.__version__}, built for CUDA {torch.version.cuda}); use 'cpu'")
        n = torch.cuda.device_count()
        if dev.index is not None and not 0 <= dev.index < n:
            raise ArgumentError(f"{name} {v!r}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}")
        return dev
    if dev.type == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return dev
    raise ArgumentError(f"{name} {v!r} is not available on this machine; use 'cpu'"
                        f"{' or cuda' if torch.cuda.is_available() else ''}")


def threads(v, name: str = "threads", allow_zero: bool = True) -> int:
    """CPU threads for torch: ``1 .. os.cpu_count()`` (0 = torch's default, when ``allow_zero``).

    Far more threads than cores is refused: it slows torch down and crashed it in our tests.
    """
    cores = os.cpu_count() or 1
    return integer(name, v, 0 if allow_zero else 1, cores)


#: Calibration values beyond this magnitude are taken for un-normalized pixels.
CALIBRATION_ABS_MAX = 10.0


def calibration_images(x, name: str = "calibration_x") -> torch.Tensor:
    """Normalized float images ``[N, 3, H, W]`` for BatchNorm re-estimation (AdaBS).

    Refuses empty, non-float, non-finite batches and batches outside the normalized range
    (``aimc_lib.data.normalize`` maps CIFAR-10 pixels to -2.0 ... 2.1; values beyond +-10 are
    refused): raw uint8 or 0..255 pixels, or pixels in [0, 1] that were never normalized (no
    negative value in 10 or more images), would silently give wrong BN statistics.
    """
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"{name} must be a float tensor [N, 3, H, W] of normalized images, "
                            f"got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ArgumentError(f"{name} must hold normalized float images (aimc_lib.data.normalize), "
                            f"got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ArgumentError(f"{name} must have shape [N, 3, H, W], got {list(x.shape)}")
    if x.shape[0] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ArgumentError(f"{name} holds no images (shape {list(x.shape)}); AdaBS needs at least one")
    if not torch.isfinite(x).all():
        raise ArgumentError(f"{name} holds NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -CALIBRATION_ABS_MAX or hi > CALIBRATION_ABS_MAX:
        raise ArgumentError(f"{name} values span [{lo:.3g}, {hi:.3g}], far outside the normalized range "
                            f"(about -2 ... 2, at most +-{CALIBRATION_ABS_MAX:g}): these look like raw 0..255 "
                            f"pixels; normalize them with aimc_lib.data.normalize first")
    if lo >= 0 and x.shape[0] >= 10:
        raise ArgumentError(f"{name} has no negative values (range [{lo:.3g}, {hi:.3g}]): these look "
                            f"like raw pixels in [0, 1]; normalize them with aimc_lib.data.normalize")
    return x


def format_duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def _model_and_test_split(model, test) -> None:
    """A finite analog model and a test Split, else an error naming which (ValueError for NaN or Inf)."""
    from torch import nn
    from .data import Split
    from .models import check_analog_model, check_finite
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_analog_model(model)
    check_finite(model)
    if not isinstance(test, Split):
        raise ArgumentError(f"test must be an aimc_lib.data.Split (e.g. load_cifar10('test')), got {type(test).__name__}")


def drift_run(model, test, times_s, n_chips, params, seed_, test_subset, batch_size, calibration_split,
              calibration_images_n, fp32_accuracy, flags: dict) -> list[float]:
    """Check the arguments of :func:`aimc_lib.experiments.accuracy_vs_time`; returns the time grid."""
    from .data import Split
    from .pcm import PCMParams
    _model_and_test_split(model, test)
    if not isinstance(params, PCMParams):
        raise ArgumentError(f"params must be an aimc_lib.pcm.PCMParams, got {type(params).__name__}")
    times = time_grid(times_s, params)
    n = positive_int("n_chips", n_chips, MAX_CHIPS)
    seed(seed_, "seed", n)
    integer("test_subset (0 = all test images)", test_subset, 0, len(test))
    positive_int("batch_size", batch_size)
    positive_int("calibration_images", calibration_images_n)
    if calibration_split is not None and not isinstance(calibration_split, Split):
        raise ArgumentError(f"calibration_split must be a Split (e.g. the training set) or None, "
                            f"got {type(calibration_split).__name__}")
    if fp32_accuracy is not None:
        number("fp32_accuracy (%)", fp32_accuracy, 0.0, 100.0)
    for name, v in flags.items():
        if name == "model_name":
            if not isinstance(v, str):
                raise ArgumentError(f"model_name must be a string, got {v!r}")
        else:
            bool_flag(name, v)
    return times


def weight_noise_run(model, test, etas, n_repeats, seed_, test_subset, batch_size) -> list[float]:
    """Check the arguments of :func:`aimc_lib.experiments.accuracy_under_weight_noise`; returns the etas."""
    _model_and_test_split(model, test)
    if isinstance(etas, (str, bytes)) or not hasattr(etas, "__iter__"):
        raise ArgumentError(f"etas must be a list of relative noise levels in [0, 1), got {etas!r}")
    etas = [number("every eta (relative weight-noise std)", e, 0.0, 1.0, high_open=True) for e in etas]
    if not etas:
        raise ArgumentError("etas is empty: give at least one relative noise level in [0, 1)")
    positive_int("n_repeats", n_repeats)
    seed(seed_, "seed")
    integer("test_subset (0 = all test images)", test_subset, 0, len(test))
    positive_int("batch_size", batch_size)
    return [float(e) for e in etas]


def writable_folder(folder, name: str = "output") -> None:
    """Raise ArgumentError unless ``folder`` exists, is a folder and a file can be created in it."""
    import tempfile
    folder = Path(folder)
    if not folder.exists():
        raise ArgumentError(f"{name}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise ArgumentError(f"{name}: {folder} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".aimc-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise ArgumentError(f"{name}: cannot write in folder {folder} ({e.strerror or e})") from None


def same_file(a, b) -> bool:
    """True if paths ``a`` and ``b`` name the same existing file (also through links)."""
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def output_file(path, name: str = "--out", inputs=(), force: bool = False) -> Path:
    """Check an output file before any computation: not an input (never, even with ``force``), not a
    folder, in an existing writable folder, and not an existing file unless ``force``."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise ArgumentError(f"{name} must be a file path, got {path!r}")
    p = Path(path)
    for i in inputs:
        if i is not None and same_file(p, i):
            raise ArgumentError(f"{name} {path} is also an input ({i}); writing it would destroy the input: "
                                f"choose another output name")
    if p.is_dir():
        raise ArgumentError(f"{name} {path} is a folder; give a file name")
    if p.exists() and not p.is_file():
        raise ArgumentError(f"{name} {path} exists and is not a regular file (a device or a pipe); "
                            f"give a file name")
    writable_folder(p.resolve().parent if p.parent != Path("") else Path("."), name)
    if p.exists() and not force:
        raise ArgumentError(f"{name} {path} exists; pass --force to replace it, or choose another name")
    return p
