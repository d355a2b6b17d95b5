"""Accuracy-vs-time result files: writing, reading, tables, and the list of committed results.

A result is a JSON dict with ``times_s``, ``mean``, ``std`` (over chips), ``per_chip`` and
``meta`` (model, compensation, PCM parameters, seeds, provenance), as written by
:func:`aimc_lib.experiments.accuracy_vs_time`.
"""
from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import numpy as np

from .times import REPORT_TIMES_S

#: The committed results shipped in ``aimc_lib/results`` as (model, compensation); file ``{model}_{compensation}.json``.
COMMITTED_RESULTS = [("resnet32-fp32", "gdc"), ("resnet32-custom", "gdc"), ("resnet32-custom", "none"),
                     ("resnet32-custom", "adabs"), ("resnet32-fp32", "none")]

REQUIRED_KEYS = ("times_s", "mean", "std", "per_chip", "meta")


def result_name(model: str, compensation: str) -> str:
    """File stem of a committed result, e.g. ``"resnet32-custom_gdc"``."""
    return f"{model}_{compensation}"


def save_results(res: dict, path) -> None:
    """Write a result (or any JSON-ready dict: a run's partial file, a training log, a study) as JSON,
    creating the folder, via a temporary file so that no half file is ever left: the package's one
    atomic JSON writer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(path)


def load_results(path) -> dict:
    """Read a result written by :func:`save_results`; a clear error naming the file if it is not one.

    Checks the structure: a JSON object with ``times_s`` (numbers), ``mean`` and ``std`` (one
    number per time), ``per_chip`` (one row of numbers per chip, one per time) and ``meta`` (an
    object with ``n_chips`` equal to the number of rows).
    """
    path = Path(path)
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13
        raise ValueError(f"result file {path} is a symbolic link loop") from None
    except OSError as e:
        raise ValueError(f"result file {path} is a symbolic link loop" if e.errno == errno.ELOOP else
                         f"result file {path} does not exist") from None
    if path.is_dir():
        raise ValueError(f"result file {path} is a folder; give the JSON file written by drift")
    if not path.is_file():
        raise ValueError(f"result file {path} is not a regular file")
    try:
        res = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"result file {path} cannot be read ({e.strerror or type(e).__name__})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a JSON result file ({type(e).__name__}: {str(e)[:120]})") from None
    check_result(res, str(path))
    return res


def _numbers(v) -> bool:
    """A list of finite numbers (JSON has no NaN or Inf, but Python's reader takes them)."""
    return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                       and math.isfinite(x) for x in v)


#: How far a result's mean and std may be from the ones its chips give (percentage points).
AGREEMENT_TOL = 1e-6


def check_result(res, source: str = "result") -> None:
    """Raise ValueError naming ``source`` if ``res`` is not an accuracy-vs-time result."""
    if not isinstance(res, dict):
        raise ValueError(f"{source} is not an accuracy-vs-time result (a JSON object expected, "
                         f"got {type(res).__name__})")
    for key in REQUIRED_KEYS:
        if key not in res:
            raise ValueError(f"{source} is not an accuracy-vs-time result (no {key!r})")
    times = res["times_s"]
    if not _numbers(times) or not times:
        raise ValueError(f"{source}: 'times_s' must be a non-empty list of numbers")
    if any(not (t >= 0) for t in times) or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"{source}: 'times_s' must be >= 0 and increasing")
    for key in ("mean", "std"):
        if not _numbers(res[key]) or len(res[key]) != len(times):
            raise ValueError(f"{source}: {key!r} must be a list of {len(times)} numbers (finite, one per time)")
    rows = res["per_chip"]
    if not isinstance(rows, list) or not rows or any(not _numbers(r) or len(r) != len(times) for r in rows):
        raise ValueError(f"{source}: 'per_chip' must be a list of rows of {len(times)} numbers "
                         f"(finite, one row per chip)")
    if any(not (0 <= x <= 100) for r in rows for x in r) or any(not (0 <= x <= 100) for x in res["mean"]):
        raise ValueError(f"{source}: accuracies must be percentages in [0, 100]")
    chips = np.asarray(rows, dtype=float)
    mean = chips.mean(0)
    std = chips.std(0, ddof=1) if len(rows) > 1 else np.zeros(len(times))
    for key, want in (("mean", mean), ("std", std)):
        j = int(np.argmax(np.abs(np.asarray(res[key]) - want)))
        if abs(res[key][j] - want[j]) > AGREEMENT_TOL:
            raise ValueError(f"{source}: {key!r} at {times[j]:g} s is {res[key][j]!r} but its chips ('per_chip') "
                             f"give {float(want[j])!r}: the file was edited or is corrupted")
    meta = res["meta"]
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: 'meta' must be a JSON object")
    fp32 = meta.get("fp32_accuracy")
    if fp32 is not None and not (_numbers([fp32]) and 0 <= fp32 <= 100):
        raise ValueError(f"{source}: meta.fp32_accuracy must be a percentage in [0, 100], got {fp32!r}")
    if "n_chips" in meta and meta["n_chips"] != len(rows):
        raise ValueError(f"{source}: meta.n_chips is {meta['n_chips']!r} but 'per_chip' has {len(rows)} rows")


