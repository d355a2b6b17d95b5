"""What one experiment run is: the description of an accuracy-vs-time run and of a weight-noise sweep.

A :class:`DriftRun` is everything that defines an accuracy-vs-time run apart from its data (the
model, the test images, the calibration images): time grid, chips, compensation, PCM parameters,
periphery, seed, test subset, calibration, batch size. It is frozen and checks itself on
construction, like :class:`aimc_lib.training.TrainConfig` for training, and it is the one
description of the run: :func:`aimc_lib.experiments.accuracy_vs_time` is built on it, its
fingerprint decides whether an interrupted run may be resumed (:mod:`aimc_lib.resume`), and it
is written as the result's ``meta``, from which :meth:`DriftRun.from_meta` reads it back (also
from result files written before it existed). :class:`WeightNoiseRun` does the same for
:func:`aimc_lib.experiments.accuracy_under_weight_noise`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from . import checks, rng
from .backends import BACKENDS
from .checks import ArgumentError
from .data import N_TEST, Split
from .models import check_model_state
from .pcm import PCMParams, check_compensation, time_grid
from .periphery import Periphery
from .times import DEFAULT_TIMES_S


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)  # a frozen dataclass normalises its own fields once


def check_model_and_test(model, test: Split, test_subset: int = 0) -> None:
    """A finite analog model, a test Split, and a test subset it can give, else an error naming which
    (ValueError for NaN or Inf)."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_model_state(model)  # dtype, device, finite, BN variance, 3-channel input
    if not isinstance(test, Split):
        raise ArgumentError(f"test must be an aimc_lib.data.Split (e.g. load_cifar10('test')), got {type(test).__name__}")
    checks.integer("test_subset (0 = all test images)", test_subset, 0, len(test))


