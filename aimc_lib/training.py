"""One training loop for FP32 and noise-aware ("custom") training, resumable epoch by epoch.

The recipe is the :class:`TrainConfig` defaults (FP32 baseline) and :func:`custom_config`
(noise-aware fine-tuning): SGD + Nesterov momentum, weight decay on conv/FC weights, label
smoothing, a one-cycle schedule (linear warm-up, cosine decay to zero), random crop (pad 4) +
horizontal flip applied to whole uint8 tensors once per epoch.

Noise-aware training (Joshi et al. 2020, after Murray & Edwards 1994): every forward pass uses
``W + eta_tr * max|W_l| * xi`` for each analog layer ``l`` (conv, and FC weight + bias as one
crossbar), with fresh ``xi ~ N(0, 1)`` per mini-batch; the gradient updates the clean ``W``.
After every optimizer step each layer is clipped to ``+- clip_alpha * std(W_l)`` so that
``max|W|`` (which sets the PCM scale) stays close to the typical weight.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .checkpoints import CheckpointError, load_into, load_state, save_atomic
from .config import device_description, provenance
from . import checks
from .data import N_TEST, N_TRAIN, Split, batches
from .evaluation import accuracy
from .models import analog_layers, check_finite, resnet
from .result_files import save_results
from .resume import estimate_seconds, warn_if_long
from .weight_noise import clip_weights, noisy_weights


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    depth: int = 32
    widths: tuple[int, int, int] = (16, 28, 56)
    epochs: int = 60               # the shipped resnet32-fp32 (92.30 %)
    batch_size: int = 128
    lr_max: float = 0.2             # peak learning rate of the one-cycle schedule
    warmup_frac: float = 0.15       # fraction of steps spent warming up (from lr_max / 10)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4      # on conv/FC weights only, not BN or biases
    label_smoothing: float = 0.1
    eta_tr: float = 0.0             # relative weight-noise std (0 = FP32 training)
    clip_alpha: float = 0.0         # clip each layer to +- alpha std(W) after each step (0 = off)
    seed: int = 0
    train_subset: int = 0           # 0 = all 50,000 training images
    test_subset: int = 0            # 0 = all 10,000 test images
    init_from: str = ""             # checkpoint to fine-tune from ("" = random init)
    threads: int = 0                # torch threads (0 = leave torch's default)
    device: str = "cpu"

    def __post_init__(self):
        """One-line errors naming the field and its accepted range (see :mod:`aimc_lib.checks`)."""
        v = checks
        if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__len__") or len(self.widths) != 3:
            raise v.ArgumentError(f"TrainConfig.widths must be three positive integers, got {self.widths!r}")
        self.widths = tuple(v.positive_int(f"TrainConfig.widths[{i}]", w) for i, w in enumerate(self.widths))
        depth = v.integer("TrainConfig.depth", self.depth, 8)
        if (depth - 2) % 6:
            raise v.ArgumentError(f"TrainConfig.depth must be 6n + 2 with n >= 1 (8, 20, 32, 44, 56), got {depth}")
        v.positive_int("TrainConfig.epochs", self.epochs)
        train_n = v.integer("TrainConfig.train_subset", self.train_subset, 0, N_TRAIN) or N_TRAIN
        v.integer("TrainConfig.test_subset", self.test_subset, 0, N_TEST)
        v.positive_int("TrainConfig.batch_size (at most the training images)", self.batch_size, train_n)
        v.number("TrainConfig.lr_max", self.lr_max, 0.0, low_open=True)
        v.number("TrainConfig.warmup_frac", self.warmup_frac, 0.0, 1.0, high_open=True)
        v.number("TrainConfig.momentum", self.momentum, 0.0, 1.0, high_open=True)
        v.bool_flag("TrainConfig.nesterov", self.nesterov)
        v.number("TrainConfig.weight_decay", self.weight_decay, 0.0)
        v.number("TrainConfig.label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        v.number("TrainConfig.eta_tr", self.eta_tr, 0.0, 1.0, high_open=True)
        v.number("TrainConfig.clip_alpha", self.clip_alpha, 0.0)
        v.seed(self.seed, "TrainConfig.seed")
        if not isinstance(self.init_from, str):
            raise v.ArgumentError(f"TrainConfig.init_from must be a path string ('' = none), got {self.init_from!r}")
        v.integer("TrainConfig.threads", self.threads, 0)
        if not isinstance(self.device, str):
            raise v.ArgumentError(f"TrainConfig.device must be a device name such as 'cpu', got {self.device!r}")
        if self.nesterov and self.momentum == 0:
            raise v.ArgumentError("TrainConfig.nesterov needs momentum > 0")


    #: Fields that say where a run computes, not what it computes (a run may resume with other values).
    MACHINE_FIELDS = ("threads", "device")

    def differences(self, other: "TrainConfig") -> dict[str, tuple]:
        """``{field: (mine, other's)}`` for every field, except where the run computes, that differs:
        empty when ``other`` is the same run (the one rule for resuming a training run)."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
                if f.name not in self.MACHINE_FIELDS and getattr(self, f.name) != getattr(other, f.name)}

    def same_run(self, other: "TrainConfig") -> bool:
        """True when ``other`` describes the same run (it may compute elsewhere: threads, device)."""
        return not self.differences(other)


def custom_config(**overrides) -> TrainConfig:
    """The noise-aware fine-tuning recipe: eta_tr = 3.8 %, 2-sigma clipping, short low-lr schedule."""
    base = dict(epochs=15, lr_max=0.02, warmup_frac=0.1, eta_tr=0.038, clip_alpha=2.0, seed=1)
    return TrainConfig(**{**base, **overrides})


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """One-cycle learning rate: linear warm-up from lr_max/10, then cosine decay to 0."""
    warm = max(1, int(cfg.warmup_frac * total_steps))
    if step < warm:
        return cfg.lr_max * (0.1 + 0.9 * step / warm)
    frac = (step - warm) / max(1, total_steps - warm)
    return cfg.lr_max * 0.5 * (1 + math.cos(math.pi * frac))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [m.weight for m in analog_layers(model).values()]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=cfg.lr_max, momentum=cfg.momentum, nesterov=cfg.nesterov)


