"""Program a trained network onto simulated PCM and read it back at any time after programming.

Each analog layer (every conv, and the FC layer with its bias as an extra column) becomes a
crossbar of differential pairs: per layer ``W_max = max |W|``; a positive weight sets
``G+ = G_max W / W_max`` and leaves ``G- = 0``, a negative one the reverse; the weight read
back is ``W = (G+ - G-) W_max / G_max``. An :class:`AnalogChip` holds one programmed instance:
its programming noise and drift exponents are drawn once; every :meth:`AnalogChip.read` draws
fresh read noise and returns a ready-to-evaluate copy of the network.

Compensation:

* ``"none"``: the raw drifted weights.
* ``"gdc"``: global drift compensation, one digital scalar per layer,
  ``alpha(t) = readout(t_ref) / readout(t)``, with the readout the mean absolute output of the
  crossbar for all one-hot inputs (``= mean |G+ - G-|``) and ``t_ref = 0`` (a calibration read right
  after programming).
* ``"adabs"``: GDC, then BatchNorm running statistics re-estimated from calibration images passed
  through the drifted network (learned BN scale and shift unchanged).

Periphery: by default a read hands back an ordinary network whose weights are the read
conductances (an ideal periphery). ``read(..., periphery=Periphery.aihwkit_like())`` instead
replaces every analog layer by an :class:`aimc_lib.backends.AnalogLayer` that computes its
products through input DAC, output noise and ADC (see :mod:`aimc_lib.periphery`), on the backend
``backend=`` names (:mod:`aimc_lib.backends`).

Random draws: every draw of a chip comes from the simulation's counter-based stream
(:mod:`aimc_lib.rng`), keyed by the chip's seed and by what the draw is: programming noise and
drift exponent of device G+ or G- of layer ``i``; read noise of read ``k`` (read 0 is the
calibration read right after programming; each later read of the chip, by :meth:`AnalogChip.read`,
:meth:`AnalogChip.weights_at` or :meth:`AnalogChip.gdc_factors`, takes the next index); output
noise of read ``k`` through the periphery, layer ``i``, image ``n``. So a seed gives the same chip
and the same reads on every device and backend, with and without a periphery (paired studies), and
the chip is programmed and read on the model's device.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from . import pcm, rng
from .pcm import check_compensation
from .rng import check_stream
from .checks import ArgumentError
from .backends import AnalogLayer, resolve
from .converters import Periphery
from .models import analog_layers, check_finite, check_model_state, crossbar_matrix
from .data import calibration_images
from .periphery import gdc_alpha, gdc_readout

def programming_streams(seed: int, layer: int, device: int) -> tuple[rng.Stream, rng.Stream]:
    """The streams of device ``device`` (0: G+, 1: G-) of layer ``layer`` (in
    :func:`aimc_lib.models.analog_layers` order) of chip ``seed``: its programming noise and its drift
    exponents (pass both to :func:`aimc_lib.pcm.program`)."""
    return (rng.Stream(seed, rng.PROGRAMMING, layer, device), rng.Stream(seed, rng.DRIFT_EXPONENT, layer, device))


def read_stream(seed: int, layer: int, device: int, read: int) -> rng.Stream:
    """The read noise of read ``read`` (0: the calibration read right after programming) of device
    ``device`` (0: G+, 1: G-) of layer ``layer`` of chip ``seed`` (pass it to :func:`aimc_lib.pcm.read`)."""
    return rng.Stream(seed, rng.READ_NOISE, layer, device, read)


def readout_stream(seed: int, layer: int, read: int) -> rng.Stream:
    """The output noise of GDC's readout through the periphery (one-hot or known inputs), at read
    ``read`` (0: the reference right after programming) of layer ``layer`` of chip ``seed``
    (:func:`aimc_lib.periphery.gdc_readout`)."""
    return rng.Stream(seed, rng.READOUT_NOISE, layer, 0, read)


def weights_to_targets(w: torch.Tensor, w_max: float, g_max_us: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed weights -> target conductances (G+, G-) in uS of a differential pair."""
    scale = g_max_us / w_max if w_max > 0 else 0.0
    zero = torch.zeros_like(w)
    g_plus = torch.where(w > 0, w * scale, zero).clamp(max=g_max_us)
    g_minus = torch.where(w < 0, -w * scale, zero).clamp(max=g_max_us)
    return g_plus, g_minus


def conductances_to_weights(g_diff_us: torch.Tensor, w_max: float, g_max_us: float) -> torch.Tensor:
    """Differential-pair conductance difference G+ - G- (uS) -> signed weights."""
    return g_diff_us * (w_max / g_max_us)


@dataclass
class ProgrammedLayer:
    """The programmed state of one crossbar: conductances (uS) and drift exponents of both devices."""

    w_max: float
    shape: tuple
    g_plus_us: torch.Tensor
    nu_plus: torch.Tensor
    g_minus_us: torch.Tensor
    nu_minus: torch.Tensor
    gdc_reference_us: float = 0.0
    reference_diff_us: torch.Tensor | None = None  # the calibration read at t_ref = 0 (G+ - G-)


