"""Generic argument checks: the bottom layer shared by the library's public functions and the CLI.

Every check raises :class:`ArgumentError` (a ``ValueError`` and a ``TypeError``) with a one-line
message that names the argument and the accepted values, before any computation starts, so that
a bad argument never ends in a traceback from deep inside torch or numpy, nor in a silently wrong
result. A number is taken by value: a Python, numpy or one-element tensor scalar is accepted and
returned as a Python ``float`` or ``int``, so nothing downstream sees its type. A range may have a
lower and an upper bound. This module imports nothing of ``aimc_lib``: the checks that know the
physics (time grids) live in :mod:`aimc_lib.pcm`, those that know the data set in
:mod:`aimc_lib.data`.
"""
from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

import torch


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
    """``True`` or ``False`` (not 0, 1 or a string), else ArgumentError naming ``name``."""
    if not isinstance(v, bool):
        raise ArgumentError(f"{name} must be True or False, got {v!r} ({type(v).__name__})")
    return v


def choice(name: str, v, choices) -> str:
    """One of ``choices`` (strings), else ArgumentError naming ``name`` and the choices."""
    if not isinstance(v, str) or v not in choices:
        raise ArgumentError(f"{name} must be one of {tuple(choices)}, got {v!r}")
    return v


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


def writable_folder(folder, name: str = "output") -> None:
    """Raise ArgumentError unless ``folder`` exists, is a folder and a file can be created in it."""
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
