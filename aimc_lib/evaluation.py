"""Test-set accuracy of a network, fast on CPU (channels_last, large batches, no autograd)."""
from __future__ import annotations

import torch
from torch import nn

from .data import Split, batches


def predict(model: nn.Module, split: Split, batch_size: int = 1000, device=None) -> torch.Tensor:
    """Predicted class for every image of ``split`` (model put in eval mode, channels_last)."""
    device = device or next(model.parameters()).device
    with torch.no_grad():  # not inference_mode: the parameters must stay usable for training
        model.eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return torch.cat([model(x).argmax(1).cpu() for x, _ in batches(split, batch_size, device)])


def percent_correct(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``pred`` equal to ``labels``, in percent (exactly 100 * correct / images)."""
    return 100.0 * int((pred == labels).sum()) / len(labels)


def accuracy(model: nn.Module, split: Split, batch_size: int = 1000, device=None) -> float:
    """Top-1 accuracy in percent on ``split`` (exactly 100 * correct / images)."""
    return percent_correct(predict(model, split, batch_size, device), split.y)
