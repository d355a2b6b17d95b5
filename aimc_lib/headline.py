"""The headline result: which committed results it shows, and the figure drawn from them.

The headline is the **realistic chip**: the calibrated device model (``PCMParams()``) read through
the aihwkit-like periphery (8-bit DAC and ADC, output noise, GDC's readout measured through the
periphery; ``Periphery.aihwkit_like(gdc_readout="periphery")``), with GDC. The **ideal chip**
(the same devices, an exact periphery) is the teaching step before it and is drawn beside it as
a faint reference. Both read the same chips (seeds 0, 1, ...).

Chapter 7: Reproducing the figure.
"""
from __future__ import annotations

from pathlib import Path

from .result_files import load_results

#: The realistic chip's results (``aimc_lib/results/<name>.json``), per network.
REALISTIC = {"custom": "periphery/resnet32-custom_gdc_aihwkit", "direct": "periphery/resnet32-fp32_gdc_aihwkit"}
#: The ideal chip's results (the same devices and chips, read with an exact periphery), per network.
IDEAL = {"custom": "resnet32-custom_gdc", "direct": "resnet32-fp32_gdc"}
REALISTIC_CHIP = "realistic chip"
IDEAL_CHIP = "ideal chip"


def load(folder: Path, names: dict[str, str]) -> dict[str, dict] | None:
    """``{"custom": result, "direct": result}`` from ``folder``, or ``None`` if either file is missing."""
    paths = {kind: Path(folder) / f"{name}.json" for kind, name in names.items()}
    if not all(p.exists() for p in paths.values()):
        return None
    return {kind: load_results(p) for kind, p in paths.items()}


def headline_figure(folder: Path, tmax: float = 1e5, model=None):
    """The paper's figure from the results in ``folder``: the realistic chip with the ideal chip
    faintly beside it; the ideal chip alone where the realistic results are not there (a fast run
    of ``scripts/reproduce.py``). ``None`` if the ideal chip's results are missing too.

    The FP32 line is the direct-mapped network's own FP32 accuracy, measured on the same test images.
    """
    from .plotting import paper_figure

    ideal, realistic = load(folder, IDEAL), load(folder, REALISTIC)
    if ideal is None:
        return None
    fp32 = ideal["direct"]["meta"]["fp32_accuracy"]
    if realistic is None:
        return paper_figure(ideal["custom"], ideal["direct"], fp32_accuracy=fp32, model=model, tmax=tmax,
                            chip=IDEAL_CHIP)
    return paper_figure(realistic["custom"], realistic["direct"], fp32_accuracy=fp32, model=model, tmax=tmax,
                        chip=REALISTIC_CHIP, reference=(ideal["custom"], ideal["direct"]),
                        reference_chip=IDEAL_CHIP)


def save_headline_figure(folder: Path) -> Path | None:
    """Draw :func:`headline_figure` into ``folder/figure.png`` and ``.svg``; the PNG's path, or
    ``None`` (nothing written) if the results it needs are not in ``folder``."""
    import matplotlib.pyplot as plt

    fig = headline_figure(folder)
    if fig is None:
        return None
    for ext in ("png", "svg"):
        fig.savefig(Path(folder) / f"figure.{ext}", bbox_inches="tight", dpi=150)
    plt.close(fig)
    return Path(folder) / "figure.png"
