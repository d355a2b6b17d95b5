"""Figures: the network as a block diagram (drawn from the model) and the paper's drift figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
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
