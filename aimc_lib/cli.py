"""Command line: ``python -m aimc_lib {train,evaluate,drift,figure} --help``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

import torch


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None,
                   help="folder with CIFAR-10 (.npz batches or torchvision's files); default: $AIMC_DATA")
    p.add_argument("--download", action="store_true",
                   help="download CIFAR-10 with torchvision if it is not found (needs internet)")
    add_machine_args(p)
    _add_debug_arg(p)


def add_machine_args(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``, as every command and script takes them (see :func:`setup_machine`)."""
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="torch device: cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0,
                   help=f"CPU threads for torch, 1..{os.cpu_count()} (0 = torch's default)")


def script_parser(doc: str, out: str | None = None, machine: bool = True) -> argparse.ArgumentParser:
    """The command line of a script in ``scripts/``: its docstring's first paragraph as description,
    ``--device`` and ``--threads`` (unless ``machine=False``) and, with ``out``, ``--out`` defaulting
    to it. The script adds its own options, then calls :func:`setup_machine` on the parsed arguments."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if machine:
        add_machine_args(ap)
    if out is not None:
        ap.add_argument("--out", default=str(out), help=f"where the results go (default: {out})")
    return ap


def _add_debug_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of an error instead of one line")


def _add_pcm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prog-noise-scale", type=float, default=1.0, help="programming-noise scale (1 = calibrated)")
    p.add_argument("--drift-scale", type=float, default=1.0, help="drift-exponent scale (0 = no drift)")
    p.add_argument("--read-noise-scale", type=float, default=1.0, help="1/f read-noise scale")
    p.add_argument("--noise-on-zero-target", action=argparse.BooleanOptionalAction, default=True,
                   help="program-noise the device whose target is 0 too, as the calibrated model does "
                        "(default; --no-noise-on-zero-target keeps it at exactly 0 uS)")


def _pcm_params(a):
    from .pcm import PCMParams
    from .checks import ArgumentError
    try:
        return PCMParams(prog_noise_scale=a.prog_noise_scale, drift_scale=a.drift_scale,
                         read_noise_scale=a.read_noise_scale, noise_on_zero_target=a.noise_on_zero_target)
    except ArgumentError as e:  # name the command-line option, not the field
        msg = str(e)
        for field in ("prog_noise_scale", "drift_scale", "read_noise_scale"):
            msg = msg.replace(f"PCMParams.{field}", "--" + field.replace("_", "-"))
        raise ArgumentError(msg) from None


def setup_machine(a, strict_fp32: bool = False) -> None:
    """Check --device and --threads before anything is computed; set the thread count, and keep
    freed CPU memory for reuse (:mod:`aimc_lib.cpu_memory`). ``strict_fp32``: no TF32 on a GPU, so
    that GPU results agree with a CPU's (:func:`aimc_lib.config.strict_fp32`; the scripts that
    write committed results use it)."""
    from . import checks, config
    from .cpu_memory import keep_freed_memory
    keep_freed_memory()
    a.device = str(checks.device(a.device, "--device"))
    checks.threads(a.threads, "--threads")
    if a.threads:
        torch.set_num_threads(a.threads)
    if strict_fp32:
        config.strict_fp32()


def _load_model(name_or_path: str, device: str):
    from .zoo import load_model
    return load_model(name_or_path, device=device)


def _test_subset(a) -> int:
    from .data import N_TEST
    from .checks import integer
    return integer("--test-subset (0 = all test images)", a.test_subset, 0, N_TEST)


RUN_FILES = ("checkpoint.pt", "log.json", "model.pt")


def _train_run_dir(a, cfg) -> str:
    """Check RUN_DIR before training; returns what this call will do (train, resume or restart)."""
    from .checkpoints import CheckpointError, load_state
    from .checks import ArgumentError, writable_folder
    from .training import TrainConfig
    run = Path(a.run_dir)
    if run.exists() and not run.is_dir():
        raise ArgumentError(f"RUN_DIR {run} is a file, not a folder")
    existing = run.resolve()
    while not existing.exists():
        existing = existing.parent
    writable_folder(existing, "RUN_DIR")
    if not run.exists():
        return "train"
    others = sorted(p.name for p in run.iterdir() if p.name not in RUN_FILES and not p.name.endswith(".tmp"))
    if others and not a.force:
        raise ArgumentError(f"RUN_DIR {run} holds files that are not a training run's ({', '.join(others[:3])}"
                            f"{', ...' if len(others) > 3 else ''}); choose a new folder, or pass --force")
    ckpt = run / "checkpoint.pt"
    if ckpt.exists():
        ck = load_state(ckpt)
        try:
            saved = TrainConfig(**ck["config"])
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{ckpt} holds no valid training config ({e})") from None
        epoch = ck.get("epoch", 0)
        if not isinstance(epoch, int) or not 0 <= epoch <= cfg.epochs:
            if not a.force:
                raise ArgumentError(f"RUN_DIR {run}: checkpoint.pt is at epoch {epoch!r}, outside this run's "
                                    f"0..{cfg.epochs} epochs; pass --force to start over, or choose another folder")
            epoch = None
        same = epoch is not None and saved.same_run(cfg)
        finished = same and epoch >= cfg.epochs and (run / "model.pt").exists()
        if same and not finished:
            return f"resume after epoch {epoch} of {cfg.epochs}"
        if not a.force:
            if same:
                raise ArgumentError(f"RUN_DIR {run} is a finished run (model.pt); pass --force to train it "
                                    f"again from scratch, or choose another folder")
            diff = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in saved.differences(cfg).items())
            raise ArgumentError(f"RUN_DIR {run} holds a run with a different config ({diff}); choose "
                                f"another folder, or pass --force to start over")
    elif (run / "model.pt").exists() and not a.force:
        raise ArgumentError(f"RUN_DIR {run} holds a model.pt; pass --force to replace it, or choose another folder")
    for f in RUN_FILES:  # --force: start over
        (run / f).unlink(missing_ok=True)
    return "train (--force: starting over)"


def _train_run_dir_parent(a) -> None:
    """Create RUN_DIR's parent folder (training would), so that the run's lock can live there."""
    from .checks import ArgumentError, writable_folder
    parent = Path(a.run_dir).absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ArgumentError(f"RUN_DIR {a.run_dir}: {existing} is not a folder")
    writable_folder(existing, "RUN_DIR")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArgumentError(f"RUN_DIR {a.run_dir}: cannot create folder {parent} ({e.strerror or e})") from None


def cmd_train(a) -> int:
    from .checks import ArgumentError, OutputLock, same_file
    from .data import data_dir
    from .training import TrainConfig, check_run_outputs, custom_config
    setup_machine(a)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.widths:
        overrides["widths"] = tuple(a.widths)
    if a.recipe == "custom" and not a.init_from:
        raise ArgumentError("--recipe custom fine-tunes a trained model: give it with --init-from "
                            "(e.g. runs/fp32/model.pt)")
    cfg = custom_config(**overrides) if a.recipe == "custom" else TrainConfig(**overrides)
    if a.stop_after_epochs is not None and a.stop_after_epochs < 1:
        raise ArgumentError(f"--stop-after-epochs must be an integer >= 1, got {a.stop_after_epochs}")
    if cfg.init_from and any(same_file(cfg.init_from, Path(a.run_dir) / f) for f in RUN_FILES):
        raise ArgumentError(f"--init-from {cfg.init_from} lies in RUN_DIR {a.run_dir}, which training "
                            f"overwrites: copy it elsewhere or choose another RUN_DIR")
    if Path(a.run_dir).exists() and not Path(a.run_dir).is_dir():
        raise ArgumentError(f"RUN_DIR {a.run_dir} is a file, not a folder")
    check_run_outputs(a.run_dir, cfg, inputs=[data_dir(a.data)])  # never a data file, by resolved identity
    _train_run_dir_parent(a)
    with OutputLock(a.run_dir, "RUN_DIR"):  # one run per folder, for the whole run
        return _train_locked(a, cfg)


def _train_locked(a, cfg) -> int:
    from .checkpoints import check_state_finite, load_into, load_state
    from .data import load_cifar10
    from .training import build_model, train
    if cfg.init_from:  # readable, finite, and the architecture of --depth/--widths
        state = load_state(cfg.init_from)["model"]
        check_state_finite(state, f"--init-from {cfg.init_from}")
        load_into(build_model(dataclasses.replace(cfg, device="cpu")), state,
                  f"--init-from {cfg.init_from} (set --depth/--widths to its architecture)")
    plan = _train_run_dir(a, cfg)
    print(f"recipe {a.recipe}: {cfg}", flush=True)
    print(f"{a.run_dir}: {plan}", flush=True)
    tr = load_cifar10("train", a.data, a.download)
    te = load_cifar10("test", a.data, a.download)
    train(cfg, tr, te, a.run_dir, progress=not a.quiet, stop_after_epochs=a.stop_after_epochs)
    model_pt = Path(a.run_dir) / "model.pt"
    if model_pt.exists():
        print(f"wrote {model_pt}")
    else:
        print(f"stopped early; rerun the same command to resume from {Path(a.run_dir) / 'checkpoint.pt'}")
    return 0


def cmd_evaluate(a) -> int:
    from .data import load_cifar10
    from .evaluation import accuracy
    setup_machine(a)
    n = _test_subset(a)
    model = _load_model(a.model, a.device)
    te = load_cifar10("test", a.data, a.download)
    if n:
        te = te.subset(n)
    print(json.dumps({"model": a.model, "test_images": len(te), "accuracy": accuracy(model, te)}))
    return 0


def _model_file(name_or_path: str) -> str:
    """The file behind a model argument: a shipped model's weights file, or the path itself."""
    from .zoo import WEIGHTS_DIR, manifest
    entry = manifest().get(name_or_path)
    return str(WEIGHTS_DIR / entry["file"]) if entry else name_or_path


