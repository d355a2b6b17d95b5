"""Run-time switches shared by the notebooks, the tests and the CLI."""
from __future__ import annotations

import os

import torch


def fast_mode() -> bool:
    """True when ``AIMC_FAST`` is set to 1/true/yes: notebooks use small subsets and few chips."""
    return os.environ.get("AIMC_FAST", "").strip().lower() in ("1", "true", "yes", "on")


def default_device() -> str:
    """``"cuda"`` when a GPU is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sizes() -> dict:
    """How much work a notebook does: full (default) or fast (``AIMC_FAST=1``)."""
    if fast_mode():
        return {"test_images": 1000, "train_images": 2560, "chips": 2, "epochs": 1,
                "calibration_images": 500, "devices": 20_000, "live_chips": 2, "live_test_images": 1000}
    # live_*: spot checks of committed results (a few minutes on a 2-core laptop)
    return {"test_images": 10_000, "train_images": 50_000, "chips": 10, "epochs": 3,
            "calibration_images": 2000, "devices": 200_000, "live_chips": 3, "live_test_images": 2000}
