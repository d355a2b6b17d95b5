"""aimc_lib: analog in-memory computing with phase-change memory, in PyTorch.

Reproduces Joshi et al., *Accurate deep neural network inference using computational
phase-change memory*, Nature Communications 11, 2473 (2020).
"""
from ._version import __version__
from .models import resnet, resnet32, count_analog_weights
from .pcm import PCMParams
from .mapping import AnalogChip, program_network
from .zoo import pretrained
from . import config, data, evaluation, experiments, zoo

__all__ = ["resnet", "resnet32", "count_analog_weights", "PCMParams", "AnalogChip",
           "program_network", "pretrained", "__version__"]