#: DriftRun's fields and the drift command's options that set them (errors name the option).
DRIFT_OPTIONS = {"times_s": "--times", "n_chips": "--chips", "seed": "--seed"}


def _drift_run(a, params):
    """The run that ``drift`` asks for, checked before any file is read; errors and warnings name
    the command-line options instead of DriftRun's fields."""
    import re
    from .checks import ArgumentError
    from .converters import Periphery
    from .runs import DriftRun
    from .times import DEFAULT_TIMES_S

    def as_option(msg: str) -> str:
        return re.sub(r"^(%s)\b" % "|".join(DRIFT_OPTIONS), lambda m: DRIFT_OPTIONS[m.group(1)], msg)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run = DriftRun(times_s=a.times if a.times is not None else DEFAULT_TIMES_S, n_chips=a.chips,
                           compensation=a.compensation, params=params, seed=a.seed, test_subset=_test_subset(a),
                           model_name=a.model, compile=a.compile, backend=a.backend,
                           periphery=Periphery.aihwkit_like() if a.periphery == "aihwkit" else None)
        except ArgumentError as e:
            raise ArgumentError(as_option(str(e))) from None
    for w in caught:
        warnings.warn(as_option(str(w.message)), w.category, stacklevel=2)
    return run


def cmd_drift(a) -> int:
    from . import checks
    from .data import data_dir
    setup_machine(a)
    run = _drift_run(a, _pcm_params(a))
    inputs = [_model_file(a.model), data_dir(a.data)]
    checks.output_file(a.out, "--out", inputs=inputs, force=a.force)  # before the lock: its folder exists
    with checks.OutputLock(a.out, "--out"):  # the output and its partial file are this run's alone
        return _drift_locked(a, run, inputs)


