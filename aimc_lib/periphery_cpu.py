"""The periphery's work on a CPU as small compiled C functions (``periphery_cpu.c``).

PyTorch runs the DAC, the output noise and the ADC as a dozen separate passes over memory. Two
compiled paths replace them:

* **The whole DAC conv in one pass** (:func:`dac_conv`; x86-64 CPUs with AVX2 and FMA, i.e. almost
  every x86 CPU since 2013): for a few output pixels at a time, their patches' DAC levels go into a
  buffer in the L1 cache, a register-blocked product with the crossbar's weights (explicit AVX2
  FMA instructions) gives their crossbar outputs, and the output stage (gain, noise, ADC, rescaling)
  writes them to the output from there. No patch matrix is written to memory. Groups of
  :data:`IMAGES_PER_GROUP` images run in parallel on torch's threads (for speed only: the numbers do
  not depend on them).
* **Elsewhere** (other CPUs, e.g. ARM): three fused loops: the channel-wise abs-max, the DAC's patch
  matrix (scale, round, clip), and the output stage (:func:`output_stage_`), with the product a
  PyTorch matrix product. This output stage also serves the FC layer.

**Noise: the simulation's one stream** (:mod:`aimc_lib.rng`, Philox4x32-10), in C: a portable version
(plain loops the compiler vectorises), an AVX2 one (8 counters at a time, FMA) and an AVX-512 one (16,
the same numbers as AVX2), all with Cephes' polynomial log, sin and cos, all within 1e-6 of
:func:`aimc_lib.rng.normal` (tested); the fastest one the CPU has is used (:func:`isa`). An output's
noise is named by what it is, so it does not depend on threads, groups or chunks:

* a conv output (image ``n`` of the layer call, output pixel ``p = oy * Wo + ox``, channel ``c``) gets
  value ``(row0 + n, p * Cout + c)`` of the stream ``(seed, words)``: the images are the stream's rows,
  and within an image the values are in NHWC order;
* :func:`output_stage_` on ``[rows, cols]`` with ``pixels_per_image`` rows per image: row ``r`` is
  image ``r // pixels_per_image``, value ``j = (r % pixels_per_image) * cols + c`` (an FC layer:
  ``pixels_per_image = 1``, row ``r`` is stream row ``row0 + r``, ``j`` the column).

**Same numbers without noise**: IEEE float32 without contraction for the element-wise steps, the same
operations in the same order as the PyTorch path, round half to even: the patch-matrix path is
bit-identical to PyTorch ops (tested). The one-pass conv adds its products in its own order with FMA,
so its crossbar outputs can differ from ``torch.mm``'s in the last bits (relative 1e-6); an output
exactly on an ADC level's edge may then land one level apart (tested).

**A checked interface**: :data:`DECLARATIONS` is the one statement of every exported C function's
name, return type and argument types and names. The ctypes signatures come from it, and so does a C
header of prototypes, included when the C file is compiled: a C definition that disagrees with it does
not compile (tested). Calls go through it by argument name (``_call``).

**Build**: on first use the C file is compiled with the system's C compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``; about a second, once per machine) into the platform's cache directory:
``$AIMC_CACHE`` if set, else ``$XDG_CACHE_HOME/aimc_lib`` or ``~/.cache/aimc_lib`` on Linux,
``~/Library/Caches/aimc_lib`` on macOS, ``%LOCALAPPDATA%\\aimc_lib`` on Windows. The file's name is a
hash of the C source, the header, the flags and the machine, not of the compiler, so a library already
in the cache is loaded without looking for a compiler; builds of other sources are removed, and a
cached file that does not load is removed and rebuilt. Nothing prompts: on macOS the system's ``cc``
is run only if ``xcode-select -p`` finds the command-line tools (otherwise it would open an install
dialog). Without a compiler the library uses the PyTorch path (one warning line says why).
**Switch-off**: ``AIMC_PERIPHERY_C=0`` in the environment makes :func:`available` False, so the
PyTorch path is used everywhere (no warning).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from . import rng

SOURCE = Path(__file__).with_name("periphery_cpu.c")
CFLAGS = ["-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno", "-std=c99",
          "-Werror=implicit-function-declaration", "-Werror=missing-prototypes"]

#: Every exported C function, as name -> (return type, [(argument type, argument name), ...]). The ctypes
#: signatures and the C header included when compiling are both generated from it.
DECLARATIONS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "dac_conv_available": ("int32_t", []),
    "normal_fill": ("int32_t", [
        ("float *", "out"), ("int64_t", "rows"), ("int64_t", "cols"), ("uint64_t", "seed"), ("uint32_t", "c2"),
        ("uint32_t", "c3"), ("uint64_t", "row0"), ("int32_t", "isa")]),
    "isa_available": ("int32_t", []),
    "set_isa_limit": ("int32_t", [("int32_t", "limit")]),
    "channel_abs_max": ("void", [("const float *", "x"), ("float *", "out"), ("int64_t", "npix"), ("int32_t", "c")]),
    "dac_patches": ("void", [
        ("const float *", "x"), ("const float *", "inv"), ("float *", "cols"), ("int32_t", "nb"), ("int32_t", "h"),
        ("int32_t", "w"), ("int32_t", "c"), ("int32_t", "ho"), ("int32_t", "wo"), ("int32_t", "kh"),
        ("int32_t", "kw"), ("int32_t", "sh"), ("int32_t", "sw"), ("int32_t", "ph"), ("int32_t", "pw"),
        ("float", "half"), ("int32_t", "clip_in")]),
    "output_stage": ("int32_t", [
        ("float *", "y"), ("int64_t", "rows"), ("int32_t", "cols"), ("const float *", "row_gain"), ("float", "gain"),
        ("const float *", "row_scale"), ("float", "noise_sd"), ("uint64_t", "seed"), ("uint32_t", "c2"),
        ("uint32_t", "c3"), ("uint64_t", "row0"), ("int64_t", "pixels_per_image"), ("int32_t", "adc"),
        ("int32_t", "clip"), ("float", "lo"), ("float", "hi")]),
    "dac_conv": ("int32_t", [
        ("const float *", "x"), ("const float *", "w_packed"), ("float *", "out"), ("int32_t", "nb"),
        ("int32_t", "h"), ("int32_t", "w"), ("int32_t", "c"), ("int32_t", "ho"), ("int32_t", "wo"),
        ("int32_t", "kh"), ("int32_t", "kw"), ("int32_t", "sh"), ("int32_t", "sw"), ("int32_t", "ph"),
        ("int32_t", "pw"), ("float", "in_step"), ("float", "half"), ("int32_t", "clip_in"), ("int32_t", "cout"),
        ("int32_t", "coutp"), ("float", "gain"), ("float", "out_scale"), ("float", "noise_sd"), ("uint64_t", "seed"),
        ("uint32_t", "c2"), ("uint32_t", "c3"), ("uint64_t", "row0"), ("int32_t", "group_images"), ("int32_t", "g0"),
        ("int32_t", "g1"), ("int32_t", "adc"), ("int32_t", "clip"), ("float", "lo"), ("float", "hi")]),
}

_CTYPES = {"void": None, "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64, "uint32_t": ctypes.c_uint32,
           "uint64_t": ctypes.c_uint64, "float": ctypes.c_float, "float *": ctypes.c_void_p,
           "const float *": ctypes.c_void_p}

#: Integer ranges of the C integer types: ctypes would wrap a value outside them silently.
_RANGES = {"int32_t": (-2 ** 31, 2 ** 31), "int64_t": (-2 ** 63, 2 ** 63), "uint32_t": (0, 2 ** 32),
           "uint64_t": (0, 2 ** 64)}


def header(declarations: dict = DECLARATIONS) -> str:
    """The C prototypes of ``declarations`` (included when compiling ``periphery_cpu.c``)."""
    lines = ["/* Generated from aimc_lib/periphery_cpu.py's DECLARATIONS: the exported functions' prototypes. */",
             "#include <stdint.h>"]
    for name, (ret, args) in declarations.items():
        params = ", ".join(f"{t}{'' if t.endswith('*') else ' '}{a}" for t, a in args) or "void"
        lines.append(f"{ret} {name}({params});")
    return "\n".join(lines) + "\n"


# ---- build and load ----

_lib = None
_tried = False


def cache_dir() -> Path:
    """Where the compiled library is kept: ``$AIMC_CACHE``, else the platform's user cache directory."""
    if os.environ.get("AIMC_CACHE"):
        return Path(os.environ["AIMC_CACHE"])
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "aimc_lib"


