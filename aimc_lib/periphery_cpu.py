"""The periphery's work on a CPU as small compiled C functions (``periphery_cpu.c``).

PyTorch runs the DAC, the output noise and the ADC as a dozen separate passes over memory, and its
CPU generator needs 5-7 ns per Gaussian value. Two compiled paths replace them:

* **The whole DAC conv in one pass** (:func:`dac_conv`; x86-64 CPUs with AVX2 and FMA, i.e. almost
  every x86 CPU since 2013): for a few output pixels at a time, their patches' DAC levels go into a
  buffer in the L1 cache, a register-blocked product with the crossbar's weights (explicit AVX2
  FMA instructions) gives their crossbar outputs, and the output stage (gain, noise, ADC, rescaling)
  writes them to the output from there. No patch matrix is written to memory.
  Groups of 8 images run in parallel on torch's threads. Its noise is a vectorised generator:
  xoshiro256** (Blackman and Vigna) on four 64-bit lanes, turned into Gaussians by Box-Muller with
  polynomial log, sin and cos (Cephes' single-precision ones); one stream per group of images, seeded
  from a 64-bit seed drawn from the layer's ``torch.Generator`` once per layer call and the group's
  index, drawn in the output's memory order (so the number of threads does not change it).
* **Elsewhere** (other CPUs, e.g. ARM): three fused loops over chunks of a few images: the
  channel-wise abs-max, the DAC's patch matrix (scale, round, clip), and the output stage, with the
  product a PyTorch matrix product. Its noise: a ziggurat Gaussian (Marsaglia and Tsang) on
  xoshiro256**, one stream per MVM keyed by the call's seed and the MVM's index in the batch, so
  splitting a batch into chunks does not change it. This output stage also serves the FC layer.

* **Same numbers without noise**: IEEE float32 without contraction for the element-wise steps, the
  same operations in the same order as the PyTorch path, round half to even: the patch-matrix path is
  bit-identical to the PyTorch path (tested). The one-pass conv adds its products in its own order
  with FMA, so its crossbar outputs can differ from ``torch.mm``'s in the last bits (relative 1e-6);
  an output exactly on an ADC level's edge may then land one level apart (tested).
* **Noise**: other draws than the PyTorch path, the same distribution (tested: mean, std,
  Kolmogorov-Smirnov, tails); a generator state gives the same noise on every run.
* **Build**: on first use the C file is compiled with the system's C compiler (``$CC`` or ``cc``)
  into ``$AIMC_CACHE`` (default ``~/.cache/aimc_lib``) and loaded with ctypes; about a second,
  once per machine. Without a compiler, or with ``AIMC_PERIPHERY_C=0``, the library uses the
  PyTorch path (a one-line warning says why).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("periphery_cpu.c")
CFLAGS = ["-O3", "-fPIC", "-shared", "-ffp-contract=off", "-std=c99"]

_lib = None
_tried = False


def _cache_dir() -> Path:
    return Path(os.environ.get("AIMC_CACHE") or Path.home() / ".cache" / "aimc_lib")


def _compile() -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc)")
    src = SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join([cc, *CFLAGS, platform.machine()]).encode()).hexdigest()[:16]
    out = _cache_dir() / f"periphery_cpu-{key}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # compile, then move into place atomically
        tmp_so = Path(tmp) / out.name
        res = subprocess.run([cc, *CFLAGS, str(SOURCE), "-o", str(tmp_so), "-lm"], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{cc} failed: {res.stderr.strip()[:500]}")
        os.replace(tmp_so, out)
    return out


def _load():
    lib = ctypes.CDLL(str(_compile()))
    p, i64, i32, f32, u64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_float, ctypes.c_uint64
    lib.init.argtypes, lib.init.restype = [], None
    lib.normal_fill.argtypes = [p, i64, u64]
    lib.channel_abs_max.argtypes = [p, p, i64, i32]
    lib.dac_patches.argtypes = [p, p, p] + [i32] * 12 + [f32, i32]
    lib.output_stage.argtypes = [p, i64, i32, p, f32, p, f32, u64, i64, i32, i32, f32, f32]
    for f in (lib.normal_fill, lib.channel_abs_max, lib.dac_patches, lib.output_stage):
        f.restype = None
    lib.dac_conv_available.argtypes, lib.dac_conv_available.restype = [], ctypes.c_int
    lib.has_dac_conv = bool(lib.dac_conv_available())
    if lib.has_dac_conv:
        lib.dac_conv.argtypes = [p, p, p] + [i32] * 12 + [f32, f32, i32, i32, i32, f32, f32, f32, u64, i32, i32, i32,
                                                           i32, i32, f32, f32]
        lib.normal_fill_avx2.argtypes, lib.normal_fill_avx2.restype = [p, i64, u64], None
        lib.dac_conv.restype = ctypes.c_int
    lib.init()
    return lib


def lib():
    """The compiled library, or ``None`` (disabled, or no compiler: the PyTorch path is used)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        if os.environ.get("AIMC_PERIPHERY_C", "1") != "0":
            try:
                _lib = _load()
            except (OSError, RuntimeError) as e:
                warnings.warn(f"aimc_lib: the periphery's C functions are not available ({e}); "
                              "using the PyTorch path (slower)", RuntimeWarning, stacklevel=3)
    return _lib


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def _f32_contiguous(t: torch.Tensor, name: str) -> None:
    if t.dtype != torch.float32 or not t.is_contiguous() or t.device.type != "cpu":
        raise ValueError(f"{name} must be a contiguous float32 CPU tensor")