def _drift_locked(a, run, inputs) -> int:
    from . import checks
    from .data import load_cifar10
    from .experiments import run_drift
    from .resume import ResumeError, partial_path
    out = checks.output_file(a.out, "--out", inputs=inputs, force=a.force)
    partial = partial_path(out)
    checks.not_an_input(partial, "--out's partial file", inputs)
    if partial.exists():
        print(f"found {partial}: resuming the interrupted run if its arguments match", flush=True)
    model = _load_model(a.model, a.device)
    te = load_cifar10("test", a.data, a.download)
    calib = load_cifar10("train", a.data, a.download) if run.uses_calibration else None
    try:
        run_drift(run, model, te, calib, results_path=out, overwrite=a.force)
    except ResumeError:
        if not a.force:
            raise
        print(f"--force: discarding {partial}", flush=True)
        partial.unlink()
        run_drift(run, model, te, calib, results_path=out, overwrite=a.force)
    print(f"wrote {out}")
    return 0


def _check_figure_inputs(series: dict, paths: dict) -> None:
    """Warn when the two result files do not make a fair comparison."""
    if len(series) < 2:
        return
    c, d = series["custom"]["meta"], series["direct"]["meta"]
    if c.get("model_sha256") and c.get("model_sha256") == d.get("model_sha256"):
        warnings.warn(f"--custom {paths['custom']} and --direct {paths['direct']} hold the same model")
    for key, what in (("test_images", "test sizes"), ("compensation", "compensations"),
                      ("pcm_params", "PCM parameters"), ("calibration_images", "calibration sizes")):
        if c.get(key) != d.get(key):
            warnings.warn(f"the figure mixes {what}: --custom has {c.get(key)!r}, --direct {d.get(key)!r}")
    if series["custom"]["times_s"] != series["direct"]["times_s"]:
        warnings.warn("the figure mixes time grids: --custom and --direct were read at different times")