def _library_name(declarations: dict = DECLARATIONS) -> str:
    """The cached library's file name: a hash of what determines it (source, header, flags, machine)."""
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), header(declarations).encode(), " ".join(CFLAGS).encode(),
                                     f"{sys.platform} {platform.machine()}".encode()])).hexdigest()[:16]
    return f"periphery_cpu-{key}{'.dll' if sys.platform == 'win32' else '.so'}"


def find_compiler() -> list[str] | None:
    """The C compiler's command (``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH), or None.

    On macOS the system's compiler is Apple's stub unless the command-line tools are installed, and
    running it opens an install dialog: it counts only if ``xcode-select -p`` succeeds (``$CC`` is
    taken as given)."""
    if os.environ.get("CC"):
        cmd = shlex.split(os.environ["CC"])
        return cmd if cmd and shutil.which(cmd[0]) else None
    found = next((p for p in map(shutil.which, ("cc", "gcc", "clang")) if p), None)
    if found is None:
        return None
    if sys.platform == "darwin":
        xcode_select = shutil.which("xcode-select")
        try:
            ok = xcode_select is not None and subprocess.run(
                [xcode_select, "-p"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if not ok:
            return None
    return [found]


def build(cc: list[str], out: Path, declarations: dict = DECLARATIONS, extra_flags: tuple = ()) -> Path:
    """Compiles ``periphery_cpu.c`` with the prototypes of ``declarations`` included into ``out`` (atomically:
    in a temporary folder beside it, then moved). Raises RuntimeError with the compiler's message.
    ``extra_flags``: e.g. ``("-DAIMC_PORTABLE",)``, the portable code only, as on an ARM CPU (for tests)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        hdr, tmp_lib = Path(tmp) / "periphery_cpu_decl.h", Path(tmp) / out.name
        hdr.write_text(header(declarations))
        try:
            res = subprocess.run([*cc, *CFLAGS, *extra_flags, "-include", str(hdr), str(SOURCE), "-o", str(tmp_lib),
                                  "-lm"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            raise RuntimeError(f"{cc[0]} could not run: {e}") from e
        if res.returncode != 0:
            raise RuntimeError(f"{cc[0]} failed: {res.stderr.strip()[:2000]}")
        os.replace(tmp_lib, out)
    return out


def _open(path: Path) -> ctypes.CDLL:
    """Loads the library at ``path`` and sets every declared function's ctypes signature."""
    lib = ctypes.CDLL(str(path))
    for name, (ret, args) in DECLARATIONS.items():
        f = getattr(lib, name)  # AttributeError: the file is not this library
        f.argtypes, f.restype = [_CTYPES[t] for t, _ in args], _CTYPES[ret]
    lib.has_dac_conv = bool(lib.dac_conv_available())
    return lib


def _remove_other_builds(keep: Path) -> None:
    for old in keep.parent.glob("periphery_cpu-*"):
        if old != keep and old.is_file():
            try:
                old.unlink()
            except OSError:  # e.g. loaded by another process on Windows: left for a later run
                pass


def _load() -> ctypes.CDLL:
    """The library from the cache, built there first if missing or unloadable (RuntimeError without a compiler)."""
    path = cache_dir() / _library_name()
    if path.is_file():  # a prebuilt library needs no compiler
        try:
            return _open(path)
        except (OSError, AttributeError):
            path.unlink(missing_ok=True)  # not a loadable build of this source: rebuilt below
    cc = find_compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc or clang; on macOS: xcode-select --install)")
    build(cc, path)
    _remove_other_builds(path)
    return _open(path)


def lib():
    """The compiled library, or ``None`` (switched off by ``AIMC_PERIPHERY_C=0``, or no compiler: the
    PyTorch path is used, with one warning line)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        if os.environ.get("AIMC_PERIPHERY_C", "1") != "0":
            try:
                _lib = _load()
            except (OSError, RuntimeError, AttributeError) as e:
                warnings.warn(f"aimc_lib: the periphery's compiled CPU functions are not available ({e}); "
                              "using the PyTorch path (slower, same numbers)", RuntimeWarning, stacklevel=3)
    return _lib


def available() -> bool:
    """Whether the compiled library is loaded (see :func:`lib`)."""
    return lib() is not None


def has_dac_conv() -> bool:
    """Whether the whole DAC conv runs as one compiled pass here (x86-64 with AVX2 and FMA)."""
    return lib() is not None and lib().has_dac_conv


def _call(name: str, **kwargs) -> int | None:
    """``name``'s C function with the arguments named as in :data:`DECLARATIONS` (all of them, integers in
    their C type's range)."""
    lib_ = lib()
    if lib_ is None:
        raise RuntimeError("the periphery's compiled CPU functions are not available (see periphery_cpu.lib)")
    args = DECLARATIONS[name][1]
    if set(kwargs) != {a for _, a in args}:
        raise TypeError(f"{name}: arguments {sorted(kwargs)} are not the declared {[a for _, a in args]}")
    values = []
    for t, a in args:
        v = kwargs[a]
        if t in _RANGES and not _RANGES[t][0] <= v < _RANGES[t][1]:
            raise ValueError(f"{name}: {a} = {v} is outside {t}'s range")
        values.append(v)
    return getattr(lib_, name)(*values)


# ---- the functions ----

def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _f32_contiguous(t: torch.Tensor, name: str) -> None:
    if t.dtype != torch.float32 or not t.is_contiguous() or t.device.type != "cpu":
        raise ValueError(f"{name} must be a contiguous float32 CPU tensor")


def _stream_args(seed, words, row0) -> dict:
    seed = rng.check_seed(seed)
    if (len(words) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= rng.MASK32
                               for v in words)):
        raise ValueError(f"words must be two integers in [0, 2^32), got {words!r}")
    if isinstance(row0, bool) or not isinstance(row0, int) or row0 < 0:
        raise ValueError(f"row0 must be an integer >= 0, got {row0!r}")
    return dict(seed=seed, c2=words[0], c3=words[1], row0=row0)


