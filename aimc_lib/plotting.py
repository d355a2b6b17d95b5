"""Figures: the network as a block diagram (drawn from the model) and the paper's drift figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
import torch
from torch import nn

from .models import CifarResNet, count_analog_weights, resnet32

STYLE = {  # the seed figure's styles
    "fp32": dict(color="black", linestyle="--", linewidth=1.5),
    "custom": dict(color="tab:blue", marker="s", markersize=5, linewidth=1.5),
    "direct": dict(color="tab:red", marker="D", markersize=5, linewidth=1.5),
}


def network_blocks(model: CifarResNet) -> list[dict]:
    """The network as a list of drawable blocks, read from the model's modules."""
    c = model.conv1
    blocks = [{"title": "CIFAR-10\nimage", "body": "32x32x3", "color": "#eeeeee"},
              {"title": f"conv\n{c.kernel_size[0]}x{c.kernel_size[1]}", "body": f"{c.out_channels}\nfilters",
               "color": "#cfe2f3"}]
    for i, stage in enumerate((model.layer1, model.layer2, model.layer3), start=1):
        first = stage[0]
        k = first.conv1.kernel_size[0]
        body = f"{len(stage)} blocks\n2 x {k}x{k}, {first.conv2.out_channels}"
        if len(first.shortcut):
            body += f"\n1x1 {first.shortcut[0].in_channels}->{first.shortcut[0].out_channels}"
        blocks.append({"title": f"ResNet\nblock {i}", "body": body, "color": "#d9ead3"})
    blocks += [{"title": "avg\npool", "body": "global", "color": "#fff2cc"},
               {"title": "FC +\nsoftmax", "body": f"{model.fc.in_features} x {model.fc.out_features}",
                "color": "#f4cccc"},
               {"title": "label", "body": "10\nclasses", "color": "#eeeeee"}]
    return blocks


def draw_network(model: nn.Module | None = None, ax=None):
    """Draw ``model`` (default: the paper's ResNet-32) as a labelled left-to-right block diagram."""
    model = model if model is not None else resnet32()
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 2.2))
    blocks = network_blocks(model)
    n = len(blocks)
    width, gap = 1.3, 0.3
    for i, b in enumerate(blocks):
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0), width, 1, boxstyle="round,pad=0.02", fc=b["color"], ec="0.3"))
        ax.text(x + width / 2, 0.74, b["title"], ha="center", va="center", fontsize=7.5, weight="bold")
        ax.text(x + width / 2, 0.3, b["body"], ha="center", va="center", fontsize=6.2)
        if i < n - 1:
            ax.add_patch(FancyArrowPatch((x + width + 0.02, 0.5), (x + width + gap - 0.02, 0.5),
                                         arrowstyle="-|>", mutation_scale=10, color="0.3"))
    ax.set_xlim(-0.1, n * (width + gap) - gap + 0.1)
    ax.set_ylim(-0.25, 1.1)
    ax.axis("off")
    ax.set_title(f"ResNet-{model.depth}, widths {'/'.join(map(str, model.widths))}: "
                 f"{count_analog_weights(model):,} weights on PCM (differential pairs)", fontsize=9)
    return ax


def plot_accuracy_vs_time(ax, res: dict, kind: str = "custom", label: str | None = None,
                          tmax: float | None = None, **style):
    """One accuracy-vs-time series (mean with error bars over chips) on a log time axis.

    ``kind`` picks the figure's style (``"custom"``, ``"direct"``, ``"fp32"``); ``style`` overrides
    any matplotlib keyword; points after ``tmax`` (s) are left out.
    """
    t = np.asarray(res["times_s"], dtype=float)
    keep = t <= tmax * (1 + 1e-9) if tmax is not None else np.ones(len(t), bool)
    t = np.where(t > 0, t, 1e-6)[keep]
    mean, std = np.asarray(res["mean"])[keep], np.asarray(res["std"])[keep]
    ax.errorbar(t, mean, yerr=std, capsize=2, label=label, **{**STYLE[kind], **style})


