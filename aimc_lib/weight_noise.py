"""Gaussian weight noise and weight clipping on the analog layers: used by training and by experiments.

Noise is relative to each layer's largest weight, as programming noise is relative to G_max:
``W + eta * max|W_l| * xi`` with ``xi ~ N(0, 1)`` (conv weight, or FC weight and bias as one
crossbar). Clipping bounds each layer to ``+- alpha * std(W_l)``. :func:`rms_weight_error` measures
the other way round: how far read weights lie from their targets, per layer, in the same units.
"""
from __future__ import annotations

import torch
from torch import nn

from .models import analog_layers, crossbar_matrix


def noisy_weights(model: nn.Module, eta: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``{param_name: W + eta * max|W_l| * xi}`` for every analog layer; differentiable in ``W``."""
    out = {}
    for name, layer in analog_layers(model).items():
        scale = eta * crossbar_matrix(layer).abs().max()  # detached: noise is not differentiated
        for pname in ("weight", "bias"):
            p = getattr(layer, pname, None)
            if p is not None:
                xi = torch.randn(p.shape, generator=generator, device=p.device)
                out[f"{name}.{pname}"] = p + scale * xi
    return out


@torch.no_grad()
def clip_weights(model: nn.Module, alpha: float) -> None:
    """Clip each analog layer (weight and bias together) to +- alpha * std(W_l), in place."""
    for layer in analog_layers(model).values():
        bound = float(alpha * crossbar_matrix(layer).std())
        layer.weight.clamp_(-bound, bound)
        if getattr(layer, "bias", None) is not None:
            layer.bias.clamp_(-bound, bound)


def rms_weight_error(read: dict, targets: dict, relative_to: str = "w_max", w_max: dict | None = None) -> dict:
    """Per layer rms of ``read - target`` weights, relative to the layer's rms weight or its ``W_max``.

    ``read`` and ``targets`` map layer names to crossbar matrices; ``relative_to`` is ``"rms"`` (the
    layer's rms target weight) or ``"w_max"`` (``w_max[name]``, default the largest target weight).
    Returns ``{name: fraction}``.
    """
    if relative_to not in ("rms", "w_max"):
        raise ValueError(f"relative_to must be 'rms' or 'w_max', got {relative_to!r}")
    out = {}
    for name, w in targets.items():
        err = (read[name] - w).pow(2).mean().sqrt()
        ref = w.pow(2).mean().sqrt() if relative_to == "rms" else (
            w_max[name] if w_max is not None else w.abs().max())
        out[name] = float(err / ref)
    return out


def gain_and_rest(w_read: torch.Tensor, w: torch.Tensor) -> tuple[float, float]:
    """How the weights a chip holds differ from the trained ones: ``(gain, rest)``.

    ``gain`` is the least-squares gain of ``w_read`` on ``w`` (1: the weights have their trained
    size; below 1: too small, as after an under-correcting drift compensation); ``rest`` is the rms
    of what the gain leaves, ``w_read - gain * w``, relative to the layer's largest weight (the
    units of the weight noise eta).

    Chapter 7: Reproducing the figure.
    """
    gain = float((w_read * w).sum() / (w * w).sum())
    rest = float((w_read - gain * w).pow(2).mean().sqrt() / w.abs().max())
    return gain, rest
