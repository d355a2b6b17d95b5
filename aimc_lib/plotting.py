"""The book's figures, chapter by chapter: every function says which chapter introduces it.

Read like d2l's library: the module follows the book, a section per chapter, in the order the
chapters use the functions (a helper sits with the first chapter that needs it). Everything here
draws; what a figure computes lives with its idea (e.g. :func:`aimc_lib.weight_noise.rms_weight_error`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
import torch
from torch import nn

from .models import CifarResNet, count_analog_weights, resnet32
from .result_files import GDC_READOUT_LABELS, chip_time_layer, gdc_readouts


# -------------------- Chapter 1. Crossbars compute


def draw_crossbar(ax, G, V=None, I=None, col_labels=None, g_max_us: float = 25.0, values: bool = True,
                  colorbar: bool = True, title: str | None = None):
    """Draw a crossbar: row i is an input line at voltage ``V[i]`` (V), column j an output line whose
    current ``I[j]`` (µA) leaves at the bottom; device (i, j) is a square coloured by ``G[i, j]`` (µS).

    Chapter 1: Crossbars compute.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = plt.get_cmap("viridis")
    G = np.asarray(G, dtype=float)
    n_rows, n_cols = G.shape
    norm = Normalize(0, g_max_us)

    def y(i):
        return n_rows - 1 - i  # row 0 at the top

    for i in range(n_rows):  # input (word) lines
        ax.plot([-0.75, n_cols - 0.45], [y(i), y(i)], color="0.45", lw=1.4, zorder=1)
    for j in range(n_cols):  # output (bit) lines
        ax.plot([j, j], [n_rows - 0.45, -0.75], color="0.45", lw=1.4, zorder=1)
    for i in range(n_rows):
        for j in range(n_cols):
            rgba = cmap(norm(G[i, j]))
            ax.add_patch(plt.Rectangle((j - 0.24, y(i) - 0.24), 0.48, 0.48, fc=rgba, ec="k", lw=0.8, zorder=2))
            if values:
                light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.5
                ax.text(j, y(i), f"{G[i, j] + 0.0:g}", ha="center", va="center", fontsize=8,
                        color="k" if light else "w", zorder=3)
    if V is not None:
        for i in range(n_rows):
            ax.plot(-0.75, y(i), "o", ms=7, mfc="w", mec="tab:orange", mew=2, zorder=3)
            ax.text(-0.95, y(i), f"$V_{i}$ = {float(V[i]):.2f} V", ha="right", va="center", fontsize=9,
                    color="tab:orange")
    for j in range(n_cols):
        ax.annotate("", xy=(j, -1.15), xytext=(j, -0.75), arrowprops=dict(arrowstyle="-|>", color="tab:blue", lw=1.5))
        label = col_labels[j] if col_labels is not None else f"$I_{j}$"
        if I is not None:
            label += f"\n{float(I[j]):.2f} µA"
        ax.text(j, -1.25, label, ha="center", va="top", fontsize=9, color="tab:blue")
    ax.set_xlim(-2.6 if V is not None else -1.0, n_cols - 0.3)
    ax.set_ylim(-2.1, n_rows - 0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        plt.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.7, label="Conductance G (µS)")
    return ax


