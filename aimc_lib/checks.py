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


#: The longest value shown in an error message (a million numbers are not repeated back).
SHOWN_CHARS = 80


def shown(v, limit: int = SHOWN_CHARS) -> str:
    """``repr(v)`` for an error message, cut to ``limit`` characters (with its length when cut)."""
    try:
        text = repr(v)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(v).__name__}>"
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    n = len(v) if hasattr(v, "__len__") else None
    return text[:limit] + f"... ({n} items)" if isinstance(n, int) else text[:limit] + "..."


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
        raise ArgumentError(f"{name} must be a number in {rng}, got {shown(v)} ({type(v).__name__})")
    x = float(v)
    if (not math.isfinite(x) or (low is not None and (x < low or (low_open and x == low)))
            or (high is not None and (x > high or (high_open and x == high)))):
        raise ArgumentError(f"{name} must be a finite number in {rng}, got {shown(v)}")
    return x


def integer(name: str, v, low: int | None = None, high: int | None = None) -> int:
    """``v`` as an int in ``low..high`` (bounds inclusive), else ArgumentError; bools and floats refused."""
    rng = (f"in {low}..{high}" if low is not None and high is not None else f">= {low}" if low is not None
           else f"<= {high}" if high is not None else "")
    ok_type = (isinstance(v, numbers.Integral) and not isinstance(v, bool)) or (
        isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype.is_floating_point
        and not v.dtype.is_complex and v.dtype != torch.bool)
    if not ok_type:
        raise ArgumentError(f"{name} must be an integer {rng}, got {shown(v)} ({type(v).__name__})".replace("  ", " "))
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
        raise ArgumentError(f"{name} must be True or False, got {shown(v)} ({type(v).__name__})")
    return v


def choice(name: str, v, choices) -> str:
    """One of ``choices`` (strings), else ArgumentError naming ``name`` and the choices."""
    if not isinstance(v, str) or v not in choices:
        raise ArgumentError(f"{name} must be one of {tuple(choices)}, got {shown(v)}")
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


def resolved(p) -> Path | None:
    """``p`` with every link followed and made absolute (``None`` for a link loop or an unusable path)."""
    try:
        return Path(p).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None


def same_file(a, b) -> bool:
    """True if paths ``a`` and ``b`` are one file: the same resolved path (links followed, also for a
    file that does not exist yet) or the same existing file (hard links too)."""
    ra, rb = resolved(a), resolved(b)
    if ra is not None and ra == rb:
        return True
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


# Files this process has read as the input of a computation (data sets, checkpoints, calibration
# images): every output check compares against them, so that an output never replaces an input.
_INPUTS_READ: set[Path] = set()


def note_input(path) -> None:
    """Record that this process read ``path`` as an input (called by the loaders of data and models)."""
    r = resolved(path)
    if r is not None:
        _INPUTS_READ.add(r)


def inputs_read() -> list[Path]:
    """The files recorded by :func:`note_input`."""
    return sorted(_INPUTS_READ)


def expand_inputs(inputs) -> list[Path]:
    """The input paths of a run, a folder (a data folder) standing for itself and the files in it."""
    out = []
    for i in inputs:
        if i is None:
            continue
        out.append(Path(i))
        try:
            if Path(i).is_dir():
                out.extend(sorted(Path(i).iterdir()))
        except OSError:
            pass
    return out


def not_an_input(path, name: str, inputs=(), files_read: bool = True) -> None:
    """ArgumentError if writing ``path`` would replace an input of the run: one of ``inputs`` (files,
    or folders with their files) or (``files_read``) a file this process has read (:func:`note_input`),
    compared by resolved identity (links and hard links followed), not by name."""
    for i in [*expand_inputs(inputs), *(_INPUTS_READ if files_read else ())]:
        if same_file(path, i):
            raise ArgumentError(f"{name} {path} is also an input ({i}); writing it would destroy the input: "
                                f"choose another output name")


def output_file(path, name: str = "--out", inputs=(), force: bool = False) -> Path:
    """Check an output file before any computation: not an input (never, even with ``force``; see
    :func:`not_an_input`), not a folder, in an existing writable folder, and not an existing file
    unless ``force``."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise ArgumentError(f"{name} must be a file path, got {path!r}")
    p = Path(path)
    if resolved(p) is None:
        raise ArgumentError(f"{name} {path} cannot be resolved (a link loop?); give a plain file name")
    not_an_input(p, name, inputs)
    if p.is_dir():
        raise ArgumentError(f"{name} {path} is a folder; give a file name")
    if p.exists() and not p.is_file():
        raise ArgumentError(f"{name} {path} exists and is not a regular file (a device or a pipe); "
                            f"give a file name")
    writable_folder(p.resolve().parent if p.parent != Path("") else Path("."), name)
    if p.exists() and not force:
        raise ArgumentError(f"{name} {path} exists; pass --force to replace it, or choose another name")
    return p


class OutputBusy(ArgumentError):
    """Another process is writing the same output."""


def lock_path(output) -> Path:
    """The lock file of ``output``: ``.<name>.lock`` next to it (one lock for the output and its partial file)."""
    r = resolved(output) or Path(output).absolute()
    return r.with_name(f".{r.name}.lock")


class OutputLock:
    """Exclusive ownership of an output (and its partial file) for a run's whole life.

    An OS lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on ``.<name>.lock`` next to the
    output, taken without waiting: a second run on the same output, in this or another process,
    is refused at once with :class:`OutputBusy`. The OS drops the lock when its process ends, so
    the lock file of a crashed or killed run is stale by construction and simply taken over.
    Reentrant within one process (the command line locks, then the run it calls locks again).
    Use as a context manager, or ``acquire()`` / ``release()``.
    """

    _held: dict[Path, list] = {}  # lock file -> [fd, count], for this process

    def __init__(self, output, name: str = "--out"):
        self.output, self.name = output, name
        self.path = lock_path(output)

    def acquire(self) -> "OutputLock":
        held = OutputLock._held.get(self.path)
        if held is not None:
            held[1] += 1
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise ArgumentError(f"{self.name} {self.output}: cannot create the lock file {self.path} "
                                    f"({e.strerror or e})") from None
            if not _try_lock(fd):
                try:
                    owner = os.read(fd, 64).decode(errors="replace").strip() or "?"
                except OSError:
                    owner = "?"
                finally:
                    os.close(fd)
                raise OutputBusy(f"{self.name} {self.output} is being written by another run (pid {owner}, "
                                 f"lock {self.path}); wait for it to finish, or choose another output")
            try:  # the file we locked must still be the lock file (a finishing run removes it)
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        OutputLock._held[self.path] = [fd, 1]
        return self

    def release(self) -> None:
        held = OutputLock._held.get(self.path)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del OutputLock._held[self.path]
            try:
                os.unlink(self.path)  # while still locked: a waiting run then sees a new file
            except OSError:
                pass
            os.close(held[0])

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` exclusively without waiting; False if another open file holds the lock."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