def _check_noise_sd(noise_sd: float) -> None:
    if not (math.isfinite(float(noise_sd)) and noise_sd >= 0):
        raise ValueError(f"noise_sd must be a finite number >= 0, got {noise_sd!r}")


#: The instruction sets of the compiled normals, from plain C loops (any CPU) to AVX2 and FMA and AVX-512F.
ISAS = ("portable", "avx2", "avx512")
_isa_limit = len(ISAS) - 1


def isa() -> str:
    """The instruction set of the output stages' and the one-pass conv's noise here (one of :data:`ISAS`)."""
    return ISAS[_call("set_isa_limit", limit=_isa_limit)]


@contextlib.contextmanager
def limited_isa(name: str):
    """Within the block, the noise uses at most the instruction set ``name`` (for tests and benchmarks: the
    numbers are the same up to the float rounding of log, sin and cos). The one-pass conv needs AVX2 anyway:
    its noise is AVX2's below that."""
    global _isa_limit
    old, _isa_limit = _isa_limit, ISAS.index(name)
    try:
        yield isa()
    finally:
        _isa_limit = old
        _call("set_isa_limit", limit=old)


def normal(seed: int, words: tuple[int, int], rows: int, cols: int, row0: int = 0,
           vectorised: bool | str = False) -> torch.Tensor:
    """``[rows, cols]`` standard normals of the stream, as :func:`aimc_lib.rng.normal` (up to the float
    rounding of log, sin and cos): the portable C version; ``vectorised=True``: the fastest vectorised one
    this CPU has; ``"avx2"`` or ``"avx512"``: that one."""
    if rows < 0 or cols < 0:
        raise ValueError(f"normal: rows and cols must be >= 0, got {rows}, {cols}")
    if vectorised is True:
        level = _call("isa_available")
        if level < 1:
            raise RuntimeError("the vectorised generator needs an x86-64 CPU with AVX2 and FMA")
    else:
        level = ISAS.index(vectorised) if isinstance(vectorised, str) else 0
    out = torch.empty(rows, cols)
    if _call("normal_fill", out=_ptr(out), rows=rows, cols=cols, isa=level, **_stream_args(seed, words, row0)) != 0:
        raise RuntimeError(f"this CPU has no {ISAS[level]} (it has up to {ISAS[_call('isa_available')]})")
    return out


