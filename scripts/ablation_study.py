"""What does the training noise add to the clipping? Full-length fine-tunes, evaluated two ways.

Three 15-epoch fine-tunes of the shipped FP32 network on all 50,000 training images, identical
except for the two ingredients of custom training (``custom_config()``, seed 1):

* ``both``: training noise 3.8 % and clipping to 2 std: the shipped ``resnet32-custom``;
* ``clip-only``: clipping, no training noise::

    python -m aimc_lib train runs/study-clip-only --recipe custom --eta-tr 0 \\
        --init-from aimc_lib/weights/resnet32-fp32.pt --threads 1 --quiet

* ``noise-only``: training noise, no clipping::

    python -m aimc_lib train runs/study-noise-only --recipe custom --clip-alpha 0 \\
        --init-from aimc_lib/weights/resnet32-fp32.pt --threads 1 --quiet

(each about 1.5 h on a 2-core CPU, resumable; the committed noise-only run was trained on a lent
H200 in 2 minutes). Each network is then measured under inference weight noise
``eta_inf * max|W_l|`` (``accuracy_under_weight_noise``, ``--repeats`` draws, default 10, full
test set) and on simulated PCM one day after programming with GDC (10 chips, seeds 0-9, the chips
of the committed results). Writes ``aimc_lib/results/studies/clip_noise_ablation.json``::

    python scripts/ablation_study.py                 # after both runs have finished
    python scripts/ablation_study.py --quick         # a smoke run: 200 images, 2 draws, 1 chip
"""
from __future__ import annotations

from pathlib import Path

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import eval_batch_size, provenance
from aimc_lib.data import load_cifar10
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import accuracy_under_weight_noise, accuracy_vs_time
from aimc_lib.result_files import save_results
from aimc_lib.times import DAY_S
from aimc_lib.zoo import RESULTS_DIR, load_model

ROOT = Path(__file__).resolve().parents[1]

ETA_INF = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
CHIPS = 10  # PCM chips per arm, seeds 0-9
#: arm -> the model it evaluates (a shipped name or a finished run's model.pt)
ARMS = {"both": "resnet32-custom",
        "clip-only": str(ROOT / "runs" / "study-clip-only" / "model.pt"),
        "noise-only": str(ROOT / "runs" / "study-noise-only" / "model.pt")}


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "clip_noise_ablation.json")
    ap.add_argument("--repeats", type=int, default=10, help="weight-noise draws per eta_inf")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 200 test images, 2 draws, 1 chip")
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    missing = [p for p in ARMS.values() if p.endswith(".pt") and not Path(p).exists()]
    if missing:
        raise SystemExit("not trained yet (see the commands in this script's docstring): " + ", ".join(missing))
    test = load_cifar10("test")
    if a.quick:
        test = test.subset(200, seed=0)
    repeats, chips = (2, 1) if a.quick else (a.repeats, CHIPS)
    bs = eval_batch_size(a.device)
    out = {"eta_inf": ETA_INF, "n_repeats": repeats, "n_chips": chips, "t_s": DAY_S, "compensation": "gdc",
           "test_images": len(test), "provenance": provenance(a.device), "arms": {}}
    for arm, source in ARMS.items():
        model = load_model(source, a.device)
        noise = accuracy_under_weight_noise(model, test, ETA_INF, n_repeats=repeats, seed=0, batch_size=bs)
        pcm = accuracy_vs_time(model, test, [DAY_S], n_chips=chips, compensation="gdc", seed=0, batch_size=bs,
                               model_name=arm, progress=False)
        out["arms"][arm] = {"model": Path(source).name, "fp32_accuracy": accuracy(model, test, bs),
                            "weight_noise": {k: noise[k] for k in ("mean", "std", "per_repeat")},
                            "pcm_day": {"mean": pcm["mean"][0], "std": pcm["std"][0],
                                        "per_chip": [c[0] for c in pcm["per_chip"]],
                                        "meta": pcm["meta"]}}  # how the chips were made (stream, device model)
        print(f"{arm:>10}: FP32 {out['arms'][arm]['fp32_accuracy']:.2f} %, at eta_inf 4 % "
              f"{noise['mean'][ETA_INF.index(0.04)]:.2f} %, PCM 1 day GDC {pcm['mean'][0]:.2f} ± {pcm['std'][0]:.2f} %",
              flush=True)
    save_results(out, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
