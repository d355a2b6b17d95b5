"""One counter-based random stream for the whole simulation: Philox4x32-10, in plain integer ops.

A chip's random draws (programming noise, drift exponents, read noise, the periphery's output
noise) must be the same numbers on every machine: with PyTorch or a compiled backend, on a CPU or
a GPU. A sequential generator cannot promise that (each backend has its own, and a draw depends on
how many came before). A *counter-based* generator can: a draw is a pure function of a key and a
counter, ``bits = philox(key, counter)``, so each draw is named by what it belongs to, not by when
it was made. Philox4x32-10 (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3")
is the one cuRAND and Triton's ``tl.randn`` use; Random123's known-answer vectors pin it (tested).

**How a draw is named.** The key is the 64-bit ``seed`` (``k0`` its low 32 bits, ``k1`` its high
ones). The counter has four 32-bit words ``(c0, c1, c2, c3)``:

* ``c2, c3``: the *stream*, e.g. which chip read, which layer, which kind of draw
  (:func:`stream`);
* ``c1``: the *row*, e.g. which image of an evaluation (counted from the read's first image);
* ``c0``: the block of four values within the row: value ``j`` of a row is lane ``j % 4`` of the
  block ``c0 = j // 4``.

**From bits to a standard normal.** A block's four 32-bit words ``x0..x3`` give four normals by
Box-Muller on two pairs, in float32: ``u1 = ((x >> 8) + 1) 2^-24`` in (0, 1], ``u2 = (x' >> 8)
2^-24`` in [0, 1) (both exact in float32), ``r = sqrt(-2 ln u1)``, ``theta = 2 pi u2``; lanes
0 and 1 are ``r cos theta, r sin theta`` of ``(x0, x1)``, lanes 2 and 3 the same of ``(x2, x3)``.
The integer stream is bitwise identical on every backend; the normals agree up to the float32
rounding of log, sin and cos (about 1e-7 relative).

The reference below uses int64 tensors only, so it runs unchanged on a CPU or a GPU. The compiled backends
(:mod:`aimc_lib.periphery_cpu`, :mod:`aimc_lib.periphery_triton`) implement the same function.
"""
from __future__ import annotations

import math

import torch

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
MASK32 = 0xFFFFFFFF

#: The name of this stream in result files' metadata.
STREAM_NAME = "philox4x32-10"

#: The random streams a chip may use, only this one. Results made before it, by aimc_lib 0.1.0, drew
#: from a sequential CPU generator (``"torch-cpu"``); that release re-derives them.
STREAMS = (STREAM_NAME,)


def check_stream(name: str) -> str:
    """One of :data:`STREAMS`, else a ValueError naming them."""
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; choose one of {STREAMS}")
    return name


#: Kinds of draw (the top byte of the stream word ``c3``).
PROGRAMMING, DRIFT_EXPONENT, READ_NOISE, OUTPUT_NOISE, READOUT_NOISE = 1, 2, 3, 4, 5

TWO_PI_F32 = float(torch.tensor(2 * math.pi, dtype=torch.float32))


def check_seed(seed) -> int:
    """A seed is an integer in [0, 2^64) (numpy and one-element tensor integers are accepted by value)."""
    if isinstance(seed, torch.Tensor) and seed.numel() == 1 and not seed.is_floating_point():
        seed = seed.item()
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise ValueError(f"seed must be an integer in [0, 2^64), got {seed!r}")
    seed = int(seed.__index__())
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2^64), got {seed}")
    return seed