def _set_crossbar(layer: nn.Module, w2d: torch.Tensor) -> None:
    with torch.no_grad():
        if getattr(layer, "bias", None) is not None:
            layer.bias.copy_(w2d[:, -1])
            w2d = w2d[:, :-1]
        layer.weight.copy_(w2d.reshape(layer.weight.shape))


class AnalogChip:
    """One simulated PCM chip holding a whole network.

    Args:
        model: the trained network (never modified; a copy is kept).
        params: the PCM model parameters.
        seed: names this chip: every random draw (programming noise, drift exponents, read noise,
            the periphery's output noise) is keyed by it (module docstring).
        stream: ``"philox4x32-10"``, the simulation's counter-based stream (:mod:`aimc_lib.rng`),
            recorded in results; the chip lives on the model's device.

    A seed names the same chip everywhere: a result computed on a GPU can be checked on a laptop.
    """

    def __init__(self, model: nn.Module, params: pcm.PCMParams = pcm.PCMParams(), seed: int = 0,
                 stream: str = rng.STREAM_NAME):
        check_model_state(model)  # dtype, device, finite, BN variance, 3-channel input
        if not isinstance(params, pcm.PCMParams):
            raise ArgumentError(f"params must be an aimc_lib.pcm.PCMParams, got {type(params).__name__}")
        self.params = params
        self.seed = rng.check_seed(seed)
        self.stream = check_stream(stream)
        self._template = copy.deepcopy(model).eval()
        self.device = next(self._template.parameters()).device
        self._periphery_references: dict[Periphery, dict[str, float]] = {}
        self.reads = 0  # reads so far after the calibration read (read 0)
        self.layers: dict[str, ProgrammedLayer] = {}
        for i, (name, layer) in enumerate(analog_layers(self._template).items()):
            w = crossbar_matrix(layer).detach().float()
            w_max = float(w.abs().max())
            tp, tm = weights_to_targets(w, w_max, params.g_max_us)
            gp, nup = pcm.program(tp, params, self._programming_draws(i, 0))
            gm, num = pcm.program(tm, params, self._programming_draws(i, 1))
            self.layers[name] = ProgrammedLayer(w_max, tuple(w.shape), gp, nup, gm, num)
        # Calibration read right after programming (t_ref = 0) for global drift compensation.
        for i, st in enumerate(self.layers.values()):
            st.reference_diff_us = self._read_difference(st, 0.0, i, 0)
            st.gdc_reference_us = float(st.reference_diff_us.abs().mean())

    def _programming_draws(self, layer: int, sub: int):
        return programming_streams(self.seed, layer, sub)

    def _next_read(self) -> int:
        self.reads += 1
        return self.reads

    def _read_difference(self, st: ProgrammedLayer, t_s: float, layer: int, read: int) -> torch.Tensor:
        p = self.params
        g_plus, g_minus = read_stream(self.seed, layer, 0, read), read_stream(self.seed, layer, 1, read)
        return pcm.read(st.g_plus_us, st.nu_plus, t_s, p, g_plus) - pcm.read(st.g_minus_us, st.nu_minus, t_s, p, g_minus)

    def gdc_factors(self, t_s: float) -> dict[str, float]:
        """The GDC scale alpha(t) = readout(0) / readout(t) of every layer, from one fresh read."""
        pcm.check_read_time(t_s, self.params)
        read = self._next_read()
        out = {}
        for i, (name, st) in enumerate(self.layers.items()):
            readout = float(self._read_difference(st, t_s, i, read).abs().mean())
            out[name] = st.gdc_reference_us / readout if readout > 0 else 1.0
        return out

    def weights_at(self, t_s: float, compensation: str = "gdc") -> dict[str, torch.Tensor]:
        """Crossbar matrices (as weights) read ``t_s`` seconds after programming, with GDC if asked."""
        pcm.check_read_time(t_s, self.params)
        check_compensation(compensation)
        read = self._next_read()
        out = {}
        for i, (name, st) in enumerate(self.layers.items()):
            diff = self._read_difference(st, t_s, i, read)
            if compensation != "none":
                readout = float(diff.abs().mean())
                if readout > 0:
                    diff = diff * (st.gdc_reference_us / readout)
            out[name] = conductances_to_weights(diff, st.w_max, self.params.g_max_us).to(self.device)
            self._check_read(name, out[name], t_s)
        return out

    def _check_read(self, name: str, w: torch.Tensor, t_s: float) -> None:
        """A read weight must be finite: a NaN or Inf becomes an error naming its source, never a result."""
        if not torch.isfinite(w).all():
            raise ValueError(f"chip {self.seed} read at {t_s:g} s: layer {name!r} holds NaN or Inf weights "
                             f"(PCM parameters {self.params.to_dict()}); these parameters or times are "
                             f"outside what float32 conductances can hold")

    def read(self, t_s: float, compensation: str = "gdc", calibration_x: torch.Tensor | None = None,
             calibration_batch_size: int = 500, periphery: Periphery | None = None,
             backend: str = "auto") -> nn.Module:
        """A fresh copy of the network with the weights this chip holds ``t_s`` seconds after programming.

        ``compensation``: ``"none"``, ``"gdc"`` or ``"adabs"`` (needs ``calibration_x``: normalized
        float images, e.g. a few thousand training images). ``periphery``: ``None`` or an ideal
        :class:`~aimc_lib.converters.Periphery` gives a plain network with the read weights;
        any other computes every analog layer through DAC, output noise and ADC, on ``backend``
        (:data:`aimc_lib.backends.BACKENDS`; the one used is the layers' ``backend``). The returned
        model is in eval mode.
        """
        if periphery is None or periphery.is_ideal:
            return self.read_into(copy.deepcopy(self._template), t_s, compensation, calibration_x,
                                  calibration_batch_size)
        return self._read_with_periphery(t_s, compensation, calibration_x, calibration_batch_size, periphery,
                                         backend)

    def _periphery_reference(self, per: Periphery) -> dict[str, float]:
        """GDC reference readouts at t_ref = 0 measured through ``per`` (once per periphery; read 0)."""
        if per not in self._periphery_references:
            self._periphery_references[per] = {
                name: gdc_readout(st.reference_diff_us / self.params.g_max_us, per, readout_stream(self.seed, i, 0))
                for i, (name, st) in enumerate(self.layers.items())}
        return self._periphery_references[per]

    def _read_with_periphery(self, t_s: float, compensation: str, calibration_x, calibration_batch_size: int,
                             per: Periphery, backend: str) -> nn.Module:
        pcm.check_read_time(t_s, self.params)
        check_compensation(compensation)
        backend = resolve(backend, self.device)
        if compensation == "adabs" and calibration_x is None:
            raise ValueError("compensation 'adabs' needs calibration_x (normalized training images)")
        if compensation == "adabs":
            calibration_images(calibration_x)
        model = copy.deepcopy(self._template)
        layers = analog_layers(model)
        reference = self._periphery_reference(per) if compensation != "none" and per.gdc_readout != "exact" else None
        read = self._next_read()
        for i, (name, st) in enumerate(self.layers.items()):
            diff = self._read_difference(st, t_s, i, read).to(self.device)
            w_norm = diff / self.params.g_max_us
            alpha = 1.0
            if compensation != "none":
                if reference is not None:
                    alpha = gdc_alpha(reference[name], gdc_readout(w_norm, per, readout_stream(self.seed, i, read)))
                else:
                    readout = float(diff.abs().mean())
                    alpha = st.gdc_reference_us / readout if readout > 0 else 1.0
            self._check_read(name, w_norm * (st.w_max * alpha), t_s)
            noise = rng.Stream(self.seed, rng.OUTPUT_NOISE, i, 0, read)
            _replace_module(model, name, AnalogLayer(layers[name], w_norm, st.w_max * alpha, per, noise, backend))
        if compensation == "adabs":
            reestimate_bn_statistics(model, calibration_x, calibration_batch_size)
            self._check_statistics(model, t_s)
        return model.eval()

    def _check_statistics(self, model: nn.Module, t_s: float) -> None:
        try:
            check_finite(model)
        except ValueError as e:
            raise ValueError(f"chip {self.seed} read at {t_s:g} s: after BN re-estimation (adabs), {e}") from None

    def read_into(self, model: nn.Module, t_s: float, compensation: str = "gdc",
                  calibration_x: torch.Tensor | None = None, calibration_batch_size: int = 500) -> nn.Module:
        """Like :meth:`read`, but writes the weights (and BN statistics) into ``model`` in place.

        ``model`` must have the programmed network's architecture; reusing one model (e.g. a
        ``torch.compile``-d one, which follows in-place weight updates) avoids a copy per read.
        """
        check_compensation(compensation)
        if compensation == "adabs" and calibration_x is None:
            raise ValueError("compensation 'adabs' needs calibration_x (normalized training images)")
        if compensation == "adabs":
            calibration_images(calibration_x)
        layers = analog_layers(model)
        if set(layers) != set(self.layers):
            raise ValueError("read_into: model does not have the programmed network's layers")
        # BN statistics and all digital parameters come from the programmed network
        model.load_state_dict(self._template.state_dict())
        for name, w2d in self.weights_at(t_s, compensation).items():
            _set_crossbar(layers[name], w2d)
        if compensation == "adabs":
            reestimate_bn_statistics(model, calibration_x, calibration_batch_size)
            self._check_statistics(model, t_s)
        return model.eval()


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


@torch.no_grad()
def reestimate_bn_statistics(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> None:
    """Replace every BatchNorm's running mean/var by the average over ``x`` (AdaBS); in place."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all calibration batches
    model.train()
    dev = next(model.parameters()).device
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size].to(dev))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def program_network(model: nn.Module, params: pcm.PCMParams = pcm.PCMParams(), seed: int = 0) -> AnalogChip:
    """Program ``model`` onto a simulated PCM chip (see :class:`AnalogChip`)."""
    return AnalogChip(model, params, seed)
