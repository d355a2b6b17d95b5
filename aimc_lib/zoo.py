"""The model zoo: shipped pretrained networks (verified by sha256), their training logs and results.

``aimc_lib/weights/manifest.json`` lists each model: file, sha256, architecture, training recipe,
epochs, test accuracy, date and torch version. :func:`publish` adds a finished training run.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from .checkpoints import CheckpointError, load_into, load_state, sha256_file
from .models import resnet
from .checks import device as check_device
from .result_files import load_results

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
#: The committed accuracy-vs-time results and figure, shipped with the package (also for Colab).
RESULTS_DIR = Path(__file__).parent / "results"


def manifest() -> dict:
    """The manifest of shipped models (empty if none have been published yet)."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def available() -> list[str]:
    return sorted(manifest())


def _build(config: dict) -> nn.Module:
    return resnet(config.get("depth", 32), tuple(config.get("widths", (16, 28, 56))))


def pretrained(name: str, device: str = "cpu") -> nn.Module:
    """A shipped model by name (e.g. ``"resnet32-fp32"``, ``"resnet32-custom"``), in eval mode.

    Verifies the file's sha256 against the manifest and loads it with ``weights_only=True``.
    """
    entries = manifest()
    if name not in entries:
        raise KeyError(f"no pretrained model {name!r}; available: {available() or 'none yet'}")
    entry = entries[name]
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise CheckpointError(f"pretrained file {path} is missing; reinstall aimc_lib")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise CheckpointError(f"pretrained file {path} is corrupted: sha256 {digest} != {entry['sha256']}")
    model = load_into(_build(entry["config"]), load_state(path)["model"], str(path))
    return model.to(device).to(memory_format=torch.channels_last).eval()


def training_log(name: str) -> dict:
    """The per-epoch training log (config and epochs) of a shipped model."""
    entries = manifest()
    if name not in entries:
        raise KeyError(f"no pretrained model {name!r}; available: {available() or 'none yet'}")
    return json.loads((WEIGHTS_DIR / entries[name]["log"]).read_text())


def results(name: str) -> dict:
    """A committed accuracy-vs-time result, e.g. ``results("resnet32-custom_gdc")``."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        have = sorted(p.stem for p in RESULTS_DIR.glob("*.json")) if RESULTS_DIR.exists() else []
        raise KeyError(f"no committed result {name!r}; available: {have or 'none yet'}")
    return load_results(path)


def load_model(name_or_path: str, device: str = "cpu") -> nn.Module:
    """A pretrained model by name, or a ``model.pt`` / ``checkpoint.pt`` written by training."""
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"model must be a pretrained name or a path, got {type(name_or_path).__name__}")
    device = str(check_device(device))
    if str(name_or_path) in manifest():
        return pretrained(str(name_or_path), device)
    path = Path(name_or_path)
    if not path.exists():
        raise CheckpointError(f"{str(name_or_path)!r} is neither a pretrained model ({available()}) nor a file")
    ck = load_state(path)
    meta = ck.get("meta") if isinstance(ck.get("meta"), dict) else {}
    config = meta.get("config") or ck.get("config") or {}
    try:
        net = _build(config)
    except (TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: its recorded architecture {config!r} is not valid ({e})") from e
    model = load_into(net, ck["model"], str(path))
    return model.to(device).to(memory_format=torch.channels_last).eval()


def publish(run_dir, name: str, test_accuracy: float, recipe: str, weights_dir=None,
            hardware: str | None = None) -> dict:
    """Copy ``run_dir/model.pt`` into the package (or ``weights_dir``) as ``name``, record it in the manifest.

    ``hardware`` (e.g. ``"cpu (x86_64), 2 threads"``) defaults to what training recorded.
    """
    src = Path(run_dir) / "model.pt"
    meta = load_state(src)["meta"]
    weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    manifest_path = weights_dir / "manifest.json"
    weights_dir.mkdir(parents=True, exist_ok=True)
    dst = weights_dir / f"{name}.pt"
    # Store the weights only (no optimizer state), half the size of a checkpoint.
    torch.save({"model": load_state(src)["model"]}, dst)
    # The per-epoch training log travels with the weights (the book plots it, also in Colab).
    log_file = weights_dir / f"{name}.log.json"
    shutil.copyfile(Path(run_dir) / "log.json", log_file)
    entry = {"file": dst.name, "sha256": sha256_file(dst), "log": log_file.name, "config": meta["config"], "recipe": recipe,
             "epochs": meta["epochs"], "test_accuracy": test_accuracy,
             "train_seconds": meta["train_seconds"], "threads": meta.get("threads"),
             "hardware": hardware or meta.get("hardware", "not recorded"),
             "torch": meta["torch"], "aimc_lib": meta["aimc_lib"],
             "date": datetime.now(timezone.utc).date().isoformat()}
    entries = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries[name] = entry
    manifest_path.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entry
