"""The CIFAR ResNet family, with the paper's ResNet-32 (widths 16/28/56) as default.

Every weight that lives on PCM is a conv weight or the final FC weight and bias; BatchNorm stays
digital. :func:`analog_layers` lists those layers, in order, for mapping and noise injection.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN, ReLU in between, residual add; 1x1 projection when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x):
        # In place (as torchvision's ResNet): the same values, one tensor fewer per ReLU and add;
        # autograd allows it (BatchNorm's backward needs its input, ReLU's its output).
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu_(out)


class CifarResNet(nn.Module):
    """ResNet for 32x32 images: stem, three stages of ``blocks_per_stage`` basic blocks, FC.

    Depth = 6 * blocks_per_stage + 2 (ResNet-20/32/44/56 for 3/5/7/9 blocks per stage).
    """

    def __init__(self, blocks_per_stage: int = 5, widths: tuple[int, int, int] = (16, 28, 56),
                 num_classes: int = 10):
        super().__init__()
        if blocks_per_stage < 1 or len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"need blocks_per_stage >= 1 and three positive widths, "
                             f"got {blocks_per_stage}, {widths}")
        self.blocks_per_stage, self.widths = blocks_per_stage, tuple(widths)
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, in_ch = [], widths[0]
        for i, w in enumerate(widths):
            blocks = [BasicBlock(in_ch, w, 1 if i == 0 else 2)]
            blocks += [BasicBlock(w, w) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = w
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(widths[2], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def depth(self) -> int:
        return 6 * self.blocks_per_stage + 2

    def forward(self, x):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def resnet32(widths: tuple[int, int, int] = (16, 28, 56), num_classes: int = 10) -> CifarResNet:
    """The paper's ResNet-32: 5 blocks per stage, widths 16/28/56, 361,722 analog weights."""
    return CifarResNet(5, widths, num_classes)


def resnet(depth: int = 32, widths: tuple[int, int, int] = (16, 28, 56)) -> CifarResNet:
    """A CIFAR ResNet of the given depth (20, 32, 44, 56, ...: depth = 6n + 2)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56), got {depth}")
    return CifarResNet((depth - 2) // 6, widths)


def analog_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The conv and linear layers whose weights (and the linear bias) go on PCM, by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def crossbar_matrix(layer: nn.Module) -> torch.Tensor:
    """The layer as the 2-D matrix a crossbar stores: ``[out, in*k*k]``, plus a bias column for FC."""
    w = layer.weight.detach().flatten(1)
    if getattr(layer, "bias", None) is not None:
        w = torch.cat([w, layer.bias.detach()[:, None]], dim=1)
    return w


def count_analog_weights(model: nn.Module) -> int:
    """Number of weights on PCM: conv and FC weights plus FC bias (BatchNorm excluded)."""
    return sum(crossbar_matrix(m).numel() for m in analog_layers(model).values())


def check_finite(model: nn.Module) -> None:
    """Raise ValueError naming the first parameter or buffer (e.g. a BatchNorm running
    statistic) that holds NaN or Inf."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in named:
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ValueError(f"{kind} {name!r} holds NaN or Inf values")


#: Layers with parameters that stay digital on a PCM chip (normalizations and PReLU).
DIGITAL_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                  nn.modules.instancenorm._InstanceNorm, nn.PReLU)


def check_analog_model(model: nn.Module) -> None:
    """Raise ValueError unless ``model`` has at least one analog layer (Conv2d or Linear) and no
    other layer with weights (Conv1d, ConvTranspose2d, Embedding, LSTM, ... would silently stay
    digital and make the simulated chip look better than it is); names the unsupported layers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    analog = analog_layers(model)
    unsupported = [f"{n} ({type(m).__name__})" for n, m in model.named_modules()
                   if n not in analog and not isinstance(m, DIGITAL_LAYERS)
                   and any(True for _ in m.parameters(recurse=False))]
    if unsupported:
        shown = ", ".join(unsupported[:5]) + (f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else "")
        raise ValueError(f"unsupported layer type(s) for PCM mapping: {shown}; only Conv2d and Linear "
                         f"weights go on PCM (BatchNorm/LayerNorm/GroupNorm stay digital)")
    if not analog:
        raise ValueError(f"model {type(model).__name__} has no analog layer (Conv2d or Linear) to program onto PCM")


def check_model_state(model: nn.Module, name: str = "model") -> None:
    """Validate a network once, on entry to a run or a chip: a module with analog layers
    (:func:`check_analog_model`), every parameter and buffer with values (not on the ``meta``
    device), on one device, floating-point ones in float32 (the simulation's precision: half,
    bfloat16 and double models are refused, not silently cast), finite (:func:`check_finite`),
    BatchNorm running variances > 0, and a first layer that takes 3-channel (RGB) images.
    Raises ValueError (TypeError for a non-module) naming the tensor and what is allowed."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    tensors = [("parameter", n, t) for n, t in model.named_parameters()] + [
        ("buffer", n, t) for n, t in model.named_buffers()]
    if not tensors:
        raise ValueError(f"{name} has no parameters")
    for kind, n, t in tensors:
        if t.device.type == "meta":
            raise ValueError(f"{name}: {kind} {n!r} is on the meta device (it has no values); load "
                             f"weights into the model first (e.g. aimc_lib.zoo.load_model)")
        if t.is_floating_point() and t.dtype != torch.float32:
            raise ValueError(f"{name}: {kind} {n!r} is {t.dtype}; the simulation runs in float32: "
                             f"convert the model with model.float()")
        if t.is_complex():
            raise ValueError(f"{name}: {kind} {n!r} is complex ({t.dtype}); a network's weights are float32")
    devices = sorted({str(t.device) for _, _, t in tensors})
    if len(devices) > 1:
        raise ValueError(f"{name} lies on several devices ({', '.join(devices)}); move it to one with model.to(device)")
    check_analog_model(model)
    check_finite(model)
    for n, m in model.named_modules():
        var = getattr(m, "running_var", None)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and var is not None and not bool((var > 0).all()):
            raise ValueError(f"{name}: BatchNorm {n!r} has running variance {float(var.min()):g} <= 0 (a "
                             f"variance is positive): the model's statistics are corrupted")
    first = next(iter(analog_layers(model).values()))
    if isinstance(first, nn.Conv2d) and first.in_channels != 3:
        raise ValueError(f"{name}: its first layer takes {first.in_channels}-channel images; CIFAR-10 "
                         f"images have 3 (RGB)")
