"""Regenerate both shipped models and every committed result from scratch.

    python scripts/reproduce.py            # full: hours on a 2-core CPU, minutes on a GPU
    python scripts/reproduce.py --fast --out /tmp/repro   # tiny epochs and subsets (CI)
    python scripts/reproduce.py --results-only              # steps 4-5 on the shipped models

Steps 4-5 need only the test set and the AdaBS calibration images; for a machine that holds only
the test set (e.g. a lent GPU), ``--write-calibration cal.npz`` saves those 2,000 training images
here and ``--results-only --calibration cal.npz`` uses them there, with identical results.

Steps (each resumable: re-running skips or continues what is done):
1. FP32 baseline (``TrainConfig()`` recipe) -> runs/resnet32-fp32
2. custom noise-aware fine-tuning from it (``custom_config()``) -> runs/resnet32-custom
3. publish both into aimc_lib/weights (sha256 manifest) with their measured test accuracy
4. accuracy vs time on simulated PCM (10 chips; GDC for both; none and AdaBS for custom;
   none for FP32) -> aimc_lib/results/*.json (shipped with the package)
5. the paper figure (``aimc_lib.headline``: the realistic chip beside the ideal one, or the ideal
   chip alone when the periphery results are not there) -> aimc_lib/results/figure.png and .svg
"""
from __future__ import annotations

from pathlib import Path

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import eval_batch_size
from aimc_lib.data import load_cifar10, load_split, save_split
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.headline import save_headline_figure
from aimc_lib.result_files import COMMITTED_RESULTS, save_results
from aimc_lib.times import DAY_S, DEFAULT_TIMES_S, HOUR_S
from aimc_lib.training import TrainConfig, custom_config, train
from aimc_lib.zoo import RESULTS_DIR, load_model, publish

ROOT = Path(__file__).resolve().parents[1]

DRIFT_RUNS = COMMITTED_RESULTS


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=ROOT)  # --out: the root for runs/, results/ (and weights/ in --fast)
    ap.add_argument("--fast", action="store_true", help="tiny network, epochs and subsets (a smoke run)")
    ap.add_argument("--chips", type=int, default=10)
    ap.add_argument("--results-only", action="store_true",
                    help="skip training and publishing: run steps 4-5 on the shipped models")
    ap.add_argument("--calibration", help="AdaBS calibration images (.npz from --write-calibration)")
    ap.add_argument("--write-calibration", metavar="NPZ", help="save the AdaBS calibration images and exit")
    ap.add_argument("--only", nargs="+", metavar="MODEL_COMP", choices=[f"{n}_{c}" for n, c in DRIFT_RUNS],
                    help="recompute only these results (e.g. resnet32-custom_adabs); the others are read back")
    ap.add_argument("--results-dir", help="where steps 4-5 write (default: aimc_lib/results; with --fast, OUT/results)")
    a = ap.parse_args(argv)
    if a.calibration and not a.results_only:
        ap.error("--calibration replaces the training set: use it with --results-only")
    out = Path(a.out)
    setup_machine(a, strict_fp32=True)
    tiny = dict(depth=8, widths=(8, 8, 16), epochs=1, train_subset=1280, test_subset=500) if a.fast else {}
    common = dict(device=a.device, threads=a.threads, **tiny)
    calibration_images = 500 if a.fast else 2000
    if a.write_calibration:
        save_split(load_cifar10("train").subset(calibration_images, seed=0), a.write_calibration)
        print(f"wrote {a.write_calibration}")
        return 0
    te = load_cifar10("test")
    tr = load_split(a.calibration) if a.calibration else load_cifar10("train")

    test = te.subset(500) if a.fast else te
    weights_dir = out / "weights" if a.fast else None
    results_dir = Path(a.results_dir) if a.results_dir else out / "results" if a.fast else RESULTS_DIR
    models = {}
    for name, recipe in (("resnet32-fp32", "TrainConfig()"), ("resnet32-custom", "custom_config()")):
        if a.results_only:
            model = load_model(str(out / "runs" / name / "model.pt") if a.fast else name, a.device)
        else:
            cfg = TrainConfig(**common) if name == "resnet32-fp32" else custom_config(
                init_from=str(out / "runs" / "resnet32-fp32" / "model.pt"), **common)
            train(cfg, tr, te, out / "runs" / name)
            model = load_model(str(out / "runs" / name / "model.pt"), a.device)
        acc = accuracy(model, test)
        if not a.results_only:
            publish(out / "runs" / name, name, acc, recipe, weights_dir=weights_dir)
        models[name] = (model, acc)
        print(f"{name}: {acc:.2f} % on {len(test)} test images", flush=True)

    times = [1.0, HOUR_S, DAY_S] if a.fast else DEFAULT_TIMES_S
    chips = 2 if a.fast else a.chips
    for name, comp in DRIFT_RUNS:
        path = results_dir / f"{name}_{comp}.json"
        if a.only and f"{name}_{comp}" not in a.only:
            continue
        if path.exists():  # a finished result (an unfinished one resumes from its partial file)
            print(f"exists, skipped: {path}", flush=True)
            continue
        res = accuracy_vs_time(models[name][0], test, times, n_chips=chips, compensation=comp,
                               calibration_split=tr if comp == "adabs" else None,
                               calibration_images=calibration_images, model_name=name,
                               batch_size=eval_batch_size(a.device),
                               compile=not a.fast and a.device == "cpu", results_path=path)
        save_results(res, path)
        print(f"wrote {path}", flush=True)
    png = save_headline_figure(results_dir)  # the realistic chip, if its results are there, beside the ideal one
    print(f"wrote {png}" if png else "the figure needs both GDC results: not drawn", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
