"""CIFAR-10 as uint8 tensors, fast batch-level augmentation and normalization.

Two sources, same result:

* the ``.npz`` copy used on machines without internet (``x``: ``uint8 [N, 32, 32, 3]``,
  ``y``: ``uint8 [N]``), found through the ``AIMC_DATA`` environment variable or a path;
* torchvision's official download (``download=True``) for readers with internet.

Images are kept as ``uint8 [N, 3, 32, 32]`` tensors (about 150 MB for the training set) and
augmented whole, once per epoch, instead of image by image in a DataLoader: on a 2-core CPU
that turns a bottleneck into about one second per epoch.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checks import ArgumentError, integer, note_input, seed as check_seed

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean and std of the CIFAR-10 training set, pixel values in [0, 1].
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

N_TRAIN, N_TEST = 50_000, 10_000
#: sha256 of the raw pixel bytes (NHWC uint8), all five training batches in order.
SHA256_X_TRAIN = "47af8b02cfcfb6cdf3dbbd1969ad7f1b70f4413f6f80f437b020ee4e5bc8304a"
SHA256_X_TEST = "f9b1e2130bab680db56eb06d886f7f1ad0f1183907ceff4659d1735c890f5b04"
#: sha256 of the labels as uint8 bytes, in the same order (shuffled labels change accuracy silently).
SHA256_Y_TRAIN = "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253"
SHA256_Y_TEST = "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5"
NPZ_FILES = {"train": [f"data_batch_{i}.npz" for i in range(1, 6)], "test": ["test_batch.npz"]}


class DataError(RuntimeError):
    """CIFAR-10 is missing, incomplete or corrupted."""


@dataclass
class Split:
    """One CIFAR-10 split: ``x`` uint8 ``[N, 3, 32, 32]`` and ``y`` int64 ``[N]``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        """Validate on construction: a wrong dtype, layout or label would silently change accuracy."""
        x, y = self.x, self.y
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError(f"Split needs tensors x and y, got {type(x).__name__} and {type(y).__name__}")
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (3, 32, 32):
            raise ValueError(f"Split.x must be uint8 CIFAR-10 images [N, 3, 32, 32] (channels first), got "
                             f"{x.dtype} {list(x.shape)}; use split_from_nhwc for [N, 32, 32, 3] arrays")
        if y.dtype != torch.int64 or y.dim() != 1:
            raise ValueError(f"Split.y must be int64 labels [N], got {y.dtype} {list(y.shape)}")
        if len(x) != len(y):
            raise ValueError(f"Split.x holds {len(x)} images but Split.y {len(y)} labels")
        if len(y) == 0:
            raise ValueError("Split holds no images")
        if int(y.min()) < 0 or int(y.max()) >= len(CLASSES):
            raise ValueError(f"Split.y labels must be in 0..{len(CLASSES) - 1}, got {int(y.min())}..{int(y.max())}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0) -> "Split":
        """A class-balanced random subset of ``n`` images (``n`` a multiple of 10 is exact)."""
        n = integer("subset size", n, 1, len(self))
        seed_ = check_seed(seed)
        g = torch.Generator().manual_seed(seed_)
        per_class = -(-n // 10)
        idx = []
        for c in range(10):
            members = torch.nonzero(self.y == c).flatten()
            idx.append(members[torch.randperm(len(members), generator=g)[:per_class]])
        idx = torch.cat(idx)[:n]
        idx = idx[torch.randperm(len(idx), generator=g)]
        return Split(self.x[idx], self.y[idx])


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The local CIFAR-10 folder: ``path`` if given, else ``$AIMC_DATA``, else ``None``."""
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the CIFAR-10 path must be a folder path, got {type(path).__name__}")
    path = path if path is not None else os.environ.get("AIMC_DATA")
    return Path(path).expanduser().resolve() if path else None


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _load_npz(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in NPZ_FILES[split]:
        f = folder / name
        if not f.is_file():
            raise DataError(f"CIFAR-10 file {f} is missing. {_HOW_TO_GET}")
        note_input(f)  # no output of this process may replace it
        try:
            with np.load(f) as d:
                xs.append(d["x"])
                ys.append(d["y"])
        except Exception as e:  # zipfile.BadZipFile, EOFError, KeyError, ValueError ...
            raise DataError(f"CIFAR-10 file {f} is corrupted or truncated ({type(e).__name__}: "
                            f"{e}). Restore it from the original copy. {_HOW_TO_GET}") from e
    return np.concatenate(xs), np.concatenate(ys)


def _load_torchvision(root: Path, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as e:  # pragma: no cover - torchvision is a dependency
        raise DataError("torchvision is needed to download CIFAR-10: pip install torchvision") from e
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=download)
    except RuntimeError as e:
        raise DataError(f"CIFAR-10 not found under {root} ({e}). {_HOW_TO_GET}") from e
    base = Path(root) / "cifar-10-batches-py"
    for f in (sorted(base.iterdir()) if base.is_dir() else []):
        note_input(f)  # no output of this process may replace them
    return np.asarray(ds.data), np.asarray(ds.targets, dtype=np.uint8)


_HOW_TO_GET = ("Either set AIMC_DATA to a folder with data_batch_1..5.npz and test_batch.npz "
               "(arrays x: uint8 [N, 32, 32, 3], y: uint8 [N]), or call load_cifar10(download=True) "
               "(python -m aimc_lib ... --download) to fetch the official copy with torchvision "
               "(needs internet, about 170 MB).")


def verify(x: np.ndarray, y: np.ndarray, split: str, check_sha256: bool = True) -> None:
    """Check counts, shapes, dtypes, labels and (optionally) pixel and label checksums; raise DataError."""
    n = N_TRAIN if split == "train" else N_TEST
    if x.shape != (n, 32, 32, 3) or x.dtype != np.uint8:
        raise DataError(f"CIFAR-10 {split}: expected uint8 images of shape {(n, 32, 32, 3)}, "
                        f"got {x.dtype} {x.shape}")
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"CIFAR-10 {split}: expected {n} integer labels, got {y.dtype} of shape {y.shape}")
    if y.min() < 0 or y.max() > 9:
        raise DataError(f"CIFAR-10 {split}: labels must be in 0..9, got labels from {int(y.min())} to "
                        f"{int(y.max())}")
    counts = np.bincount(y.astype(np.int64), minlength=10)
    if not (counts == n // 10).all():
        raise DataError(f"CIFAR-10 {split}: expected {n // 10} images per class, got {counts.tolist()}")
    if check_sha256:
        want = SHA256_X_TRAIN if split == "train" else SHA256_X_TEST
        if _sha256(x) != want:
            raise DataError(f"CIFAR-10 {split}: pixel checksum mismatch (data corrupted). {_HOW_TO_GET}")
        want = SHA256_Y_TRAIN if split == "train" else SHA256_Y_TEST
        if _sha256(y.astype(np.uint8)) != want:
            raise DataError(f"CIFAR-10 {split}: label checksum mismatch (labels changed or reordered). "
                            f"{_HOW_TO_GET}")


def split_from_nhwc(x: np.ndarray, y: np.ndarray) -> Split:
    """CIFAR-10 arrays as stored (``x`` uint8 ``[N, 32, 32, 3]``, ``y`` ``[N]``) -> a :class:`Split`."""
    return Split(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y.astype(np.int64)))


_CACHE: dict = {}


def load_cifar10(split: str = "test", path: str | os.PathLike | None = None,
                 download: bool = False, check_sha256: bool = True) -> Split:
    """Load one CIFAR-10 split (``"train"`` or ``"test"``) as verified uint8 tensors.

    Looks in ``path`` or ``$AIMC_DATA`` for the ``.npz`` copy, else in ``path`` (default
    ``~/.cache/aimc_lib/cifar10``) for torchvision's files, downloading them if ``download``.
    Raises :class:`DataError` with instructions when the data cannot be found.
    """
    if split not in NPZ_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_dir(path)
    key = (split, str(folder), download)
    if key in _CACHE:
        return _CACHE[key]
    if folder is not None and (folder / NPZ_FILES[split][0]).exists():
        x, y = _load_npz(folder, split)
    elif download or (folder is not None and (folder / "cifar-10-batches-py").exists()):
        x, y = _load_torchvision(folder or Path("~/.cache/aimc_lib/cifar10").expanduser(), split, download)
    elif folder is not None:
        raise DataError(f"No CIFAR-10 found in {folder}. {_HOW_TO_GET}")
    else:
        raise DataError(f"CIFAR-10 location unknown. {_HOW_TO_GET}")
    verify(x, y, split, check_sha256)
    out = split_from_nhwc(x, y)
    _CACHE[key] = out
    return out


def normalize(x_uint8: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` -> normalized float32 on ``device``, channels_last memory format."""
    x = x_uint8.to(device, non_blocking=True).float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def augment(x_uint8: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad``-pixel zero padding and random horizontal flip, whole batch at once.

    Works on uint8 ``[N, C, H, W]``; one crop offset and one flip decision per image.
    """
    n, _, h, w = x_uint8.shape
    padded = torch.nn.functional.pad(x_uint8, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x_uint8)
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            sel = torch.nonzero((dy == oy) & (dx == ox)).flatten()
            if len(sel):
                out[sel] = padded[sel, :, oy:oy + h, ox:ox + w]
    out[flip] = out[flip].flip(-1)
    return out


def batches(split: Split, batch_size: int, device="cpu", shuffle_generator: torch.Generator | None = None,
            augment_generator: torch.Generator | None = None, drop_last: bool = False):
    """Yield normalized ``(x, y)`` mini-batches; shuffled / augmented when generators are given."""
    batch_size = integer("batch_size", batch_size, 1)
    x = augment(split.x, augment_generator) if augment_generator is not None else split.x
    n = len(split)
    order = torch.randperm(n, generator=shuffle_generator) if shuffle_generator is not None else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        yield normalize(x[idx], device), split.y[idx].to(device, non_blocking=True)


def save_split(split: Split, path: str | os.PathLike) -> None:
    """Write a split (e.g. a calibration subset) to ``path`` as ``.npz`` (``x`` uint8 NCHW, ``y``)."""
    np.savez_compressed(path, x=split.x.numpy(), y=split.y.numpy().astype(np.uint8))


def load_split(path: str | os.PathLike) -> Split:
    """Read a split written by :func:`save_split`; raises :class:`DataError` if it is unreadable."""
    note_input(path)
    try:
        with np.load(path) as d:
            x, y = d["x"], d["y"]
    except Exception as e:
        raise DataError(f"{path} is not a readable split ({type(e).__name__}: {e})") from e
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32) or y.shape != (len(x),):
        raise DataError(f"{path}: expected uint8 x [N, 3, 32, 32] and N labels, got {x.dtype} {x.shape}, {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers in 0..9, got dtype {y.dtype}")
    try:
        return Split(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
    except ValueError as e:
        raise DataError(f"{path}: {e}") from e


def calibration_batch(split: Split, n: int, seed: int = 0, augmented: bool = True) -> torch.Tensor:
    """``n`` class-balanced images of ``split``, normalized, for BatchNorm re-estimation (AdaBS).

    ``split`` is used as it is when it holds exactly ``n`` images. ``augmented`` applies the
    training augmentation (random crop and flip, seeded by ``seed``), so that the re-estimated
    statistics are those the network was trained with: un-augmented training images shift
    them, which cost our ResNet-32s about 3 points of accuracy even without any PCM.
    """
    if not isinstance(split, Split):
        raise TypeError(f"calibration images come from a Split (e.g. the training set), got {type(split).__name__}")
    n = integer("calibration_images", n, 1, len(split))
    sub = split if len(split) == n else split.subset(n, seed=seed)
    x = augment(sub.x, torch.Generator().manual_seed(seed)) if augmented else sub.x
    return normalize(x)


#: Calibration values beyond this magnitude are taken for un-normalized pixels.
CALIBRATION_ABS_MAX = 10.0


def calibration_images(x, name: str = "calibration_x") -> torch.Tensor:
    """Normalized float images ``[N, 3, H, W]`` for BatchNorm re-estimation (AdaBS).

    Refuses empty, non-float, non-finite batches and batches outside the normalized range
    (:func:`normalize` maps CIFAR-10 pixels to -2.0 ... 2.1; values beyond +-10 are
    refused): raw uint8 or 0..255 pixels, or pixels in [0, 1] that were never normalized (no
    negative value in 10 or more images), would silently give wrong BN statistics.
    """
    if not isinstance(x, torch.Tensor):
        raise ArgumentError(f"{name} must be a float tensor [N, 3, H, W] of normalized images, "
                            f"got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ArgumentError(f"{name} must hold normalized float images (aimc_lib.data.normalize), "
                            f"got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != 3 or (x.shape[0] >= 1 and tuple(x.shape[2:]) != (32, 32)):
        raise ArgumentError(f"{name} must have shape [N, 3, 32, 32] (CIFAR-10 images), got {list(x.shape)}")
    if x.shape[0] < 1:
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
