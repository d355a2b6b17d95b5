"""Long accuracy-vs-time runs keep their work: finished chips saved as they go, resumed after an interrupt.

:func:`aimc_lib.experiments.accuracy_vs_time` with ``results_path="x.json"`` writes, after each
finished chip, ``x.json.partial.json``: a fingerprint of every argument that changes the numbers
(:meth:`aimc_lib.runs.DriftRun.fingerprint_parts`: model weights, test images and labels, time
grid, compensation, PCM parameters, periphery, first seed, calibration images, batch size,
compile, device) and the finished chips' rows. Running again
with the same arguments skips the finished chips (chip k still uses seed + k, so the result is
bit-identical to an uninterrupted run); different arguments are refused. The number of chips is
not part of the fingerprint: a run can be extended to more chips. When the run finishes, the
result goes to ``x.json`` and the partial file is removed. Every write is atomic.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from .checkpoints import state_sha256
from .result_files import check_result, load_results, save_results
from .checks import ArgumentError, not_an_input, resolved, writable_folder

PARTIAL_SUFFIX = ".partial.json"
#: A run estimated to take longer than this (s) gets a warning with the estimate.
LONG_RUN_S = 3600.0


class ResumeError(ValueError):
    """A partial results file belongs to a run with different arguments, or is unreadable."""


def partial_path(results_path) -> Path:
    """Where the finished chips of a run writing ``results_path`` are kept until it finishes."""
    return Path(str(results_path) + PARTIAL_SUFFIX)


def _digest(v) -> str | object:
    if isinstance(v, nn.Module):
        return state_sha256(v.state_dict())
    if isinstance(v, torch.Tensor):
        t = v.detach().cpu().contiguous()
        return hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode()
                              + t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
    return v


def fingerprint(**parts) -> str:
    """sha256 of a run's arguments (modules and tensors by content, the rest as JSON)."""
    text = json.dumps({k: _digest(v) for k, v in sorted(parts.items())}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_results_path(results_path, overwrite: bool = False) -> Path:
    """Check where a run will write its result, before any chip: a file path (its folder is created),
    neither it nor its partial file an input of this process (a data file, a checkpoint: by resolved
    identity, see :func:`aimc_lib.checks.not_an_input`), and, if it exists, an accuracy-vs-time result
    (which a finished run may replace), never another kind of file unless ``overwrite`` (the command
    line's ``--force``)."""
    if not isinstance(results_path, (str, os.PathLike)) or not str(results_path):
        raise ArgumentError(f"results_path must be a file path or None, got {results_path!r}")
    path = Path(results_path)
    if resolved(path) is None:
        raise ArgumentError(f"results_path {results_path} cannot be resolved (a link loop?); give a plain file name")
    not_an_input(path, "results_path", ())
    not_an_input(partial_path(path), "results_path's partial file", ())
    if path.is_dir():
        raise ArgumentError(f"results_path {results_path} is a folder; give a file name")
    if path.exists() and not overwrite:
        try:
            load_results(path)
        except (ValueError, OSError) as e:
            raise ArgumentError(f"results_path {results_path} exists and is not an accuracy-vs-time result "
                                f"({' '.join(str(e).split())[:200]}); refusing to replace it: choose another "
                                f"name") from None
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)  # as save_results does
    except OSError as e:
        blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
        raise ArgumentError(f"results_path: {blocking} is not a folder" if blocking else
                            f"results_path: cannot create folder {folder} ({e.strerror or e})") from None
    writable_folder(folder, "results_path")  # before the first chip, not after it
    return path


class ChipLog:
    """The finished chips of one run (rows of accuracies, one per time), saved after each chip.

    ``results_path=None``: nothing is saved (and nothing hashed). Otherwise an existing partial
    file with the same fingerprint is resumed, one with another fingerprint refused.
    """

    def __init__(self, results_path, n_times: int, overwrite: bool = False, **fingerprint_parts):
        self.rows: list[list[float]] = []
        self.seconds = 0.0
        self.path = None if results_path is None else partial_path(results_path)
        self.results_path = None if results_path is None else check_results_path(results_path, overwrite)
        if self.path is None:
            return
        self.fingerprint = fingerprint(**fingerprint_parts)
        self.n_times = n_times
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
                rows, fp = saved["rows"], saved["fingerprint"]
                ok = isinstance(rows, list) and all(
                    isinstance(r, list) and len(r) == n_times and all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 100 for x in r)
                    for r in rows)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ResumeError(f"{self.path} (the saved chips of an interrupted run) is unreadable "
                                  f"({type(e).__name__}); delete it to start over") from None
            if fp != self.fingerprint or not ok:
                if fp == self.fingerprint:
                    raise ResumeError(f"{self.path} (the saved chips of an interrupted run) holds rows that are "
                                      f"not {n_times} accuracies in [0, 100] each (edited or corrupted); delete "
                                      f"it (--force on the command line) to start over")
                raise ResumeError(f"{self.path} holds chips of an interrupted run with different arguments "
                                  f"(model, data, times, compensation, PCM parameters, seed, ...); rerun it "
                                  f"with its own arguments to finish it, or delete it (--force on the "
                                  f"command line) to start over")
            self.rows = [[float(x) for x in r] for r in rows]
            self.seconds = float(saved.get("seconds", 0.0))

    @property
    def n_done(self) -> int:
        return len(self.rows)

    def done(self, k: int) -> bool:
        """True if chip ``k`` was finished by an earlier, interrupted call."""
        return k < len(self.rows)

    def add(self, k: int, row, seconds: float = 0.0) -> None:
        """Record finished chip ``k`` (chips finish in order) and save the log atomically."""
        if k != len(self.rows):
            raise RuntimeError(f"chip {k} finished out of order (have {len(self.rows)})")
        self.rows.append([float(x) for x in row])
        self.seconds += seconds
        if self.path is not None:
            save_results({"fingerprint": self.fingerprint, "rows": self.rows,
                          "seconds": round(self.seconds, 1)}, self.path)

    def finish(self, res: dict) -> dict:
        """Check the final result (finite, percentages, mean and std agreeing with the chips: a bad
        number is an error naming it, never a file), write it to ``results_path`` (if any), remove the
        partial file; return ``res``."""
        check_result(res, "the result of this run")
        if self.results_path is not None:
            save_results(res, self.results_path)
            self.path.unlink(missing_ok=True)
        return res


def estimate_seconds(runner, test, batch_size: int, n_points: int, accuracy) -> float:
    """Rough duration (s) of ``n_points`` evaluations of ``runner`` on ``test``, timed on 100 images
    (a small probe, so that short runs do not pay for their own estimate)."""
    probe = min(len(test), batch_size, 100)
    t0 = time.perf_counter()
    accuracy(runner, type(test)(test.x[:probe], test.y[:probe]), probe)
    per_image = (time.perf_counter() - t0) / probe
    return per_image * len(test) * n_points


def format_duration(seconds: float) -> str:
    """A duration in words: minutes, hours, or days (from two days on)."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


DRIFT_ADVICE = "fewer chips, times or test images (test_subset) make it shorter, and a results path lets it resume"


def warn_if_long(seconds: float, n_points: int, threshold_s: float = LONG_RUN_S,
                 what: str = "chip x time evaluations", advice: str = DRIFT_ADVICE) -> None:
    """A warning with the estimate when a run (``n_points`` of ``what``) would take longer than ``threshold_s``."""
    if math.isfinite(seconds) and seconds > threshold_s:
        warnings.warn(f"this run ({n_points} {what}) will take about {format_duration(seconds)} on this "
                      f"machine; {advice}", stacklevel=3)