def _epoch_generators(cfg: TrainConfig, epoch: int):
    base = cfg.seed * 1_000_003 + epoch * 3
    data_g = torch.Generator().manual_seed(base)
    noise_g = torch.Generator(device=cfg.device).manual_seed(base + 1)
    return data_g, noise_g


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               cfg: TrainConfig, noise_generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step of (noise-aware) training, at the optimizer's current learning rate.

    Forward pass with ``W + eta_tr * max|W_l| * xi`` (fresh ``xi`` from ``noise_generator``) when
    ``cfg.eta_tr > 0``, else with the clean weights; the gradient, taken at the noisy weights,
    updates the clean ones; then each analog layer is clipped to ``+- clip_alpha * std(W_l)`` when
    ``cfg.clip_alpha > 0``. Returns the loss (a scalar tensor) and the logits of the batch.
    """
    if cfg.eta_tr > 0:
        out = functional_call(model, noisy_weights(model, cfg.eta_tr, noise_generator), (x,), strict=False)
    else:
        out = model(x)
    loss = nn.functional.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if cfg.clip_alpha > 0:
        clip_weights(model, cfg.clip_alpha)
    return loss, out


def train_one_epoch(model, opt, train: Split, cfg: TrainConfig, epoch: int, total_steps: int,
                    progress: bool = True) -> dict:
    """One pass over ``train``; returns mean loss and accuracy (%) on the (noisy) training batches."""
    model.train()
    data_g, noise_g = _epoch_generators(cfg, epoch)
    steps_per_epoch = len(train) // cfg.batch_size
    step = epoch * steps_per_epoch
    loss_sum = correct = seen = 0
    it = batches(train, cfg.batch_size, cfg.device, shuffle_generator=data_g, augment_generator=data_g,
                 drop_last=True)
    bar = tqdm(it, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=not progress, mininterval=1.0 if os.isatty(2) else 30.0)
    for x, y in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total_steps, cfg)
        loss, out = train_step(model, opt, x, y, cfg, noise_g)
        step += 1
        loss_sum += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%", refresh=False)
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen}


#: A training step (forward, backward, update) costs about this many inference passes.
TRAIN_STEP_PASSES = 3.0


def estimate_train_seconds(model: nn.Module, train_split: Split, test_split: Split, cfg: TrainConfig,
                           epochs: int) -> float:
    """Rough duration (s) of ``epochs`` epochs: an inference pass timed on 100 images of a copy of
    the model (the model itself is left as it is), times the training images and TRAIN_STEP_PASSES,
    plus the test evaluation of every epoch."""
    probe = copy.deepcopy(model)
    per_epoch = TRAIN_STEP_PASSES * estimate_seconds(probe, train_split, cfg.batch_size, 1, accuracy) + \
        estimate_seconds(probe, test_split, 1000, 1, accuracy)
    return per_epoch * epochs


def check_epoch_finite(model: nn.Module, rec: dict, epoch: int) -> None:
    """ValueError if epoch ``epoch`` diverged: a loss or a weight that is NaN or Inf (nothing is written)."""
    loss = rec.get("train_loss")
    try:
        check_finite(model)
        finite = math.isfinite(loss)
    except ValueError as e:
        finite, loss = False, f"{loss} ({e})"
    if not finite:
        raise ValueError(f"training diverged in epoch {epoch}: train loss {loss}; nothing was written for "
                         f"this epoch. Lower the learning rate (--lr-max) or check the data")


def build_model(cfg: TrainConfig) -> nn.Module:
    """A freshly initialized network, the same for the same ``cfg.seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = resnet(cfg.depth, cfg.widths)
    return model.to(cfg.device).to(memory_format=torch.channels_last)