def channel_abs_max(x_nhwc: torch.Tensor) -> torch.Tensor:
    """``max_c |x[n, h, w, c]|`` of a contiguous NHWC tensor, ``[N, H, W]``."""
    _f32_contiguous(x_nhwc, "x")
    out = torch.empty(x_nhwc.shape[:3])
    _call("channel_abs_max", x=_ptr(x_nhwc), out=_ptr(out), npix=out.numel(), c=x_nhwc.shape[3])
    return out


def dac_patches(x_nhwc: torch.Tensor, inv: torch.Tensor, cols: torch.Tensor, kernel: tuple, stride: tuple,
                padding: tuple, half: int, clip_in: bool) -> None:
    """Writes the DAC levels of every patch of ``x_nhwc`` ``[n, H, W, C]`` into ``cols`` ``[n, Ho, Wo, kh*kw, C]``.

    ``inv`` ``[n, Ho, Wo]``: each patch's ``1 / (s * step)``.
    """
    for t, name in ((x_nhwc, "x"), (inv, "inv"), (cols, "cols")):
        _f32_contiguous(t, name)
    n, h, w, c = x_nhwc.shape
    ho, wo = inv.shape[1:]
    if cols.numel() != n * ho * wo * kernel[0] * kernel[1] * c or inv.shape[0] != n:
        raise ValueError("dac_patches: shapes of x, inv and cols do not match")
    _call("dac_patches", x=_ptr(x_nhwc), inv=_ptr(inv), cols=_ptr(cols), nb=n, h=h, w=w, c=c, ho=ho, wo=wo,
          kh=kernel[0], kw=kernel[1], sh=stride[0], sw=stride[1], ph=padding[0], pw=padding[1], half=float(half),
          clip_in=int(clip_in))


