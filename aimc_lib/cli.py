"""Command line: ``python -m aimc_lib {train,evaluate,drift,figure} --help``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="folder with CIFAR-10 (.npz batches or torchvision's files); default: $AIMC_DATA")
    p.add_argument("--download", action="store_true",
                   help="download CIFAR-10 with torchvision if it is not found (needs internet)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device: cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")


def _add_pcm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prog-noise-scale", type=float, default=1.0, help="programming-noise scale (1 = calibrated)")
    p.add_argument("--drift-scale", type=float, default=1.0, help="drift-exponent scale (0 = no drift)")
    p.add_argument("--read-noise-scale", type=float, default=1.0, help="1/f read-noise scale")
    p.add_argument("--noise-on-zero-target", action="store_true",
                   help="also program-noise the device whose target is 0 (aihwkit's calibrated model)")


def _pcm_params(a):
    from .pcm import PCMParams
    return PCMParams(prog_noise_scale=a.prog_noise_scale, drift_scale=a.drift_scale,
                     read_noise_scale=a.read_noise_scale, noise_on_zero_target=a.noise_on_zero_target)


def _load_model(name_or_path: str, device: str):
    from .zoo import load_model
    return load_model(name_or_path, device=device)


def cmd_train(a) -> int:
    from .data import load_cifar10
    from .training import TrainConfig, custom_config, train
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.widths:
        overrides["widths"] = tuple(a.widths)
    cfg = custom_config(**overrides) if a.recipe == "custom" else TrainConfig(**overrides)
    print(f"recipe {a.recipe}: {cfg}", flush=True)
    tr = load_cifar10("train", a.data, a.download)
    te = load_cifar10("test", a.data, a.download)
    train(cfg, tr, te, a.run_dir, progress=not a.quiet, stop_after_epochs=a.stop_after_epochs)
    return 0


def cmd_evaluate(a) -> int:
    from .data import load_cifar10
    from .evaluation import accuracy
    if a.threads:
        torch.set_num_threads(a.threads)
    te = load_cifar10("test", a.data, a.download)
    if a.test_subset:
        te = te.subset(a.test_subset)
    model = _load_model(a.model, a.device)
    print(json.dumps({"model": a.model, "test_images": len(te), "accuracy": accuracy(model, te)}))
    return 0


def cmd_drift(a) -> int:
    from .data import load_cifar10
    from .experiments import DEFAULT_TIMES_S, accuracy_vs_time, save_results
    if a.threads:
        torch.set_num_threads(a.threads)
    te = load_cifar10("test", a.data, a.download)
    calib = load_cifar10("train", a.data, a.download) if a.compensation == "adabs" else None
    model = _load_model(a.model, a.device)
    res = accuracy_vs_time(model, te, times_s=a.times or DEFAULT_TIMES_S, n_chips=a.chips,
                           compensation=a.compensation, params=_pcm_params(a), seed=a.seed,
                           test_subset=a.test_subset, calibration_split=calib, model_name=a.model,
                           compile=a.compile)
    save_results(res, a.out)
    print(f"wrote {a.out}")
    return 0


def cmd_figure(a) -> int:
    from .plotting import paper_figure
    from .experiments import load_results
    series = {label: load_results(path) for label, path in
              (("custom", a.custom), ("direct", a.direct)) if path}
    if not series:
        raise ValueError("figure needs --custom and/or --direct result files")
    fp32 = a.fp32_accuracy
    if fp32 is None:  # the digital baseline measured on the same test images, recorded in the results
        fp32 = (series.get("direct") or series["custom"])["meta"]["fp32_accuracy"]
    fig = paper_figure(series.get("custom"), series.get("direct"), fp32_accuracy=fp32)
    for out in a.out:
        fig.savefig(out, bbox_inches="tight", dpi=150)
        print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m aimc_lib",
                                 description="Analog in-memory computing with PCM: train, evaluate, "
                                             "simulate drift, draw the figure.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a ResNet in FP32 or noise-aware (resumable)",
                       description="Train a CIFAR ResNet. Re-running the same command resumes after "
                                   "the last finished epoch in RUN_DIR.")
    p.add_argument("run_dir", help="folder for checkpoint.pt, log.json and the final model.pt")
    p.add_argument("--recipe", choices=("fp32", "custom"), default="fp32",
                   help="fp32: baseline recipe; custom: noise-aware fine-tuning recipe (needs --init-from)")
    p.add_argument("--depth", type=int, help="ResNet depth, 6n+2 (default 32)")
    p.add_argument("--widths", type=int, nargs=3, help="stage widths (default 16 28 56)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--batch-size", type=int, help="mini-batch size")
    p.add_argument("--lr-max", type=float, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, help="weight decay on conv/FC weights")
    p.add_argument("--label-smoothing", type=float, help="label smoothing of the cross-entropy")
    p.add_argument("--eta-tr", type=float, help="relative weight-noise std during training (0 = off)")
    p.add_argument("--clip-alpha", type=float, help="clip weights to +- alpha std after each step (0 = off)")
    p.add_argument("--seed", type=int, help="random seed (init, shuffling, augmentation, noise)")
    p.add_argument("--train-subset", type=int, help="train on a class-balanced subset of this size")
    p.add_argument("--test-subset", type=int, help="evaluate on a class-balanced test subset of this size")
    p.add_argument("--init-from", help="checkpoint (model.pt) to fine-tune from")
    p.add_argument("--stop-after-epochs", type=int, default=None,
                   help="stop this call after this many epochs (resume later with the same command)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a model (pretrained name or model.pt)")
    p.add_argument("model", help="pretrained name (resnet32-fp32, resnet32-custom) or a model.pt path")
    p.add_argument("--test-subset", type=int, default=0, help="use a class-balanced test subset")
    _add_data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("drift", help="accuracy vs time after programming on simulated PCM, to JSON")
    p.add_argument("model", help="pretrained name or model.pt path")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--chips", type=int, default=10, help="independent chips (programming repetitions)")
    p.add_argument("--compensation", choices=("none", "gdc", "adabs"), default="gdc",
                   help="drift compensation: none, global drift compensation, or GDC + BN re-estimation")
    p.add_argument("--times", type=float, nargs="+", help="times after programming in s (default: "
                   "one per decade 1e-5..1e5, plus 1 h, 1 day, 1 month and 1 year)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first chip (chip k uses seed + k)")
    p.add_argument("--compile", action="store_true",
                   help="run inference through torch.compile (about 1.6x faster on CPU for long grids)")
    p.add_argument("--test-subset", type=int, default=0, help="use a class-balanced test subset")
    _add_pcm_args(p)
    _add_data_args(p)
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("figure", help="draw the paper's figure from drift JSON files")
    p.add_argument("--custom", help="drift JSON of the custom-trained model")
    p.add_argument("--direct", help="drift JSON of the directly mapped FP32 model")
    p.add_argument("--fp32-accuracy", type=float, default=None,
                   help="FP32 baseline accuracy (%%); default: the one recorded in the direct-mapping results")
    p.add_argument("--out", nargs="+", default=["figure.png"], help="output files (.png, .svg, .pdf)")
    p.set_defaults(func=cmd_figure)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.func(a)
    except Exception as e:  # clear one-line errors for the user-facing failures
        from .checkpoints import CheckpointError
        from .data import DataError
        if isinstance(e, (DataError, CheckpointError, ValueError)):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