def hardware_description(device: str | torch.device = "cpu") -> str:
    """The machine a run used, in words, e.g. ``"cpu (x86_64), 2 threads"`` or ``"cuda (NVIDIA H200)"``."""
    desc = device_description(device)
    return desc if torch.device(device).type == "cuda" else f"{desc}, {torch.get_num_threads()} threads"


def train(cfg: TrainConfig, train_split: Split, test_split: Split, run_dir: str | os.PathLike,
          progress: bool = True, stop_after_epochs: int | None = None) -> nn.Module:
    """Train (or resume) a run in ``run_dir``; returns the trained model.

    ``run_dir`` receives ``checkpoint.pt`` (model + optimizer, every epoch), ``log.json`` (one
    record per epoch) and, when finished, ``model.pt`` (weights and metadata). If a checkpoint
    with the same config exists, training continues after its last completed epoch, and the
    result is identical to an uninterrupted run. ``stop_after_epochs`` ends this call early
    (to spread a run over sessions).
    """
    if not isinstance(run_dir, (str, os.PathLike)) or not str(run_dir):
        raise checks.ArgumentError(f"run_dir must be a folder path, got {run_dir!r}")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise checks.ArgumentError(f"run_dir {run_dir} is a file, not a folder")
    check_run_outputs(run_dir, cfg)
    try:
        run_dir.absolute().parent.mkdir(parents=True, exist_ok=True)  # the lock lives next to run_dir
    except OSError as e:
        raise checks.ArgumentError(f"run_dir {run_dir}: cannot create its folder ({e.strerror or e})") from None
    with checks.OutputLock(run_dir, "run_dir"):  # one training run per folder at a time
        return _train(cfg, train_split, test_split, run_dir, progress, stop_after_epochs)


#: The files a training run writes in its folder.
RUN_FILES = ("checkpoint.pt", "log.json", "model.pt")


def check_run_outputs(run_dir, cfg: TrainConfig, inputs=()) -> None:
    """ArgumentError if a file training writes in ``run_dir`` is an input of the run: ``cfg.init_from``,
    ``inputs`` (e.g. the data folder) or a data file this process has read (by resolved identity,
    see :func:`aimc_lib.checks.not_an_input`); the run's own earlier files are its to replace."""
    run_dir = Path(run_dir)
    folder = checks.resolved(run_dir)
    read = [i for i in checks.inputs_read() if not (i.parent == folder and i.name in RUN_FILES)]
    if any(checks.same_file(run_dir, i) for i in checks.expand_inputs(inputs)):
        raise checks.ArgumentError(f"run_dir {run_dir} is an input folder of the run; choose another folder")
    for f in RUN_FILES:
        if cfg.init_from and checks.same_file(run_dir / f, cfg.init_from):
            raise checks.ArgumentError(f"init_from {cfg.init_from} lies in run_dir {run_dir}, which training "
                                       f"overwrites: copy it elsewhere or choose another run_dir")
        checks.not_an_input(run_dir / f, f"run_dir file {f}:", [*inputs, *read], files_read=False)