def chip_time_layer(chips: list[dict], *keys: str, times_s) -> np.ndarray:
    """A layer-by-layer study as one array ``[chip, time, layer]``: ``chips`` is the study's list of
    per-chip entries, ``keys`` the path inside each entry to a ``{str(time): [value per layer]}``
    mapping (e.g. ``chip_time_layer(study["models"][name], "bias", "1", times_s=study["meta"]["times_s"])``
    for ``scripts/gdc_readout_study.py``'s file).
    """
    out = []
    for entry in chips:
        for k in keys:
            entry = entry[k]
        out.append([entry[str(float(t))] for t in times_s])
    return np.asarray(out, dtype=float)


#: Names of the GDC readouts of ``scripts/gdc_readout_study.py``.
GDC_READOUT_LABELS = {"1": "one-hot, 1 read (aihwkit)", "4": "one-hot, 4 reads averaged",
                      "16": "one-hot, 16 reads averaged", "all-ones": "all-ones input, 1 read",
                      "known-inputs": "known inputs, least squares"}


def gdc_readouts(study: dict) -> list[str]:
    """The readouts a GDC readout study holds, in its order: one-hot with k reads, then the others."""
    return [str(k) for k in study["meta"]["reads"]] + list(study["meta"].get("estimators", []))


def value_at(res: dict, t_s: float) -> tuple[float, float]:
    """(mean, std) accuracy of a result at the grid time closest to ``t_s`` (log distance)."""
    times = np.asarray(res["times_s"], dtype=float)
    j = int(np.argmin(np.abs(np.log10(np.maximum(times, 1e-12)) - np.log10(max(t_s, 1e-12)))))
    return res["mean"][j], res["std"][j]


def paired_changes(res: dict, reference: dict, times_s) -> tuple[np.ndarray, np.ndarray]:
    """The chip-by-chip change of ``res`` against ``reference`` at each of ``times_s``: its mean
    and standard error over the chips, one per time. The two must hold the same chips (the
    reference's seeds are the first of ``res``'s) and test images; ValueError otherwise."""
    n = len(reference["meta"]["seeds"])
    if (list(res["meta"]["seeds"][:n]) != list(reference["meta"]["seeds"]) or n < 2
            or res["meta"]["test_images"] != reference["meta"]["test_images"]):
        raise ValueError("paired changes need the same chips (at least 2) and test images in both results")

    def at(r):
        return np.asarray(r["per_chip"])[:n, [exact_index(r, t) for t in times_s]]

    d = at(res) - at(reference)
    return d.mean(0), d.std(0, ddof=1) / np.sqrt(n)


def exact_index(res: dict, t_s: float) -> int:
    """Index of ``t_s`` on the result's time grid; ValueError if it is not a grid point."""
    for j, t in enumerate(res["times_s"]):
        if abs(t - t_s) <= 1e-9 * max(1.0, t_s):
            return j
    raise ValueError(f"time {t_s} s is not on this result's grid {res['times_s']}")


def markdown_table(results: dict[str, dict], times: dict[str, float] = REPORT_TIMES_S) -> str:
    """A markdown table of mean +- std accuracy (%) over chips, one row per labelled result."""
    head = "| model / compensation | chips | " + " | ".join(times) + " |"
    sep = "| --- | --- | " + " | ".join("---" for _ in times) + " |"
    rows = [head, sep]
    for label, res in results.items():
        cells = []
        for t in times.values():
            j = exact_index(res, t)
            cells.append(f"{res['mean'][j]:.2f} +- {res['std'][j]:.2f}")
        rows.append(f"| {label} | {res['meta']['n_chips']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