def cmd_figure(a) -> int:
    from matplotlib.figure import Figure
    from . import checks
    from .checks import ArgumentError
    from .result_files import load_results
    paths = {label: path for label, path in (("custom", a.custom), ("direct", a.direct)) if path}
    if not paths:
        raise ArgumentError("figure needs --custom and/or --direct result files")
    if any(checks.same_file(x, y) for i, x in enumerate(a.out) for y in a.out[i + 1:]):
        raise ArgumentError(f"--out names a file twice: {a.out}")
    supported = Figure().canvas.get_supported_filetypes()
    for out in a.out:
        checks.output_file(out, "--out", inputs=list(paths.values()), force=a.force)
        ext = Path(out).suffix.lower().lstrip(".")
        if ext not in supported:
            raise ArgumentError(f"--out {out}: unknown image type {ext or '(no extension)'!r}; use one of "
                                f".png, .svg, .pdf ({', '.join(sorted(supported))})")
    series = {label: load_results(path) for label, path in paths.items()}
    for label, res in series.items():
        if res["times_s"][0] <= 0:
            raise ArgumentError(f"--{label} {paths[label]}: the figure's time axis is logarithmic, and the "
                                f"file has a time of {res['times_s'][0]:g} s; only times > 0 can be drawn")
    _check_figure_inputs(series, paths)
    fp32 = a.fp32_accuracy
    if fp32 is None:  # the digital baseline measured on the same test images, recorded in the results
        label = "direct" if "direct" in series else "custom"
        fp32 = series[label]["meta"].get("fp32_accuracy")
        if fp32 is None:
            raise ArgumentError(f"{paths[label]} records no fp32_accuracy; give --fp32-accuracy")
    fp32 = checks.number("--fp32-accuracy (%)", fp32, 0.0, 100.0)
    from .plotting import paper_figure
    fig = paper_figure(series.get("custom"), series.get("direct"), fp32_accuracy=fp32)
    for out in a.out:
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp")
        fig.savefig(tmp, bbox_inches="tight", dpi=150, format=out.suffix.lower().lstrip("."))
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    ap = argparse.ArgumentParser(prog="aimc",
                                 description="Analog in-memory computing with PCM: train, evaluate, "
                                             "simulate drift, draw the figure.",
                                 epilog="Errors are one line (exit code 2); --debug shows the traceback.")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one line")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__} (aimc_lib)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a ResNet in FP32 or noise-aware (resumable)",
                       description="Train a CIFAR ResNet. Re-running the same command resumes after "
                                   "the last finished epoch in RUN_DIR. A RUN_DIR that holds a finished run, "
                                   "a run with another config or other files is refused unless --force.")
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
    p.add_argument("--force", action="store_true",
                   help="start over in a RUN_DIR that holds a finished run or one with another config "
                        "(deletes its checkpoint.pt, log.json and model.pt)")
    _add_data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a model (pretrained name or model.pt)")
    p.add_argument("model", help="pretrained name (resnet32-fp32, resnet32-custom) or a model.pt path")
    p.add_argument("--test-subset", type=int, default=0, help="use a class-balanced test subset")
    _add_data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("drift", help="accuracy vs time after programming on simulated PCM, to JSON",
                       description="Accuracy vs time after programming on simulated PCM chips, written to "
                                   "--out as JSON. Each finished chip is saved to OUT.partial.json as it goes: "
                                   "re-running an interrupted command resumes after the last finished chip "
                                   "(same result as an uninterrupted run); other arguments are refused.")
    p.add_argument("model", help="pretrained name or model.pt path")
    p.add_argument("--out", required=True,
                   help="output JSON file (refused if it exists, unless --force; never the model file)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out, and discard an OUT.partial.json left by a run with "
                        "other arguments")
    p.add_argument("--chips", type=int, default=10, help="independent chips (programming repetitions)")
    p.add_argument("--compensation", choices=("none", "gdc", "adabs"), default="gdc",
                   help="drift compensation: none, global drift compensation, or GDC + BN re-estimation")
    p.add_argument("--times", type=float, nargs="+", help="times after programming in s (default: "
                   "one per decade 1e-5..1e5, plus 1 h, 1 day, 1 month and 1 year)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first chip (chip k uses seed + k)")
    p.add_argument("--compile", action="store_true",
                   help="run inference through torch.compile (about 1.6x faster on CPU for long grids)")
    p.add_argument("--test-subset", type=int, default=0, help="use a class-balanced test subset")
    p.add_argument("--periphery", choices=("ideal", "aihwkit"), default="ideal",
                   help="the analog layers' periphery: ideal (exact products: the ideal chip) or aihwkit (8-bit "
                        "DAC and ADC, output noise 0.04, GDC read through the periphery: the realistic chip of the "
                        "headline figure)")
    p.add_argument("--backend", choices=("auto", "torch", "c", "triton"), default="auto",
                   help="where the periphery runs (auto: compiled where available; recorded in the result)")
    _add_pcm_args(p)
    _add_data_args(p)
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("figure", help="draw the paper's figure from drift JSON files")
    p.add_argument("--custom", help="drift JSON of the custom-trained model")
    p.add_argument("--direct", help="drift JSON of the directly mapped FP32 model")
    p.add_argument("--fp32-accuracy", type=float, default=None,
                   help="FP32 baseline accuracy (%%); default: the one recorded in the direct-mapping results")
    p.add_argument("--out", nargs="+", default=["figure.png"],
                   help="output files (.png, .svg, .pdf); existing files are refused unless --force")
    p.add_argument("--force", action="store_true", help="replace existing --out files")
    _add_debug_arg(p)
    p.set_defaults(func=cmd_figure)
    return ap