def normal(n: int, seed: int, vectorised: bool = False) -> torch.Tensor:
    """``n`` standard-normal draws from the C generator (for checking its statistics): the ziggurat of
    the patch-matrix path, or (``vectorised=True``) the Box-Muller generator of :func:`dac_conv`."""
    out = torch.empty(n)
    if vectorised:
        if not has_dac_conv():
            raise RuntimeError("the vectorised generator needs an x86-64 CPU with AVX2 and FMA")
        lib().normal_fill_avx2(_ptr(out), n, seed)
    else:
        lib().normal_fill(_ptr(out), n, seed)
    return out


def channel_abs_max(x_nhwc: torch.Tensor) -> torch.Tensor:
    """``max_c |x[n, h, w, c]|`` of a contiguous NHWC tensor, ``[N, H, W]``."""
    _f32_contiguous(x_nhwc, "x")
    out = torch.empty(x_nhwc.shape[:3])
    lib().channel_abs_max(_ptr(x_nhwc), _ptr(out), out.numel(), x_nhwc.shape[3])
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
    lib().dac_patches(_ptr(x_nhwc), _ptr(inv), _ptr(cols), n, h, w, c, ho, wo, *kernel, *stride, *padding,
                      float(half), int(clip_in))


def has_dac_conv() -> bool:
    """Whether the whole DAC conv runs as one compiled pass here (x86-64 with AVX2 and FMA)."""
    return lib() is not None and lib().has_dac_conv


#: Images per group of the compiled one-pass conv. Each group has its own noise stream (keyed by the
#: layer call's seed and the group's index), and the groups are shared out among torch's threads, so
#: the noise does not depend on the number of threads.
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


def dac_conv(x_nhwc: torch.Tensor, w_mat: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple,
             in_step: float, half: int, clip_in: bool, gain: float, out_scale: float, noise_sd: float, seed: int,
             adc: bool, clip: tuple[float, float] | None) -> torch.Tensor:
    """The conv of ``x_nhwc`` ``[n, H, W, C]`` through an abs-max DAC, the crossbar ``w_mat`` ``[kh*kw*C, Cout]``
    (rows in the patch matrix's (i, j, c) order) and the output stage, in one pass: ``[n, Ho, Wo, Cout]``.

    Per output pixel: its patch's abs-max ``s`` (1 if all zero), the DAC levels ``round(x / (s * in_step))``
    (clipped to ``+-half`` if ``clip_in``), the product with the weights in registers (AVX2 and FMA; the
    sums' rounding differs from ``torch.mm``'s in the last bits), then the steps of :func:`output_stage_`
    with ``gain``, ``noise_sd``, ``adc``, ``clip`` and the row scale ``s * out_scale``. Groups of
    :data:`IMAGES_PER_GROUP` images run in parallel on torch's threads, each with its noise stream
    seeded by ``seed`` and its index.
    """
    _f32_contiguous(x_nhwc, "x")
    n, h, w, c = x_nhwc.shape
    k, cout = w_mat.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if k != kh * kw * c:
        raise ValueError(f"dac_conv: w_mat has {k} rows, the patches of x have {kh * kw * c} values")
    from .periphery import conv_output_hw
    ho, wo = conv_output_hw(h, w, kernel, stride, padding)
    coutp = -(-cout // 8) * 8
    w_packed = torch.zeros(k, coutp)
    w_packed[:, :cout] = w_mat
    out = torch.empty(n, ho, wo, cout)
    lo, hi = clip if clip is not None else (0.0, 0.0)
    groups = -(-n // IMAGES_PER_GROUP)
    threads = max(1, min(torch.get_num_threads(), groups))
    failed = []

    def run(t: int) -> None:  # thread t: a contiguous share of the groups
        rc = lib().dac_conv(_ptr(x_nhwc), _ptr(w_packed), _ptr(out), n, h, w, c, ho, wo, kh, kw, sh, sw, ph, pw,
                            float(in_step), float(half), int(clip_in), cout, coutp, float(gain), float(out_scale),
                            float(noise_sd), seed, IMAGES_PER_GROUP, t * groups // threads,
                            (t + 1) * groups // threads, int(adc), int(clip is not None), float(lo), float(hi))
        if rc != 0:
            failed.append(t)
    _run_on_threads(run, threads)
    if failed:
        raise MemoryError("dac_conv: could not allocate its buffers")
    return out


def output_stage_(y_rows: torch.Tensor, gain: float | torch.Tensor, row_scale: torch.Tensor, noise_sd: float,
                  seed: int, adc: bool, clip: tuple[float, float] | None, row0: int = 0) -> torch.Tensor:
    """In place on ``y_rows`` ``[rows, cols]``: times ``gain`` (a number or one per row), plus
    ``noise_sd`` Gaussian noise, ADC rounding, clipping to ``clip``, times ``row_scale`` (one per row).

    The noise of each row comes from its own stream, keyed by ``seed`` and the row's index
    ``row0 + i`` in the batch: a batch split into chunks gets the same noise as in one piece.
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
    lo, hi = clip if clip is not None else (0.0, 0.0)
    lib().output_stage(_ptr(y_rows), rows, cols, None if row_gain is None else _ptr(row_gain), float(gain),
                       _ptr(row_scale), float(noise_sd), seed, row0, int(adc), int(clip is not None), float(lo),
                       float(hi))
    return y_rows
