"""Run-time switches shared by the notebooks, the tests and the CLI."""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone

import torch

from ._version import __version__


def fast_mode() -> bool:
    """True when ``AIMC_FAST`` is set to 1/true/yes: notebooks use small subsets and few chips."""
    return os.environ.get("AIMC_FAST", "").strip().lower() in ("1", "true", "yes", "on")


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sizes() -> dict:
    """How much work a notebook does: full (default) or fast (``AIMC_FAST=1``)."""
    if fast_mode():
        return {"test_images": 1000, "train_images": 1280, "chips": 2, "epochs": 1,
                "calibration_images": 500, "devices": 20_000, "live_chips": 2, "live_test_images": 500}
    # live_*: spot checks of committed results (about a minute each on a 2-core laptop)
    return {"test_images": 10_000, "train_images": 50_000, "chips": 10, "epochs": 3,
            "calibration_images": 2000, "devices": 200_000, "live_chips": 2, "live_test_images": 1000}


def device_description(device: torch.device | str) -> str:
    """Where a computation ran, in words: ``"cpu (x86_64)"`` or ``"cuda (NVIDIA H200)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.machine()})"


def strict_fp32() -> None:
    """Plain FP32 arithmetic on GPUs (no TF32), so that GPU results agree with a CPU's."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def eval_batch_size(device: torch.device | str) -> int:
    """Images per inference pass: the whole test set at once on a GPU, 1,000 on a CPU."""
    return 10_000 if torch.device(device).type == "cuda" else 1000


def provenance(device: torch.device | str = "cpu") -> dict:
    """Where and with what a result was computed: versions, machine, threads, device and UTC time.

    The one provenance record shared by results, training runs, shipped models and benchmarks.
    """
    return {"aimc_lib": __version__, "torch": str(torch.__version__), "python": platform.python_version(),
            "machine": platform.machine(), "threads": torch.get_num_threads(),
            "device": device_description(device),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
