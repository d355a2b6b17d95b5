"""Is part of the direct-mapping loss the FP32 recipe? A plain-recipe ResNet-32 against the shipped one.

The shipped ``resnet32-fp32`` was trained with label smoothing 0.1 and weight decay 5e-4. The
plain network is the same ResNet-32 trained for 60 epochs with no label smoothing, weight decay
1e-4 and a peak learning rate of 0.1 (the same one-cycle schedule: warm-up, cosine decay)::

    python -m aimc_lib train runs/study-fp32-plain --recipe fp32 --label-smoothing 0 \\
        --weight-decay 1e-4 --lr-max 0.1 --threads 2 --quiet      # about 5 h on a 2-core CPU

It is measured like the shipped model, on the same draws and chips, so the shipped model's
numbers come from the committed files and only the plain network is evaluated here:

* under inference weight noise ``eta * max|W_l|`` (``accuracy_under_weight_noise``, seed 0 as in
  ``studies/weight_noise.json``, at ``ETA_INF``, all of which that file holds; ``--repeats``
  draws, the shipped model has 10);
* directly mapped onto simulated PCM with GDC, ideal periphery: chips ``0..--chips-1`` at
  ``TIMES_S`` (paired with the first chips of ``resnet32-fp32_gdc.json``);
* the same through the aihwkit-like periphery: chips ``0..--periphery-chips-1`` (paired with
  ``periphery/resnet32-fp32_gdc_aihwkit.json``: the same conductances; the output noise too where
  both were drawn from the counter-based stream, on any device).

Writes ``aimc_lib/results/studies/fp32_recipe.json``; ``--quick``: a smoke run (200 images).
"""
from __future__ import annotations

from pathlib import Path

import torch

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import eval_batch_size, provenance
from aimc_lib.data import load_cifar10
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import accuracy_under_weight_noise, accuracy_vs_time
from aimc_lib.periphery import Periphery
from aimc_lib.result_files import save_results
from aimc_lib.times import DAY_S, HOUR_S, MONTH_S, YEAR_S
from aimc_lib.zoo import RESULTS_DIR, load_model

ROOT = Path(__file__).resolve().parents[1]

PLAIN = ROOT / "runs" / "study-fp32-plain" / "model.pt"
ETA_INF = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
TIMES_S = [10.0, HOUR_S, DAY_S, MONTH_S, YEAR_S]
PERIPHERY_TIMES_S = [10.0, DAY_S, YEAR_S]
CHIPS = 5             # chips on the ideal chip's grid
PERIPHERY_CHIPS = 3   # chips through the aihwkit-like periphery


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "fp32_recipe.json")
    ap.add_argument("--repeats", type=int, default=5, help="weight-noise draws per eta")
    ap.add_argument("--chips", type=int, default=CHIPS, help="chips, ideal periphery")
    ap.add_argument("--periphery-chips", type=int, default=PERIPHERY_CHIPS, help="chips, aihwkit-like periphery")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 200 test images, 1 draw, 1 chip")
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    if not PLAIN.exists():
        raise SystemExit(f"not trained yet: {PLAIN} (see this script's docstring)")
    test = load_cifar10("test")
    if a.quick:
        test = test.subset(200, seed=0)
        a.repeats, a.chips, a.periphery_chips = 1, 1, 1
    etas = ETA_INF
    bs = eval_batch_size(a.device)
    model = load_model(str(PLAIN), a.device)
    fp32 = accuracy(model, test, bs)
    print(f"plain recipe: FP32 {fp32:.2f} %", flush=True)
    noise = accuracy_under_weight_noise(model, test, etas, n_repeats=a.repeats, seed=0, batch_size=bs)
    print("weight noise:", dict(zip(etas, [round(m, 2) for m in noise["mean"]])), flush=True)
    common = dict(compensation="gdc", seed=0, batch_size=bs, model_name="fp32-plain", fp32_accuracy=fp32,
                  progress=False)
    ideal = accuracy_vs_time(model, test, TIMES_S, n_chips=a.chips, **common)
    print("PCM, GDC, ideal periphery:", [round(m, 2) for m in ideal["mean"]], flush=True)
    hw = accuracy_vs_time(model, test, PERIPHERY_TIMES_S, n_chips=a.periphery_chips,
                          periphery=Periphery.aihwkit_like(gdc_readout="periphery"), **common)
    print("PCM, GDC, aihwkit-like periphery:", [round(m, 2) for m in hw["mean"]], flush=True)
    out = {"model": "runs/study-fp32-plain/model.pt", "recipe": _recipe(),
           "fp32_accuracy": fp32, "test_images": len(test), "provenance": provenance(a.device),
           "weight_noise": {k: noise[k] for k in ("etas", "mean", "std", "per_repeat")} | {"n_repeats": a.repeats},
           "pcm_gdc_ideal": ideal, "pcm_gdc_aihwkit": hw}
    save_results(out, a.out)
    print(f"wrote {a.out}")
    return 0


def _recipe() -> dict:
    """The plain network's training configuration, as stored in its model file."""
    return torch.load(PLAIN, weights_only=True)["meta"]["config"]


if __name__ == "__main__":
    raise SystemExit(main())