def format_time_axis(ax, ymin: float = 60, ymax: float = 100, tmin: float = 1e-5, tmax: float = 1e5):
    ax.set_xscale("log")
    ax.set_xlim(tmin / 3, tmax * 3)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("Time after programming (s)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3, which="major")


def paper_figure(custom: dict | None, direct: dict | None, fp32_accuracy: float,
                 model: nn.Module | None = None, tmax: float = 1e5):
    """The seed figure: network diagram on top; accuracy vs time below (FP32 dashed, custom training
    blue squares, direct mapping red diamonds, error bars over chips)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [1, 3]})
    draw_network(model, top)
    bottom.axhline(fp32_accuracy, label=f"Floating point (FP32) baseline ({fp32_accuracy:.1f} %)", **STYLE["fp32"])
    for res, kind, name in ((custom, "custom", "Custom training"), (direct, "direct", "Direct mapping of FP32 weights")):
        if res is not None:
            plot_accuracy_vs_time(bottom, res, kind, f"{name} ({res['meta']['compensation'].upper()})", tmax=tmax)
    format_time_axis(bottom, tmax=tmax)
    bottom.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    return fig


# --- Figures of the periphery chapter ---

def plot_converter(ax, bits: int, bound: float = 1.0):
    """The transfer curve of a ``bits``-bit signed converter over ``[-bound, bound]`` (with clipping)."""
    from .periphery import quantize
    x = torch.linspace(-1.4 * bound, 1.4 * bound, 2001)
    ax.plot(x, x, color="0.7", lw=1, label="ideal")
    ax.plot(x, quantize(x.clone(), bits, bound), color="tab:blue", lw=1.5, label=f"{bits}-bit converter")
    ax.axvspan(-1.4 * bound, -bound, color="tab:red", alpha=0.08)
    ax.axvspan(bound, 1.4 * bound, color="tab:red", alpha=0.08, label="clipped")
    ax.set_xlabel("analog value")
    ax.set_ylabel("converted value")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)


def mvm_error_figure(bits: list[int], errors: dict[float, list[float]]):
    """Relative RMS error of a crossbar's products vs converter bits, one line per output-noise std."""
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    for noise, err in errors.items():
        ax.plot(bits, 100 * np.asarray(err), "o-", label=f"output noise {noise:g}")
    ax.set_yscale("log")
    ax.set_xlabel("DAC and ADC resolution (bits)")
    ax.set_ylabel("relative RMS error of the products (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def mvm_scatter_figure(y_exact: torch.Tensor, y_analog: torch.Tensor, title: str):
    """Analog vs exact products of one crossbar: the closer to the diagonal, the better."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0), layout="constrained")
    lim = float(y_exact.abs().max()) * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="0.7", lw=1)
    ax.scatter(y_exact.flatten(), y_analog.flatten(), s=2, alpha=0.3, color="tab:blue")
    err = float((y_analog - y_exact).pow(2).mean().sqrt() / y_exact.pow(2).mean().sqrt())
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="exact product", ylabel="through the periphery",
           title=f"{title}: relative RMS error {100 * err:.1f} %")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    return fig


def periphery_curves_figure(curves: dict[str, tuple[dict, str, bool]], fp32_accuracy: float, ymin: float = 60):
    """Accuracy vs time for several results: ``{label: (result, kind, with_periphery)}``.

    ``kind`` is ``"custom"`` or ``"direct"`` (the seed figure's colours); results read through a
    periphery are drawn with open markers and dotted lines.
    """
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.axhline(fp32_accuracy, label=f"FP32 baseline ({fp32_accuracy:.1f} %)", **STYLE["fp32"])
    for label, (res, kind, periphery) in curves.items():
        style = dict(mfc="none", ls=":") if periphery else {}
        plot_accuracy_vs_time(ax, res, kind, label, **style)
    times = [t for res, _, _ in curves.values() for t in res["times_s"]]
    format_time_axis(ax, ymin=ymin, tmin=min(times), tmax=max(times))
    ax.legend(loc="lower left", fontsize=8)
    return fig
