"""Accuracy-vs-time result files: writing, reading, tables, and the list of committed results.

A result is a JSON dict with ``times_s``, ``mean``, ``std`` (over chips), ``per_chip`` and
``meta`` (model, compensation, PCM parameters, seeds, provenance), as written by
:func:`aimc_lib.experiments.accuracy_vs_time`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .times import REPORT_TIMES_S

#: The committed results shipped in ``aimc_lib/results``: (model, compensation), file ``{model}_{compensation}.json``.
COMMITTED_RESULTS = [("resnet32-fp32", "gdc"), ("resnet32-custom", "gdc"), ("resnet32-custom", "none"),
                     ("resnet32-custom", "adabs"), ("resnet32-fp32", "none")]

REQUIRED_KEYS = ("times_s", "mean", "std", "per_chip", "meta")


def result_name(model: str, compensation: str) -> str:
    """File stem of a committed result, e.g. ``"resnet32-custom_gdc"``."""
    return f"{model}_{compensation}"


def save_results(res: dict, path) -> None:
    """Write a result as JSON (creating the folder), via a temporary file so no half file is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(path)


def load_results(path) -> dict:
    """Read a result written by :func:`save_results`; a clear error if the file is not one."""
    res = json.loads(Path(path).read_text())
    for key in REQUIRED_KEYS:
        if key not in res:
            raise ValueError(f"{path} is not an accuracy-vs-time result (no {key!r})")
    return res


def value_at(res: dict, t_s: float) -> tuple[float, float]:
    """(mean, std) accuracy of a result at the grid time closest to ``t_s`` (log distance)."""
    times = np.asarray(res["times_s"], dtype=float)
    j = int(np.argmin(np.abs(np.log10(np.maximum(times, 1e-12)) - np.log10(max(t_s, 1e-12)))))
    return res["mean"][j], res["std"][j]


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