def _train(cfg: TrainConfig, train_split: Split, test_split: Split, run_dir: Path, progress: bool,
           stop_after_epochs: int | None) -> nn.Module:
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.train_subset:
        train_split = train_split.subset(cfg.train_subset, seed=cfg.seed)
    if cfg.test_subset:
        test_split = test_split.subset(cfg.test_subset, seed=cfg.seed)
    model = build_model(cfg)
    opt = make_optimizer(model, cfg)
    log, start = [], 0
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ck = load_state(ckpt_path)
        missing = [k for k in ("config", "optimizer", "epoch", "log") if k not in ck]
        if missing or not isinstance(ck["config"], dict):
            raise CheckpointError(f"{ckpt_path} is not a training checkpoint (no {', '.join(missing) or 'config'}); "
                                  f"use another run_dir, or delete it to start over")
        try:
            saved = TrainConfig(**ck["config"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{ckpt_path} holds no valid training config ({e})") from None
        if not saved.same_run(cfg):
            raise ValueError(f"{ckpt_path} was written by a different config; use another run_dir.\n"
                             f"saved: {saved}\nnow:   {cfg}")
        load_into(model, ck["model"], str(ckpt_path))
        try:
            opt.load_state_dict(ck["optimizer"])
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt_path}: its optimizer state does not fit this run ({type(e).__name__}: "
                                  f"{str(e)[:120]})") from None
        log, start = ck["log"], ck["epoch"]
        if not isinstance(start, int) or not 0 <= start <= cfg.epochs or len(log) != start:
            raise ValueError(f"{ckpt_path} is at epoch {start!r} (with {len(log)} log records) but this run "
                             f"has {cfg.epochs} epochs: a checkpoint of another run; use another run_dir, or "
                             f"delete it (--force on the command line) to start over")
    elif cfg.init_from:
        model.load_state_dict(load_state(cfg.init_from)["model"])
        if cfg.clip_alpha > 0:
            clip_weights(model, cfg.clip_alpha)
    total_steps = cfg.epochs * (len(train_split) // cfg.batch_size)
    end = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, start + stop_after_epochs)
    if end > start:  # the estimate of the whole run, also when this call stops early
        warn_if_long(estimate_train_seconds(model, train_split, test_split, cfg, cfg.epochs - start),
                     cfg.epochs - start, what="epochs", advice="fewer epochs or a training subset (train_subset) make it shorter, "
                                           "and it resumes after its last finished epoch")
    for epoch in range(start, end):
        t0 = time.time()
        rec = train_one_epoch(model, opt, train_split, cfg, epoch, total_steps, progress)
        rec.update(epoch=epoch + 1, test_acc=accuracy(model, test_split),
                   lr_end=lr_at((epoch + 1) * (len(train_split) // cfg.batch_size) - 1, total_steps, cfg),
                   seconds=round(time.time() - t0, 1))
        check_epoch_finite(model, rec, epoch + 1)  # never a NaN checkpoint or model.pt
        log.append(rec)
        if progress:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {rec['train_loss']:.3f}  train {rec['train_acc']:.2f}%"
                  f"  test {rec['test_acc']:.2f}%  ({rec['seconds']:.0f} s)", flush=True)
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                     "config": dataclasses.asdict(cfg), "log": log}, ckpt_path)
        save_results({"config": dataclasses.asdict(cfg), "epochs": log}, run_dir / "log.json")
    if len(log) == cfg.epochs:
        meta = {"config": dataclasses.asdict(cfg), "test_acc": log[-1]["test_acc"], "epochs": cfg.epochs,
                "train_seconds": round(sum(r["seconds"] for r in log), 1),
                **provenance(cfg.device), "hardware": hardware_description(cfg.device)}
        save_atomic({"model": model.state_dict(), "meta": meta}, run_dir / "model.pt")
    return model