def stream(kind: int, layer: int = 0, sub: int = 0, read: int = 0) -> tuple[int, int]:
    """The stream words ``(c2, c3)`` of a kind of draw: ``c2 = read`` (the chip's read index, 0 for
    programming), ``c3 = kind << 24 | layer << 8 | sub`` (``sub``: e.g. 0 for the G+ device, 1 for G-)."""
    for name, value, top in (("kind", kind, 255), ("layer", layer, 2 ** 16 - 1), ("sub", sub, 255),
                             ("read", read, MASK32)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ValueError(f"rng.stream: {name} must be an integer in [0, {top}], got {value!r}")
    return read, (kind << 24) | (layer << 8) | sub


def _mulhilo(m: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32-bit words of ``m * b`` (``m`` a 32-bit constant, ``b`` int64 in [0, 2^32)).

    The 64-bit product may exceed int64's range; PyTorch's int64 products wrap modulo 2^64 on CPUs
    and GPUs (two's complement), so its bits are the unsigned product's: the high word is an
    arithmetic shift masked to 32 bits. Random123's known answers pin this on every machine (tests).
    """
    p = b * m
    return (p >> 32) & MASK32, p & MASK32


def philox4x32(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, seed: int,
               rounds: int = PHILOX_ROUNDS) -> tuple[torch.Tensor, ...]:
    """Philox4x32 of counters ``(c0, c1, c2, c3)`` (int64 tensors in [0, 2^32), broadcastable) under the
    key ``seed`` (64 bits): four int64 tensors of 32-bit words."""
    k0, k1 = seed & MASK32, (seed >> 32) & MASK32
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _box_muller(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u1 = ((a >> 8) + 1).to(torch.float32) * 2.0 ** -24
    u2 = (b >> 8).to(torch.float32) * 2.0 ** -24
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = u2 * TWO_PI_F32
    return r * torch.cos(theta), r * torch.sin(theta)


def uint32_blocks(seed: int, words: tuple[int, int], rows: int, blocks: int, row0: int = 0,
                  device=None) -> torch.Tensor:
    """The raw stream: ``[rows, blocks, 4]`` int64 words in [0, 2^32) of counters ``(c0 = block,
    c1 = row0 + row, words)``."""
    seed = check_seed(seed)
    c0 = torch.arange(blocks, dtype=torch.int64, device=device).view(1, -1)
    c1 = torch.arange(row0, row0 + rows, dtype=torch.int64, device=device).view(-1, 1) & MASK32
    c2 = torch.full((1, 1), words[0] & MASK32, dtype=torch.int64, device=device)
    c3 = torch.full((1, 1), words[1] & MASK32, dtype=torch.int64, device=device)
    c0, c1 = torch.broadcast_tensors(c0, c1)
    return torch.stack(philox4x32(c0, c1, c2.expand_as(c0), c3.expand_as(c0), seed), dim=-1)


#: Counters per chunk on a CPU, so that the chunk's words stay in the cache through Philox's ten
#: rounds (about 2.5x faster than whole tensors at a hundred images of ResNet-32 outputs).
CPU_CHUNK_BLOCKS = 1 << 16


def normal(seed: int, words: tuple[int, int], rows: int, cols: int, row0: int = 0, device=None) -> torch.Tensor:
    """``[rows, cols]`` float32 standard normals: value ``(r, j)`` is lane ``j % 4`` of the block
    ``(c0 = j // 4, c1 = row0 + r, c2, c3 = words)`` under the key ``seed`` (module docstring)."""
    seed = check_seed(seed)
    if rows < 0 or cols < 0:
        raise ValueError(f"rng.normal: rows and cols must be >= 0, got {rows}, {cols}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    blocks = -(-cols // 4)
    out = torch.empty((rows, blocks, 4), dtype=torch.float32, device=device)
    flat = out.view(-1, 4)
    total = rows * blocks
    chunk = CPU_CHUNK_BLOCKS if device.type == "cpu" else max(total, 1)
    c2 = words[0] & MASK32
    c3 = words[1] & MASK32
    for start in range(0, total, chunk):
        index = torch.arange(start, min(total, start + chunk), dtype=torch.int64, device=device)
        c1 = (index // blocks + row0) & MASK32
        c0 = index % blocks
        x0, x1, x2, x3 = philox4x32(c0, c1, torch.full_like(c0, c2), torch.full_like(c0, c3), seed)
        part = flat[start:start + len(index)]
        part[:, 0], part[:, 1] = _box_muller(x0, x1)
        part[:, 2], part[:, 3] = _box_muller(x2, x3)
    out = out.view(rows, blocks * 4)
    return out if blocks * 4 == cols else out[:, :cols].contiguous()


def normal_like(t: torch.Tensor, seed: int, words: tuple[int, int]) -> torch.Tensor:
    """Standard normals of ``t``'s shape and device: ``t`` seen as one row of ``t.numel()`` values
    (row-major order), e.g. one per device of a crossbar."""
    return normal(seed, words, 1, t.numel(), device=t.device).reshape(t.shape)


class Stream:
    """One stream of the simulation: a key ``seed`` and the stream words ``(c2, c3)`` (see :func:`stream`).

    ``Stream(seed, kind, layer=..., sub=..., read=...)``; :meth:`normal` draws its rows.
    """

    __slots__ = ("seed", "words")

    def __init__(self, seed: int, kind: int, layer: int = 0, sub: int = 0, read: int = 0):
        self.seed = check_seed(seed)
        self.words = stream(kind, layer, sub, read)

    def normal(self, rows: int, cols: int, row0: int = 0, device=None) -> torch.Tensor:
        """Rows ``row0 .. row0 + rows - 1`` of this stream, ``cols`` values each (:func:`normal`)."""
        return normal(self.seed, self.words, rows, cols, row0, device)

    def normal_like(self, t: torch.Tensor) -> torch.Tensor:
        """Standard normals of ``t``'s shape and device, ``t`` seen as one row (:func:`normal_like`)."""
        return normal_like(t, self.seed, self.words)

    def __eq__(self, other):
        return isinstance(other, Stream) and (self.seed, self.words) == (other.seed, other.words)

    def __hash__(self):
        return hash((self.seed, self.words))

    def __repr__(self):
        return f"Stream(seed={self.seed}, words={self.words})"
