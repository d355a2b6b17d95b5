"""aimc_lib: analog in-memory computing with phase-change memory, in PyTorch.

Reproduces Joshi et al., *Accurate deep neural network inference using computational
phase-change memory*, Nature Communications 11, 2473 (2020).
"""
__version__ = "0.1.0"

from .models import resnet, resnet32, count_analog_weights  # noqa: E402
from .pcm import PCMParams  # noqa: E402
from .mapping import AnalogChip, program_network  # noqa: E402
from .zoo import pretrained  # noqa: E402
from . import config, data, evaluation, experiments, zoo  # noqa: E402

__all__ = ["resnet", "resnet32", "count_analog_weights", "PCMParams", "AnalogChip",
           "program_network", "pretrained", "__version__"]