def digital_vs_analog_figure(g_max_us: float = 25.0, seed: int = 0):
    """Chapter 1's schematic: a digital chip moves every weight to a multiplier, a crossbar does not.

    Chapter 1: Crossbars compute.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    box = dict(boxstyle="round,pad=0.5", ec="0.3")
    left.text(0.5, 0.84, "Memory\n(weights $W$)", ha="center", va="center", fontsize=11, bbox={**box, "fc": "#cfe2f3"})
    left.text(0.5, 0.2, "Processor\n(multiply-accumulate)", ha="center", va="center", fontsize=11,
              bbox={**box, "fc": "#f4cccc"})
    left.annotate("", xy=(0.5, 0.35), xytext=(0.5, 0.69),
                  arrowprops=dict(arrowstyle="simple,head_width=1.2,tail_width=0.6", fc="tab:red", ec="none"))
    left.text(0.56, 0.52, "a weight fetch costs more\nthan the multiplication", va="center", fontsize=9,
              color="tab:red")
    left.annotate("$\\mathbf{x}$", xy=(0.22, 0.2), xytext=(0.0, 0.2), va="center", fontsize=12,
                  arrowprops=dict(arrowstyle="-|>", color="tab:orange"))
    left.annotate("$\\mathbf{y}$", xy=(1.0, 0.2), xytext=(0.8, 0.2), va="center", fontsize=12,
                  arrowprops=dict(arrowstyle="<|-", color="tab:blue"))
    left.set_xlim(0, 1.05)
    left.set_ylim(0, 1)
    left.axis("off")
    left.set_title("Digital (von Neumann): weights move", fontsize=11)
    rng = np.random.default_rng(seed)
    draw_crossbar(right, rng.uniform(0, g_max_us, size=(5, 4)), values=False, g_max_us=g_max_us,
                  col_labels=["$y_0$", "$y_1$", "$y_2$", "$y_3$"],
                  title="Analog in-memory: weights stay, only $\\mathbf{x}$ and $\\mathbf{y}$ move")
    for i in range(5):
        right.annotate("", xy=(-0.8, 4 - i), xytext=(-1.0, 4 - i),
                       arrowprops=dict(arrowstyle="-|>", color="tab:orange"))
    right.text(-1.0, 2, "$\\mathbf{x}$ as\ninputs", ha="right", va="center", fontsize=10, color="tab:orange")
    right.set_xlim(-2.2, 3.7)
    return fig


def energy_bars(energies_pj: dict, ax=None, title: str = "Energy per operation, 45 nm (Horowitz, ISSCC 2014)"):
    """Horizontal bars of energies per operation (pJ) on a log axis, each labelled with its value.

    Chapter 1: Crossbars compute.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.45 * len(energies_pj) + 1.2), layout="constrained")
    names, values = list(energies_pj), list(energies_pj.values())
    ax.barh(range(len(names)), values, color=["tab:blue" if "multiply" in n else "tab:red" for n in names])
    for k, v in enumerate(values):
        ax.text(v * 1.15, k, f"{v:g} pJ", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.05, 20 * max(values))
    ax.set_xlabel("Energy (pJ, log scale)")
    ax.set_title(title, fontsize=10)
    return ax


# -------------------- Chapter 3. Mapping a network onto PCM


def stage_of_layer(name: str) -> str:
    """The part of a CIFAR ResNet an analog layer belongs to, from its module name.

    ``"stem"``, ``"stage 1"`` ... ``"stage 3"``, ``"1x1 shortcuts"`` or ``"fc (weights + bias)"``.

    Chapter 3: Mapping a network onto PCM.
    """
    if name == "conv1":
        return "stem"
    if name == "fc":
        return "fc (weights + bias)"
    if "shortcut" in name:
        return "1x1 shortcuts"
    if name.startswith("layer") and name[5:6].isdigit():
        return f"stage {name[5]}"
    raise ValueError(f"not an analog layer of a CIFAR ResNet: {name!r}")


# -------------------- Chapter 4. ResNet-32 on CIFAR-10 in FP32


def network_blocks(model: CifarResNet) -> list[dict]:
    """The network as a list of drawable blocks, read from the model's modules.

    Chapter 4: ResNet-32 on CIFAR-10 in FP32.
    """
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
    """Draw ``model`` (default: the paper's ResNet-32) as a labelled left-to-right block diagram.

    Chapter 4: ResNet-32 on CIFAR-10 in FP32.
    """
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