def output_stage_(y_rows: torch.Tensor, gain: float | torch.Tensor, row_scale: torch.Tensor, noise_sd: float,
                  seed: int, words: tuple[int, int], row0: int, pixels_per_image: int, adc: bool,
                  clip: tuple[float, float] | None) -> torch.Tensor:
    """In place on ``y_rows`` ``[rows, cols]``: times ``gain`` (a number or one per row), plus ``noise_sd``
    times the stream's normals, ADC rounding (``adc``), clipping to ``clip``, times ``row_scale`` (one per row).

    ``y_rows`` holds whole images of ``pixels_per_image`` rows each (a conv's ``Ho * Wo`` output pixels, 1 for
    an FC layer): row ``r``'s noise is values ``(r % pixels_per_image) * cols + c`` of stream row
    ``row0 + r // pixels_per_image`` of ``(seed, words)``. So a batch split into chunks of whole images
    (``row0`` the chunk's first image) gets the same noise as in one piece.
    """
    _f32_contiguous(y_rows, "y")
    _f32_contiguous(row_scale, "row_scale")
    rows, cols = y_rows.shape
    row_gain = None
    if isinstance(gain, torch.Tensor):
        _f32_contiguous(gain, "gain")
        row_gain, gain = gain, 1.0
    if row_scale.numel() != rows or (row_gain is not None and row_gain.numel() != rows):
        raise ValueError("output_stage_: one gain and one scale per row")
    if isinstance(pixels_per_image, bool) or not isinstance(pixels_per_image, int) or pixels_per_image < 1 \
            or rows % pixels_per_image:
        raise ValueError(f"output_stage_: {rows} rows are not whole images of pixels_per_image = {pixels_per_image}")
    _check_noise_sd(noise_sd)
    lo, hi = clip if clip is not None else (0.0, 0.0)
    rc = _call("output_stage", y=_ptr(y_rows), rows=rows, cols=cols, row_gain=_ptr(row_gain), gain=float(gain),
               row_scale=_ptr(row_scale), noise_sd=float(noise_sd), pixels_per_image=pixels_per_image, adc=int(adc),
               clip=int(clip is not None), lo=float(lo), hi=float(hi), **_stream_args(seed, words, row0))
    if rc != 0:
        raise MemoryError("output_stage_: could not allocate its noise buffer")
    return y_rows


#: Images per group of the compiled one-pass conv, the unit shared out among torch's threads. The
#: noise of an output is named by its image, pixel and channel, so it does not depend on them.
IMAGES_PER_GROUP = 8