@dataclass(frozen=True)
class DriftRun:
    """One accuracy-vs-time run, without its data (see :func:`aimc_lib.experiments.accuracy_vs_time`).

    Attributes:
        times_s: times after programming (s) at which every chip is read, increasing.
        n_chips: independent chips; chip ``k`` is programmed with seed ``seed + k``.
        compensation: ``"none"``, ``"gdc"`` or ``"adabs"``.
        params: the PCM model.
        seed: seed of the first chip (and of the calibration subset).
        test_subset: a class-balanced subset of that many test images (0 = all).
        calibration_images: images for BN re-estimation (used by ``"adabs"`` only).
        calibration_augmented: augment the calibration images like the training batches.
        batch_size: images per forward pass.
        compile: run inference through ``torch.compile`` (ideal periphery only).
        periphery: converters and output noise of every analog layer (``None`` = ideal).
        model_name: the model's name, recorded in the result.
        fp32_accuracy: the digital baseline (%) to record; ``None`` = measure it on the test images.
        stream: the chips' random stream (:data:`aimc_lib.rng.STREAMS`).
        backend: where the periphery runs (:data:`aimc_lib.backends.BACKENDS`); the one used is
            recorded as the result's ``meta["periphery_backend"]``.
    """

    times_s: tuple[float, ...] = tuple(DEFAULT_TIMES_S)
    n_chips: int = 10
    compensation: str = "gdc"
    params: PCMParams = field(default_factory=PCMParams)
    seed: int = 0
    test_subset: int = 0
    calibration_images: int = 2000
    calibration_augmented: bool = True
    batch_size: int = 1000
    compile: bool = False
    periphery: Periphery | None = None
    model_name: str = ""
    fp32_accuracy: float | None = None
    stream: str = rng.STREAM_NAME
    backend: str = "auto"

    def __post_init__(self):
        """One-line errors naming the argument and its accepted values (see :mod:`aimc_lib.checks`)."""
        if not isinstance(self.params, PCMParams):
            raise ArgumentError(f"params must be an aimc_lib.pcm.PCMParams, got {type(self.params).__name__}")
        if self.periphery is not None and not isinstance(self.periphery, Periphery):
            raise ArgumentError(f"periphery must be an aimc_lib.periphery.Periphery or None, "
                                f"got {type(self.periphery).__name__}")
        _set(self, "periphery", self.periphery or Periphery.ideal())
        check_compensation(self.compensation)
        _set(self, "times_s", tuple(time_grid(self.times_s, self.params)))
        n = checks.positive_int("n_chips", self.n_chips, checks.MAX_CHIPS)
        _set(self, "n_chips", n)
        _set(self, "seed", checks.seed(self.seed, "seed", n))
        _set(self, "test_subset", checks.integer("test_subset (0 = all test images)", self.test_subset, 0))
        _set(self, "batch_size", checks.positive_int("batch_size", self.batch_size))
        _set(self, "calibration_images", checks.positive_int("calibration_images", self.calibration_images))
        for name in ("calibration_augmented", "compile"):
            checks.bool_flag(name, getattr(self, name))
        if not isinstance(self.model_name, str):
            raise ArgumentError(f"model_name must be a string, got {self.model_name!r}")
        if self.fp32_accuracy is not None:
            _set(self, "fp32_accuracy", checks.number("fp32_accuracy (%)", self.fp32_accuracy, 0.0, 100.0))
        rng.check_stream(self.stream)
        checks.choice("backend", self.backend, BACKENDS)

    @property
    def seeds(self) -> list[int]:
        """The seed of every chip (``seed, seed + 1, ...``)."""
        return [self.seed + k for k in range(self.n_chips)]

    @property
    def uses_calibration(self) -> bool:
        """True when the run re-estimates BatchNorm statistics from calibration images (AdaBS)."""
        return self.compensation == "adabs"

    @property
    def compiled(self) -> bool:
        """True when inference runs compiled (``compile`` with an ideal periphery)."""
        return self.compile and self.periphery.is_ideal

    def fingerprint_parts(self, model: nn.Module, test: Split, calibration_x, device: str,
                          periphery_backend: str | None = None) -> dict:
        """What changes a chip's numbers, for :class:`aimc_lib.resume.ChipLog`: this description
        (without the number of chips, so that a run can be extended), the run's data and the
        periphery backend it resolved to."""
        return dict(model=model, test_x=test.x, test_y=test.y, times_s=list(self.times_s),
                    compensation=self.compensation, params=self.params.to_dict(), seed=self.seed,
                    calibration_x=calibration_x, calibration_augmented=self.calibration_augmented,
                    batch_size=self.batch_size, compile=self.compile, device=device,
                    periphery=self.periphery.to_dict(), stream=self.stream, periphery_backend=periphery_backend)

    def meta(self) -> dict:
        """This description as the result's ``meta`` fields (the rest: model checksum, test images,
        baseline accuracy, provenance and wall time, is added by the run)."""
        return {"model": self.model_name, "compensation": self.compensation, "n_chips": self.n_chips,
                "seeds": self.seeds, "pcm_params": self.params.to_dict(), "periphery": self.periphery.to_dict(),
                "calibration_images": self.calibration_images if self.uses_calibration else 0,
                "calibration_augmented": self.calibration_augmented if self.uses_calibration else None,
                "compiled": self.compiled, "stream": self.stream}

    @classmethod
    def from_meta(cls, res: dict) -> "DriftRun":
        """The run that wrote result ``res`` (a dict as :func:`aimc_lib.result_files.load_results`
        returns), also from files written before this class existed (no ``periphery``: ideal; no
        ``calibration_augmented``: augmented). A result without ``stream`` was made before the
        counter-based stream, by aimc_lib 0.1.0, and is refused: that release re-derives it.
        ``batch_size`` is not recorded: the default."""
        m = res["meta"]
        if "stream" not in m:
            raise ValueError("this result was made before the counter-based stream (no meta.stream): "
                             "aimc_lib 0.1.0 re-derives it, this version does not")
        seeds = m["seeds"]
        if list(seeds) != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError(f"meta.seeds {seeds} are not consecutive: not the result of one DriftRun")
        adabs = m["compensation"] == "adabs"
        return cls(times_s=res["times_s"], n_chips=m["n_chips"], compensation=m["compensation"],
                   params=PCMParams(**m["pcm_params"]), seed=seeds[0],
                   test_subset=0 if m["test_images"] == N_TEST else m["test_images"],
                   calibration_images=m["calibration_images"] if adabs else cls.calibration_images,
                   calibration_augmented=(m.get("calibration_augmented") is not False) if adabs else True,
                   compile=m.get("compiled", False),
                   periphery=Periphery(**m["periphery"]) if m.get("periphery") else None,
                   model_name=m.get("model", ""), fp32_accuracy=m.get("fp32_accuracy"),
                   stream=m["stream"], backend=m.get("periphery_backend") or "auto")


@dataclass(frozen=True)
class WeightNoiseRun:
    """One weight-noise sweep, without its data (see :func:`aimc_lib.experiments.accuracy_under_weight_noise`).

    Attributes:
        etas: relative weight-noise stds, each in [0, 1).
        n_repeats: independent noise draws per eta.
        seed: seed of the noise generator.
        test_subset: a class-balanced subset of that many test images (0 = all).
        batch_size: images per forward pass.
    """

    etas: tuple[float, ...]
    n_repeats: int = 3
    seed: int = 0
    test_subset: int = 0
    batch_size: int = 1000

    def __post_init__(self):
        etas = self.etas
        if isinstance(etas, (str, bytes)) or not hasattr(etas, "__iter__"):
            raise ArgumentError(f"etas must be a list of relative noise levels in [0, 1), got {etas!r}")
        etas = tuple(checks.number("every eta (relative weight-noise std)", e, 0.0, 1.0, high_open=True)
                     for e in etas)
        if not etas:
            raise ArgumentError("etas is empty: give at least one relative noise level in [0, 1)")
        _set(self, "etas", etas)
        _set(self, "n_repeats", checks.positive_int("n_repeats", self.n_repeats))
        _set(self, "seed", checks.seed(self.seed, "seed"))
        _set(self, "test_subset", checks.integer("test_subset (0 = all test images)", self.test_subset, 0))
        _set(self, "batch_size", checks.positive_int("batch_size", self.batch_size))