def plot_training_log(log: dict, upto_epoch: int | None = None, n_train_images: int = 50_000,
                      title: str | None = None, reference_acc: float | None = None, xlabel: str = "Epoch",
                      train_label: str = "training batches (augmented)"):
    """The training curves of a log from ``aimc_lib.training`` (e.g. ``zoo.training_log(name)``).

    Three panels: training loss (with the floor that label smoothing allows), training and test
    accuracy, and the learning rate (planned schedule and value at the end of each epoch).
    ``upto_epoch`` draws only the epochs up to that one, on the axes of the whole run (for sliders).
    ``n_train_images``: the training set the run used (for the planned schedule);
    ``reference_acc``: a dashed reference line on the accuracy panel (e.g. the FP32 model's, for a
    fine-tuning run); ``xlabel`` and ``train_label`` name the epochs and the training batches.

    Chapter 4: ResNet-32 on CIFAR-10 in FP32.
    """
    from matplotlib.ticker import MaxNLocator

    from .training import TrainConfig, lr_at

    cfg = TrainConfig(**log["config"])
    ep = log["epochs"]
    shown = [r for r in ep if upto_epoch is None or r["epoch"] <= upto_epoch]
    epoch = np.array([r["epoch"] for r in shown])
    steps_per_epoch = (cfg.train_subset or n_train_images) // cfg.batch_size
    total_steps = cfg.epochs * steps_per_epoch
    step = np.arange(total_steps)
    eps = cfg.label_smoothing
    q = np.array([1 - eps + eps / 10] + [eps / 10] * 9)  # the smoothed target of one image
    loss_floor = float(-(q * np.log(q)).sum())

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    a.plot(epoch, [r["train_loss"] for r in shown], "o-", ms=3, color="tab:purple")
    a.axhline(loss_floor, color="k", ls=":", lw=1, label=f"floor with label smoothing {eps}: {loss_floor:.2f}")
    a.set_ylabel("Training loss (cross-entropy)")
    a.set_ylim(0, 1.05 * max(r["train_loss"] for r in ep))
    b.plot(epoch, [r["train_acc"] for r in shown], "o-", ms=3, color="0.5", label=train_label)
    b.plot(epoch, [r["test_acc"] for r in shown], "s-", ms=3, color="tab:blue", label="test set, after the epoch")
    if reference_acc is not None:
        b.axhline(reference_acc, color="k", ls="--", lw=1.2, label=f"reference: {reference_acc:.2f} %")
    b.set_ylabel("Accuracy (%)")
    b.set_ylim(min(min(r["train_acc"], r["test_acc"]) for r in ep) - 5, 100)
    c.plot((step + 1) / steps_per_epoch, [lr_at(s, total_steps, cfg) for s in step], color="0.7",
           label=f"planned schedule ({cfg.epochs} epochs)")
    c.plot(epoch, [r["lr_end"] for r in shown], "o", ms=3, color="tab:orange", label="at the end of each epoch")
    c.set_ylabel("Learning rate")
    for ax in (a, b, c):
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, len(ep) + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is b else "upper right")
    fig.suptitle(title or ("training log" if upto_epoch is None else f"training log, epochs 1 to {upto_epoch}"))
    return fig


# -------------------- Chapter 5. Custom (noise-aware) training


#: The line styles of the paper's figure (FP32 baseline, custom training, direct mapping). Chapter 5.
STYLE = {
    "fp32": dict(color="black", linestyle="--", linewidth=1.5),
    "custom": dict(color="tab:blue", marker="s", markersize=5, linewidth=1.5),
    "direct": dict(color="tab:red", marker="D", markersize=5, linewidth=1.5),
}


def plot_layer_bars(ax, names: list[str], values: dict[str, np.ndarray], colors: dict[str, str],
                    ylabel: str, fmt: str = "{:.1f}"):
    """Grouped bars, one group per layer and one bar per entry of ``values`` (legend: the median).

    Chapter 5: Custom (noise-aware) training.
    """
    x = np.arange(len(names))
    width = 0.8 / len(values)
    for i, (label, v) in enumerate(values.items()):
        ax.bar(x + (i - (len(values) - 1) / 2) * width, v, width=width, color=colors[label],
               label=f"{label}: median {fmt.format(np.median(v))}")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8.5)
    return ax


