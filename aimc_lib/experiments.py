"""Accuracy vs time after programming: the experiment behind the paper's drift figure.

Protocol: each repetition is one simulated chip, programmed once
(programming noise and drift exponents drawn once) and then read at every time of the grid with
fresh read noise, in increasing time order, as the hardware experiment does.
"""
from __future__ import annotations

import copy
import hashlib
import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks
from .checks import ArgumentError
from .config import provenance
from .data import Split, calibration_batch
from .evaluation import accuracy
from . import rng
from .backends import resolve
from .mapping import AnalogChip
from .pcm import PCMParams
from .periphery import Periphery
from .resume import ChipLog, check_results_path, estimate_seconds, warn_if_long
from .runs import DriftRun, WeightNoiseRun, check_model_and_test
from .times import DEFAULT_TIMES_S
from .weight_noise import noisy_weights


def model_sha256(model: nn.Module) -> str:
    """Checksum of a model's parameters and buffers (names, shapes and values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def accuracy_vs_time(model: nn.Module, test: Split, times_s=DEFAULT_TIMES_S, n_chips: int = 10,
                     compensation: str = "gdc", params: PCMParams = PCMParams(), seed: int = 0,
                     test_subset: int = 0, calibration_split: Split | None = None,
                     calibration_images: int = 2000, model_name: str = "", progress: bool = True,
                     compile: bool = False, fp32_accuracy: float | None = None,
                     batch_size: int = 1000, calibration_augmented: bool = True,
                     periphery: Periphery | None = None, results_path=None, backend: str = "auto",
                     stream: str = rng.STREAM_NAME) -> dict:
    """Test accuracy (%) of ``model`` on ``n_chips`` simulated PCM chips at each time in ``times_s``.

    Chip ``k`` is programmed with seed ``seed + k``. ``compensation``: ``"none"``, ``"gdc"`` or
    ``"adabs"`` (then ``calibration_split``, e.g. the training set, provides
    ``calibration_images`` images for BN re-estimation: a class-balanced subset drawn with
    ``seed``, or the split itself if it holds exactly ``calibration_images`` images; augmented
    like the training batches unless ``calibration_augmented=False``, see
    :func:`aimc_lib.data.calibration_batch`). Returns a JSON-ready dict with the
    summary per time (mean, std over chips), every chip's value, and full metadata.
    ``compile=True`` runs inference through ``torch.compile`` (about 1.6x faster on CPU after a
    one-off compilation of tens of seconds; worth it for long grids). ``fp32_accuracy``, if
    given, is recorded as the digital baseline instead of being measured again on ``test``.
    ``batch_size``: images per forward pass (on a GPU, the whole test set at once is fastest).
    ``periphery``: converters and output noise of every analog layer (:mod:`aimc_lib.periphery`;
    ``None`` = ideal). A chip's conductances do not depend on it, so results with different
    peripheries and the same ``seed`` are paired chip by chip.
    ``backend``: where the periphery runs (:data:`aimc_lib.backends.BACKENDS`; the one used is
    recorded as ``meta["periphery_backend"]``). ``stream``: the chips' random stream
    (:data:`aimc_lib.rng.STREAMS`), recorded as ``meta["stream"]``.
    ``results_path``: write the result there (JSON), saving each finished chip as it goes to
    ``<results_path>.partial.json``; an interrupted call resumes after its last finished chip
    when called again with the same arguments (bit-identical result), and refuses different
    ones (see :mod:`aimc_lib.resume`). The arguments make a :class:`aimc_lib.runs.DriftRun`, which
    checks them up front, fingerprints the run and is written as the result's ``meta``; a run estimated to take over an hour gets a warning with the estimate.
    """
    run = DriftRun(times_s=times_s, n_chips=n_chips, compensation=compensation, params=params, seed=seed,
                   test_subset=test_subset, calibration_images=calibration_images,
                   calibration_augmented=calibration_augmented, batch_size=batch_size, compile=compile,
                   periphery=periphery, model_name=model_name, fp32_accuracy=fp32_accuracy, backend=backend,
                   stream=stream)
    return run_drift(run, model, test, calibration_split, progress=progress, results_path=results_path)


def run_drift(run: DriftRun, model: nn.Module, test: Split, calibration_split: Split | None = None,
              progress: bool = True, results_path=None, overwrite: bool = False) -> dict:
    """The accuracy-vs-time run ``run`` of ``model`` on ``test`` (see :func:`accuracy_vs_time`).

    ``calibration_split`` gives the calibration images of ``"adabs"``; ``results_path``, if
    given, receives the result and makes the run resumable; it may already hold a result (which
    the run replaces) but no other kind of file, unless ``overwrite`` (the command line's ``--force``).
    Neither it nor its partial file may be a file this process read as an input (data, checkpoints),
    and the run holds a lock on it for its whole life (:class:`aimc_lib.checks.OutputLock`): a
    second run on the same path is refused at once.
    """
    check_model_and_test(model, test, run.test_subset)
    checks.bool_flag("progress", progress)
    if results_path is None:
        return _run_drift(run, model, test, calibration_split, progress, None, False)
    checks.bool_flag("overwrite", overwrite)
    check_results_path(results_path, overwrite)
    with checks.OutputLock(results_path, "results_path"):  # the result and its partial file: this run's alone
        return _run_drift(run, model, test, calibration_split, progress, results_path, overwrite)


def _network_state(model: nn.Module) -> list[torch.Tensor]:
    """A copy of every tensor of ``model``'s state (weights, BN statistics)."""
    return [v.detach().clone() for v in model.state_dict().values()]


def _same_state(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    """Whether two network states are bit for bit the same (then inference gives the same accuracy).

    A chip without drift and read noise (e.g. the programming-only study) reads the same weights
    at every time; its accuracy is measured once instead of once per time, with the same numbers.
    """
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _run_drift(run: DriftRun, model: nn.Module, test: Split, calibration_split: Split | None,
               progress: bool, results_path, overwrite: bool) -> dict:
    if calibration_split is not None and not isinstance(calibration_split, Split):
        raise ArgumentError(f"calibration_split must be a Split (e.g. the training set) or None, "
                            f"got {type(calibration_split).__name__}")
    times, n_chips, seed, batch_size = list(run.times_s), run.n_chips, run.seed, run.batch_size
    if run.test_subset:
        test = test.subset(run.test_subset, seed=0)
    calib_x = None
    if run.uses_calibration:
        if calibration_split is None:
            raise ValueError("compensation 'adabs' needs calibration_split (e.g. the training set)")
        calib_x = calibration_batch(calibration_split, run.calibration_images, seed=seed,
                                    augmented=run.calibration_augmented)
    t_start = time.time()
    per_chip = np.zeros((n_chips, len(times)))
    bar = tqdm(total=n_chips * len(times), desc=f"chips x times ({run.compensation})", disable=not progress)
    analog_model = copy.deepcopy(model).eval()  # one model, its weights overwritten at every read
    runner = torch.compile(analog_model) if run.compiled else analog_model
    device = next(model.parameters()).device
    backend = None if run.periphery.is_ideal else resolve(run.backend, device)
    chips = ChipLog(results_path, len(times), overwrite,
                    **run.fingerprint_parts(model, test, calib_x, str(device), backend))
    todo = (n_chips - min(chips.n_done, n_chips)) * len(times)
    warn_if_long(estimate_seconds(analog_model, test, batch_size, todo, accuracy), todo)
    for k in range(n_chips):
        if chips.done(k):  # finished by an interrupted earlier call with the same arguments
            per_chip[k] = chips.rows[k]
            bar.update(len(times))
            continue
        t_chip = time.time()
        chip = AnalogChip(model, run.params, seed=seed + k, stream=run.stream)
        last_read = None  # the ideal chip's previous read: its network state and accuracy
        for j, t in enumerate(times):
            if run.periphery.is_ideal:
                chip.read_into(analog_model, t, run.compensation, calib_x)
                state = _network_state(analog_model)
                if last_read is not None and _same_state(state, last_read[0]):
                    per_chip[k, j] = last_read[1]  # the same network as the read before: its accuracy
                else:
                    per_chip[k, j] = accuracy(runner, test, batch_size)
                last_read = (state, per_chip[k, j])
            else:
                per_chip[k, j] = accuracy(chip.read(t, run.compensation, calib_x, periphery=run.periphery,
                                                    backend=backend),
                                          test, batch_size)
            bar.update()
        chips.add(k, per_chip[k], time.time() - t_chip)
    bar.close()
    meta = run.meta()
    name, compiled = meta.pop("model"), meta.pop("compiled")
    fp32 = accuracy(model, test, batch_size) if run.fp32_accuracy is None else run.fp32_accuracy
    return chips.finish({
        "times_s": times,
        "mean": per_chip.mean(0).tolist(),
        "std": per_chip.std(0, ddof=1).tolist() if n_chips > 1 else [0.0] * len(times),
        "per_chip": per_chip.tolist(),
        "meta": {
            "model": name, "model_sha256": model_sha256(model), "fp32_accuracy": fp32,
            "test_images": len(test), **meta, "periphery_backend": backend, **provenance(device),
            "wall_seconds": round(time.time() - t_start, 1), "compiled": compiled,
        },
    })


def accuracy_under_weight_noise(model: nn.Module, test: Split, etas, n_repeats: int = 3, seed: int = 0,
                                progress: bool = False, test_subset: int = 0, batch_size: int = 1000) -> dict:
    """Test accuracy (%) with Gaussian weight noise ``eta * max|W_l|`` on every analog layer.

    The digital counterpart of programming noise, the inference-noise axis ``eta_inf`` of the
    paper's Fig. 2: for each relative std in ``etas``, ``n_repeats`` independent noise draws.
    ``test_subset``: evaluate on a class-balanced subset of that many images (0 = all).
    Returns ``{"etas", "mean", "std", "per_repeat"}``.
    """
    run = WeightNoiseRun(etas, n_repeats=n_repeats, seed=seed, test_subset=test_subset, batch_size=batch_size)
    check_model_and_test(model, test, run.test_subset)
    checks.bool_flag("progress", progress)
    etas, n_repeats, seed, batch_size = list(run.etas), run.n_repeats, run.seed, run.batch_size
    if run.test_subset:
        test = test.subset(run.test_subset, seed=0)
    noisy = copy.deepcopy(model).eval()
    n_points = len(etas) * n_repeats
    warn_if_long(estimate_seconds(noisy, test, batch_size, n_points, accuracy), n_points,
                 what="noisy-weight evaluations (etas x repeats)",
                 advice="fewer etas, repeats or test images (test_subset) make it shorter")
    per = np.zeros((len(etas), n_repeats))
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for i, eta in enumerate(tqdm(etas, desc="eta", disable=not progress)):
        for r in range(n_repeats):
            with torch.no_grad():
                for name, w in noisy_weights(model, eta, gen).items():
                    noisy.get_parameter(name).copy_(w)
            per[i, r] = accuracy(noisy, test, batch_size)
    return {"etas": etas, "test_images": len(test), "n_repeats": n_repeats, "seed": seed,
            "mean": per.mean(1).tolist(),
            "std": (per.std(1, ddof=1) if n_repeats > 1 else np.zeros(len(etas))).tolist(),
            "per_repeat": per.tolist()}