_pool: ThreadPoolExecutor | None = None


def _run_on_threads(fn, threads: int) -> None:
    """``fn(0)`` in the calling thread and ``fn(1)`` .. ``fn(threads - 1)`` on a pool (ctypes releases the GIL)."""
    global _pool
    if threads > 1 and (_pool is None or _pool._max_workers < threads - 1):
        _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="aimc-periphery")
    others = [_pool.submit(fn, t) for t in range(1, threads)]
    fn(0)
    for f in others:
        f.result()  # re-raises a worker's exception here


def conv_output_hw(h: int, w: int, kernel: tuple, stride: tuple, padding: tuple) -> tuple[int, int]:
    """Height and width of a convolution's output (zero padding, no dilation)."""
    return ((h + 2 * padding[0] - kernel[0]) // stride[0] + 1, (w + 2 * padding[1] - kernel[1]) // stride[1] + 1)


def dac_conv(x_nhwc: torch.Tensor, w_mat: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple,
             in_step: float, half: int, clip_in: bool, gain: float, out_scale: float, noise_sd: float, seed: int,
             words: tuple[int, int], row0: int, adc: bool, clip: tuple[float, float] | None) -> torch.Tensor:
    """The conv of ``x_nhwc`` ``[n, H, W, C]`` through an abs-max DAC, the crossbar ``w_mat`` ``[kh*kw*C, Cout]``
    (rows in the patch matrix's (i, j, c) order) and the output stage, in one pass: ``[n, Ho, Wo, Cout]``.

    Per output pixel: its patch's abs-max ``s`` (1 if all zero), the DAC levels ``round(x / (s * in_step))``
    (clipped to ``+-half`` if ``clip_in``), the product with the weights in registers (AVX2 and FMA; the
    sums' rounding differs from ``torch.mm``'s in the last bits), then the steps of :func:`output_stage_`
    with ``gain``, ``noise_sd``, ``adc``, ``clip`` and the row scale ``s * out_scale``. Output (image ``n``,
    pixel ``p = oy * Wo + ox``, channel ``c``) gets the noise value ``(row0 + n, p * Cout + c)`` of the
    stream ``(seed, words)``. Groups of :data:`IMAGES_PER_GROUP` images run in parallel on torch's threads.
    """
    _f32_contiguous(x_nhwc, "x")
    if not has_dac_conv():
        raise RuntimeError("dac_conv needs the compiled library on an x86-64 CPU with AVX2 and FMA")
    n, h, w, c = x_nhwc.shape
    k, cout = w_mat.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if k != kh * kw * c:
        raise ValueError(f"dac_conv: w_mat has {k} rows, the patches of x have {kh * kw * c} values")
    _check_noise_sd(noise_sd)
    ho, wo = conv_output_hw(h, w, kernel, stride, padding)
    coutp = -(-cout // 8) * 8
    w_packed = torch.zeros(k, coutp)
    w_packed[:, :cout] = w_mat
    out = torch.empty(n, ho, wo, cout)
    lo, hi = clip if clip is not None else (0.0, 0.0)
    groups = -(-n // IMAGES_PER_GROUP)
    threads = max(1, min(torch.get_num_threads(), groups))
    fixed = dict(x=_ptr(x_nhwc), w_packed=_ptr(w_packed), out=_ptr(out), nb=n, h=h, w=w, c=c, ho=ho, wo=wo, kh=kh,
                 kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, in_step=float(in_step), half=float(half), clip_in=int(clip_in),
                 cout=cout, coutp=coutp, gain=float(gain), out_scale=float(out_scale), noise_sd=float(noise_sd),
                 group_images=IMAGES_PER_GROUP, adc=int(adc), clip=int(clip is not None), lo=float(lo), hi=float(hi),
                 **_stream_args(seed, words, row0))
    failed = []

    def run(t: int) -> None:  # thread t: a contiguous share of the groups
        rc = _call("dac_conv", g0=t * groups // threads, g1=(t + 1) * groups // threads, **fixed)
        if rc != 0:
            failed.append(rc)
    _run_on_threads(run, threads)
    if failed:
        raise MemoryError("dac_conv: could not allocate its buffers")
    return out