def plot_noise_sweep(ax, sweeps: dict[str, dict], styles: dict[str, dict] | None = None):
    """Accuracy vs relative inference weight noise (``accuracy_under_weight_noise`` results), in %.

    Chapter 5: Custom (noise-aware) training.
    """
    styles = styles or {}
    for label, r in sweeps.items():
        ax.errorbar(100 * np.asarray(r["etas"]), r["mean"], yerr=r["std"], capsize=3, label=label,
                    **styles.get(label, {}))
    ax.set_xlabel(r"Relative weight noise at inference, $\eta_{inf}$ (% of max|W| per layer)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3)
    return ax


def eta_sweep_frame(eta_sweep: dict, weight_noise: dict, eta_tr: float):
    """One frame of the eta_tr ablation: the short fine-tune with ``eta_tr`` highlighted among all of them,
    with the shipped FP32 and custom models (committed studies ``eta_sweep`` and ``weight_noise``).

    Chapter 5: Custom (noise-aware) training.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    plot_noise_sweep(ax, {"FP32 (shipped)": weight_noise["resnet32-fp32"],
                          "custom (shipped, 15 epochs)": weight_noise["resnet32-custom"]},
                     {"FP32 (shipped)": dict(STYLE["direct"], alpha=0.8),
                      "custom (shipped, 15 epochs)": dict(STYLE["custom"], alpha=0.8)})
    for key, r in eta_sweep["runs"].items():
        sel = np.isclose(float(key), eta_tr)
        ax.errorbar(100 * np.asarray(r["etas"]), r["mean"], yerr=r["std"] if sel else None, capsize=3,
                    color="tab:green" if sel else "0.75", lw=2.2 if sel else 1, marker="o" if sel else None,
                    zorder=3 if sel else 1,
                    label=(f"short fine-tune, $\\eta_{{tr}}$ = {100 * eta_tr:g} %"
                           + (" (clipping only)" if eta_tr == 0 else "")) if sel else None)
    ax.plot([], [], color="0.75", label="the other short fine-tunes")
    ax.set_ylim(55, 95)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{eta_sweep['epochs']} epochs on {eta_sweep['train_images']:,} images, 2-sigma clipping; "
                 f"{eta_sweep['test_images']:,} test images", fontsize=9.5)
    return fig


#: The arms of the clipping / noise ablation (``scripts/ablation_study.py``) and their styles. Chapter 5.
ABLATION_STYLE = {
    "both": dict(color="tab:blue", marker="s", label="clipping + noise (shipped custom)"),
    "clip-only": dict(color="tab:green", marker="o", label="clipping only"),
    "noise-only": dict(color="tab:orange", marker="^", label="noise only"),
}


def clip_noise_ablation_figure(ablation: dict, weight_noise_fp32: dict | None = None):
    """The full-length ablation: accuracy under inference weight noise per arm (left) and each
    chip's accuracy on PCM one day after programming with GDC (right; a bar marks the mean).

    Chapter 5: Custom (noise-aware) training.
    """
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained", gridspec_kw=dict(width_ratios=[1.8, 1]))
    arms = {arm: ABLATION_STYLE[arm] for arm in ablation["arms"]}
    sweeps = {st["label"]: {"etas": ablation["eta_inf"], **ablation["arms"][arm]["weight_noise"]} for arm, st in arms.items()}
    styles = {st["label"]: dict(color=st["color"], marker=st["marker"], markersize=5) for st in arms.values()}
    if weight_noise_fp32 is not None:
        sweeps["FP32 (shipped, for scale)"] = weight_noise_fp32
        styles["FP32 (shipped, for scale)"] = dict(STYLE["direct"], alpha=0.6)
    plot_noise_sweep(ax, sweeps, styles)
    ax.set_xlim(-0.5, 100 * max(ablation["eta_inf"]) + 0.5)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{ablation['n_repeats']} noise draws, {ablation['test_images']:,} test images", fontsize=9.5)
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for i, (arm, st) in enumerate(arms.items()):
        chips = np.asarray(ablation["arms"][arm]["pcm_day"]["per_chip"])
        bx.plot(i + rng.uniform(-0.12, 0.12, len(chips)), chips, st["marker"], color=st["color"], alpha=0.7, ms=5)
        bx.hlines(chips.mean(), i - 0.25, i + 0.25, color=st["color"], lw=2.5)
    bx.set_xticks(range(len(arms)), [st["label"].split(" (")[0] for st in arms.values()], fontsize=8.5)
    bx.set_xlim(-0.6, len(arms) - 0.4)
    bx.set_ylabel("Test accuracy on PCM after 1 day, GDC (%)")
    bx.set_title(f"{ablation['n_chips']} chips (same seeds for every arm)", fontsize=9.5)
    bx.grid(alpha=0.3, axis="y")
    return fig


# -------------------- Chapter 6. Drift compensation


def format_time_axis(ax, ymin: float = 60, ymax: float = 100, tmin: float = 1e-5, tmax: float = 1e5):
    """An accuracy-vs-time axis: log time after programming (s) from ``tmin`` to ``tmax``, accuracy (%).

    Chapter 6: Drift compensation.
    """
    ax.set_xscale("log")
    ax.set_xlim(tmin / 3, tmax * 3)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("Time after programming (s)")
    ax.set_ylabel("Test accuracy (%)")
    ax.grid(alpha=0.3, which="major")


#: Colour of each part of the ResNet (the names :func:`stage_of_layer` returns). Chapter 6.
STAGE_COLORS = {"stem": "0.4", "stage 1": "tab:blue", "stage 2": "tab:green", "stage 3": "tab:purple",
                "1x1 shortcuts": "tab:orange", "fc (weights + bias)": "tab:red"}


def plot_bn_mismatch(mismatch: dict[str, dict], styles: dict[str, dict]):
    """Scale and shift of every BatchNorm layer's inputs relative to its running statistics (two panels).

    Chapter 6: Drift compensation.
    """
    names = list(next(iter(mismatch.values())))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for label, stats in mismatch.items():
        a.plot([stats[n][0] for n in names], ms=4, lw=1.2, label=label, **styles[label])
        b.plot([stats[n][1] for n in names], ms=4, lw=1.2, label=label, **styles[label])
    a.axhline(1, color="0.5", lw=0.8)
    a.set_yscale("log")
    a.set_ylabel("scale: std of inputs / running std")
    b.set_ylabel("shift: |mean - running mean| / running std")
    for ax in (a, b):
        ax.set_xlabel(f"BatchNorm layer, input to output (0 ... {len(names) - 1})")
        ax.grid(alpha=0.3)
    a.legend(fontsize=8)
    a.set_title("Does each BatchNorm see the scale it expects?", fontsize=10)
    b.set_title("... and the mean it expects?", fontsize=10)
    return fig


def plot_gdc_factors(ts: np.ndarray, alpha: np.ndarray, layer_names: list[str], alpha_day: dict[str, float],
                     reference_curves: dict[str, np.ndarray], day_reference: float):
    """GDC factor of every layer vs time (left) and one day after programming relative to a curve (right).

    Chapter 6: Drift compensation.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained", gridspec_kw={"width_ratios": [1, 1.3]})
    for j, name in enumerate(layer_names):
        a.plot(ts, alpha[:, j], color=STAGE_COLORS[stage_of_layer(name)], lw=0.8, alpha=0.8)
    for (label, curve), ls in zip(reference_curves.items(), ("--", ":", "-.")):
        a.plot(ts, curve, "k", ls=ls, lw=1.5, label=label)
    for stage, color in STAGE_COLORS.items():
        a.plot([], [], color=color, label=stage)
    a.set_xscale("log")
    a.set_xlabel("Time after programming (s)")
    a.set_ylabel(r"GDC factor $\alpha_l(t)$")
    a.set_title("GDC factor of every layer (one chip)", fontsize=10)
    a.grid(alpha=0.3)
    a.legend(fontsize=7.5, ncol=2)
    dev = [100 * (alpha_day[n] / day_reference - 1) for n in layer_names]
    b.bar(range(len(layer_names)), dev, color=[STAGE_COLORS[stage_of_layer(n)] for n in layer_names])
    b.axhline(0, color="k", ls="--", lw=1.2)
    b.set_xticks(range(len(layer_names)), layer_names, rotation=90, fontsize=6.5)
    b.set_ylabel(r"$\alpha_l$(1 day) vs. the dashed curve (%)")
    b.set_title("GDC factors one day after programming, relative to the dashed curve", fontsize=10)
    return fig


# -------------------- Chapter 6b. The periphery: converters and output noise


def plot_accuracy_vs_time(ax, res: dict, kind: str = "custom", label: str | None = None,
                          tmax: float | None = None, **style):
    """One accuracy-vs-time series (mean with error bars over chips) on a log time axis.

    ``kind`` picks the figure's style (``"custom"``, ``"direct"``, ``"fp32"``); ``style`` overrides
    any matplotlib keyword; points after ``tmax`` (s) are left out.

    Chapter 6b: The periphery: converters and output noise.
    """
    t = np.asarray(res["times_s"], dtype=float)
    keep = t <= tmax * (1 + 1e-9) if tmax is not None else np.ones(len(t), bool)
    t = np.where(t > 0, t, 1e-6)[keep]
    mean, std = np.asarray(res["mean"])[keep], np.asarray(res["std"])[keep]
    ax.errorbar(t, mean, yerr=std, capsize=2, label=label, **{**STYLE[kind], **style})


def plot_converter(ax, bits: int, bound: float = 1.0):
    """The transfer curve of a ``bits``-bit signed converter over ``[-bound, bound]`` (with clipping).

    Chapter 6b: The periphery: converters and output noise.
    """
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
    """Relative RMS error of a crossbar's products vs converter bits, one line per output-noise std.

    Chapter 6b: The periphery: converters and output noise.
    """
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
    """Analog vs exact products of one crossbar: the closer to the diagonal, the better.

    Chapter 6b: The periphery: converters and output noise.
    """
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


def gdc_readout_bias_figure(study: dict):
    """GDC's factor through the periphery relative to the exact one, vs time: mean over layers and
    chips (lines) and the worst layer's chip mean (shaded to it), one panel per model, one colour per
    readout (``scripts/gdc_readout_study.py``'s result: one-hot inputs with 1, 4 or 16 reads
    averaged, the all-ones input, known inputs with a least-squares gain).

    Chapter 6b: The periphery: converters and output noise.
    """
    times = np.asarray(study["meta"]["times_s"])
    models = list(study["models"])
    colors = ("tab:red", "tab:orange", "tab:green", "tab:purple", "tab:blue")
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.6), sharey=True, layout="constrained")
    for ax, name in zip(np.atleast_1d(axes), models):
        chips = study["models"][name]
        for key, color in zip(gdc_readouts(study), colors):
            b = 100 * chip_time_layer(chips, "bias", key, times_s=times)  # chip, t, layer
            mean, worst = b.mean(axis=(0, 2)), b.mean(axis=0).min(axis=1)
            ls = "-" if key.isdigit() else "--"
            ax.plot(times, mean, marker="o", ls=ls, color=color, label=GDC_READOUT_LABELS.get(key, key))
            ax.fill_between(times, worst, mean, color=color, alpha=0.10)
        ax.axhline(0, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set(xlabel="time after programming (s)", title=name)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(r"$\alpha_\mathrm{readout} / \alpha_\mathrm{exact} - 1$ (%)")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower left")
    return fig


def gdc_readout_accuracy_figure(changes: dict[str, dict[str, tuple]], time_labels: list[str]):
    """What a better GDC readout buys: the accuracy change, on the same chips, against aihwkit's
    one-hot readout, one panel per network, one bar per readout and time, with the standard error
    over the chips. ``changes``: network -> readout label -> (mean, standard error), one value per
    time of ``time_labels`` (:func:`aimc_lib.result_files.paired_changes`).

    Chapter 6b: The periphery: converters and output noise.
    """
    colors = ("tab:blue", "tab:green", "tab:purple", "tab:orange")
    fig, axes = plt.subplots(1, len(changes), figsize=(4.6 * len(changes), 3.4), sharey=True, layout="constrained")
    for ax, (network, readouts) in zip(np.atleast_1d(axes), changes.items()):
        x, width = np.arange(len(time_labels)), 0.8 / len(readouts)
        for i, ((label, (mean, se)), color) in enumerate(zip(readouts.items(), colors)):
            ax.bar(x + (i - (len(readouts) - 1) / 2) * width, mean, width, yerr=se, capsize=3, color=color,
                   label=label)
        ax.axhline(0, color="0.3", lw=1)
        ax.set_xticks(x, time_labels)
        ax.set_title(network, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("accuracy change on the same chips\n(points, against one one-hot read)")
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="upper left")
    return fig


def zero_target_scale_figure(study: dict):
    """The size of the weights a chip holds after GDC, relative to the trained ones (the least-squares
    gain; 1 = restored), vs time: mean over chips and layers, one panel per model, one colour per
    GDC readout (exact: the ideal chip; through the periphery: the realistic chip), solid with the
    zero-target device programmed with noise, dashed with it left at 0 uS; shaded down to the chip
    mean of the layer furthest below 1 (``scripts/zero_target_study.py``'s result).

    Chapter 7: Reproducing the figure.
    """
    times = np.asarray(study["meta"]["times_s"])
    models = list(study["models"])
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.4), sharey=True, layout="constrained")
    names = {"exact": "ideal chip (exact GDC readout)", "periphery": "realistic chip (readout through the periphery)"}
    for ax, model in zip(np.atleast_1d(axes), models):
        for readout, color in zip(study["meta"]["readouts"], ("tab:blue", "tab:red")):
            for setting, ls in (("off", "--"), ("on", "-")):
                s = chip_time_layer(study["models"][model][setting], readout, "scale", times_s=times)  # chip, t, layer
                mean = s.mean(axis=(0, 2))
                label = f"{names[readout]}, zero-target {'noisy' if setting == 'on' else 'at 0 uS'}"
                ax.plot(times, mean, marker="o", ls=ls, color=color, label=label)
                if setting == "on":
                    ax.fill_between(times, s.mean(axis=0).min(axis=1), mean, color=color, alpha=0.12)
        ax.axhline(1, color="0.5", lw=1)
        ax.set_xscale("log")
        ax.set(xlabel="time after programming (s)", title=model)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("size of the weights after GDC\n(gain on the trained ones)")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower left")
    return fig


