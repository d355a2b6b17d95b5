"""Saving and loading checkpoints safely: atomic writes, ``weights_only=True``, sha256, architecture checks."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupted, or does not fit the network."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted save never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; clear errors for missing or corrupted files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is corrupted or not a PyTorch checkpoint "
                              f"({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"checkpoint {path} holds no 'model' state dict")
    return obj


def load_into(model: nn.Module, state: dict, source: str = "checkpoint") -> nn.Module:
    """Load ``state`` into ``model``, with a clear error if the architecture does not match."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{source} does not fit this network architecture: {e}") from e
    return model
