"""Saving and loading checkpoints safely: atomic writes, ``weights_only=True``, sha256, architecture checks."""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from .checks import note_input
from .models import check_finite, check_model_state


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupted, or does not fit the network."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_sha256(state: dict) -> str:
    """sha256 of a state dict: every entry's name, dtype, shape and raw bytes, in order."""
    h = hashlib.sha256()
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"state entry {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted save never leaves half a file.

    A dict with a ``"model"`` state dict also gets ``"weights_sha256"`` (see :func:`state_sha256`),
    checked by :func:`load_state`.
    """
    path = Path(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = {**obj, "weights_sha256": state_sha256(obj["model"])}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; clear errors for missing or corrupted files.

    Every floating-point weight and buffer must be finite (no NaN/Inf). When the checkpoint carries ``"weights_sha256"`` (every checkpoint written by
    :func:`save_atomic`, e.g. by training), the weights must match it. Older checkpoints without
    it load as before: the zip records' own checks still catch truncation, and loading into a
    network checks names and shapes; the shipped models are verified against the manifest's
    file sha256 instead.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a file (did you mean {path / 'model.pt'}?)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    note_input(path)  # no output of this process may replace it
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        detail = str(e).split("\n")[0]
        if isinstance(e, pickle.UnpicklingError) and "global" in str(e):
            detail = "it holds objects other than tensors, refused for safety (weights_only=True)"
        elif isinstance(e, pickle.UnpicklingError):
            detail = "not a file written by torch.save"
        raise CheckpointError(f"checkpoint {path} is corrupted or not a PyTorch checkpoint "
                              f"({type(e).__name__}: {detail[:200]})") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise CheckpointError(f"checkpoint {path} holds no 'model' state dict")
    want = obj.get("weights_sha256")
    if want is not None:
        got = state_sha256(obj["model"])
        if got != want:
            raise CheckpointError(f"checkpoint {path}: weights do not match their sha256 (file corrupted or "
                                  f"edited): {got[:12]}... != {str(want)[:12]}...")
    check_state_finite(obj["model"], f"checkpoint {path}")
    return obj


def load_into(model: nn.Module, state: dict, source: str = "checkpoint") -> nn.Module:
    """Load ``state`` into ``model``, with a clear error if the architecture does not match or a
    parameter or buffer (BatchNorm statistics too) holds NaN or Inf, is of another dtype than the
    network's (integer or half weights would be cast silently), or is an invalid model state
    (BatchNorm variance <= 0: :func:`aimc_lib.models.check_model_state`)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds no state dict (got {type(state).__name__})")
    own = model.state_dict()
    for key, t in state.items():
        want = own.get(key)
        if isinstance(t, torch.Tensor) and isinstance(want, torch.Tensor) and t.dtype != want.dtype:
            raise CheckpointError(f"{source}: {key!r} holds {t.dtype} values; the network's {key!r} is "
                                  f"{want.dtype}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{source} does not fit this network architecture: "
                              f"{_architecture_difference(model.state_dict(), state)}") from e
    try:
        check_finite(model)
        check_model_state(model)
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from e
    return model


def _architecture_difference(want: dict, got: dict) -> str:
    """A short description of how a state dict differs from a network's (keys and shapes)."""
    def few(names):
        names = sorted(names)
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    missing, unexpected = set(want) - set(got), set(got) - set(want)
    shapes = [f"{k} {tuple(got[k].shape)} vs {tuple(want[k].shape)}" for k in sorted(set(want) & set(got))
              if isinstance(got[k], torch.Tensor) and got[k].shape != want[k].shape]
    parts = ([f"{len(missing)} missing entries ({few(missing)})"] if missing else []) + \
            ([f"{len(unexpected)} unexpected entries ({few(unexpected)})"] if unexpected else []) + \
            ([f"{len(shapes)} shape mismatches ({'; '.join(shapes[:2])}{'; ...' if len(shapes) > 2 else ''})"]
             if shapes else [])
    return "; ".join(parts) or "incompatible entries"


def check_state_finite(state: dict, source: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first floating-point entry of ``state`` that holds NaN or Inf."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{source}: {name!r} holds NaN or Inf values")