def periphery_curves_figure(curves: dict[str, tuple[dict, str, bool]], fp32_accuracy: float, ymin: float = 60):
    """Accuracy vs time for several results: ``{label: (result, kind, with_periphery)}``.

    ``kind`` is ``"custom"`` or ``"direct"`` (the seed figure's colours); results read through a
    periphery are drawn with open markers and dotted lines.

    Chapter 6b: The periphery: converters and output noise.
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


# -------------------- Chapter 7. Reproducing the figure


def paper_figure(custom: dict | None, direct: dict | None, fp32_accuracy: float,
                 model: nn.Module | None = None, tmax: float = 1e5, chip: str = "",
                 reference: tuple[dict | None, dict | None] | None = None, reference_chip: str = "ideal chip"):
    """The seed figure: network diagram on top; accuracy vs time below (FP32 dashed, custom training
    blue squares, direct mapping red diamonds, error bars over chips).

    ``chip`` names the chip the two curves were read on (in the legend, e.g. "realistic chip");
    ``reference``: ``(custom, direct)`` results of another chip (e.g. the ideal one, the teaching
    step before), drawn faintly with open markers and named by ``reference_chip``.

    Chapter 7: Reproducing the figure.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [1, 3]})
    draw_network(model, top)
    bottom.axhline(fp32_accuracy, label=f"Floating point (FP32) baseline ({fp32_accuracy:.1f} %)", **STYLE["fp32"])
    names = (("custom", "Custom training"), ("direct", "Direct mapping of FP32 weights"))
    for (kind, name), res in zip(names, reference or (None, None)):
        if res is not None:
            plot_accuracy_vs_time(bottom, res, kind, f"{name}, {reference_chip} ({res['meta']['compensation'].upper()})",
                                  tmax=tmax, alpha=0.45, markerfacecolor="none", linestyle=":")
    for (kind, name), res in zip(names, (custom, direct)):
        if res is not None:
            where = f", {chip}" if chip else ""
            plot_accuracy_vs_time(bottom, res, kind, f"{name}{where} ({res['meta']['compensation'].upper()})", tmax=tmax)
    format_time_axis(bottom, tmax=tmax)
    bottom.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    return fig