#: The longest error or warning line the command line prints (the rest is cut, with a note).
ERROR_CHARS = 600


def _one_line(e: BaseException) -> str:
    """An exception as one line of at most ERROR_CHARS characters; a bare KeyError (a missing field
    in a file or a dict) is said as such instead of its key alone."""
    if isinstance(e, KeyError) and e.args and not (isinstance(e.args[0], str) and " " in e.args[0]):
        msg = f"a required field {e.args[0]!r} is missing (in a file or an argument)"
    else:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    line = " ".join(str(msg).split()) or type(e).__name__
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS] + f"... ({len(line)} characters)"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {_one_line(Warning(str(message)))}", file=sys.stderr, flush=True)


# torch.OutOfMemoryError is torch >= 2.5 (torch.cuda.OutOfMemoryError is the same class there);
# the declared minimum, torch 2.1, has only the CUDA one.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def main(argv=None) -> int:
    """Run a command; every anticipated error becomes one line on stderr and exit code 2
    (``--debug``: the traceback instead). Ctrl-C exits with 130."""
    a = build_parser().parse_args(argv)
    debug = getattr(a, "debug", False)
    from .checkpoints import CheckpointError
    from .data import DataError
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            return a.func(a)
        except KeyboardInterrupt:
            if debug:
                raise
            hint = " (rerun the same command to resume)" if a.command in ("train", "drift") else ""
            print(f"\ninterrupted{hint}", file=sys.stderr)
            return 130
        except (DataError, CheckpointError, ValueError, KeyError, OSError) as e:
            if debug:
                raise
            print(f"error: {_one_line(e)}", file=sys.stderr)
            return 2
        except _OUT_OF_MEMORY as e:
            if debug:
                raise
            print(f"error: out of memory on {getattr(a, 'device', 'the device')}: use --test-subset, "
                  f"fewer chips or the CPU ({_one_line(e)[:200]})", file=sys.stderr)
            return 2
        except Exception as e:  # a bug, not a user error: still one line, the traceback with --debug
            if debug:
                raise
            print(f"error: unexpected {type(e).__name__}: {_one_line(e)} (rerun with --debug for the "
                  f"traceback, and please report it)", file=sys.stderr)
            return 1