def single_chip_figure(panels: dict[str, tuple[dict, dict | None, str]], n_traces: int = 4,
                       ymin: float | None = None):
    """One panel per model: single chips read over time next to the mean over chips.

    ``panels`` maps a title to ``(result, reference, kind)``: ``result``'s chips ``0..n_traces-1``
    are drawn as thin lines (the first chips, not chosen), its mean with error bars (std over
    chips) on top, and ``reference`` (e.g. the same chips on the ideal chip: exact periphery; ``None`` to
    leave it out) as a faded mean; the dashed line is the network's own FP32 accuracy. The hardware experiment is one chip read over time: the thin
    lines, not the mean, are what it can be compared with.

    Chapter 7: Reproducing the figure.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), layout="constrained", sharey=True)
    axes = np.atleast_1d(axes)
    lows = []
    for ax, (title, (res, ref, kind)) in zip(axes, panels.items()):
        t = np.asarray(res["times_s"], dtype=float)
        chips = np.asarray(res["per_chip"])
        lows.append(chips.min())
        fp32 = res["meta"]["fp32_accuracy"]
        ax.axhline(fp32, label=f"this network in FP32 ({fp32:.1f} %)", **STYLE["fp32"])
        if ref is not None:
            ax.plot(ref["times_s"], ref["mean"], color=STYLE[kind]["color"], alpha=0.35, lw=3,
                    label=f"mean, ideal chip ({ref['meta']['n_chips']} chips)")
        for k in range(min(n_traces, len(chips))):
            ax.plot(t, chips[k], color="0.35", lw=0.9, alpha=0.8, marker=".", ms=3,
                    label=f"single chips (seeds 0-{min(n_traces, len(chips)) - 1})" if k == 0 else None)
        plot_accuracy_vs_time(ax, res, kind, f"mean +- std, {len(chips)} chips")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="lower left", fontsize=8)
    low = ymin if ymin is not None else 5 * np.floor((min(lows) - 3) / 5)
    for ax in axes:
        format_time_axis(ax, ymin=low, ymax=95, tmin=min(min(r["times_s"]) for r, _, _ in panels.values()),
                         tmax=max(max(r["times_s"]) for r, _, _ in panels.values()))
    for ax in axes[1:]:
        ax.set_ylabel("")
    return fig
