"""The paper's Fig. 2c question on a small budget: accuracy vs inference noise for several training noises.

    python scripts/eta_sweep.py --device cuda                    # minutes on a GPU
    python scripts/eta_sweep.py --train-npz data_batch_1.npz     # 10,000 training images only

For each eta_tr, fine-tune the shipped FP32 network with ``custom_config(eta_tr=...)`` for a few
short epochs, then measure its test accuracy under Gaussian weight noise ``eta_inf * max|W_l|``
(``accuracy_under_weight_noise``, full test set). One training run per eta_tr (the paper uses
10), so this shows the trend, not the run-to-run spread. Writes
``aimc_lib/results/studies/eta_sweep.json``.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import device_description, eval_batch_size
from aimc_lib.data import load_cifar10, split_from_nhwc
from aimc_lib.experiments import accuracy_under_weight_noise
from aimc_lib.result_files import save_results
from aimc_lib.training import custom_config, train
from aimc_lib.zoo import RESULTS_DIR, WEIGHTS_DIR, manifest

ETA_TR = [0.0, 0.02, 0.038, 0.06, 0.08]
ETA_INF = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "eta_sweep.json")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--train-npz", help="train on this one CIFAR-10 batch (.npz) instead of all 50,000 images")
    ap.add_argument("--train-images", type=int, default=0, help="a smoke run: train on this many images")
    ap.add_argument("--test-images", type=int, default=0, help="a smoke run: evaluate on this many images")
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    test = load_cifar10("test")
    if a.train_npz:
        with np.load(a.train_npz) as d:
            tr = split_from_nhwc(d["x"], d["y"])
    else:
        tr = load_cifar10("train")
    if a.train_images:
        tr = tr.subset(a.train_images, seed=0)
    if a.test_images:
        test = test.subset(a.test_images, seed=0)
    init = str(WEIGHTS_DIR / manifest()["resnet32-fp32"]["file"])
    out = {"eta_tr": ETA_TR, "eta_inf": ETA_INF, "epochs": a.epochs, "train_images": len(tr), "test_images": len(test),
           "device": device_description(a.device), "runs": {}}
    for eta in ETA_TR:
        t0 = time.time()
        cfg = custom_config(eta_tr=eta, epochs=a.epochs, init_from=init, device=a.device)
        with tempfile.TemporaryDirectory() as d:
            model = train(cfg, tr, test, d, progress=False)
        res = accuracy_under_weight_noise(model, test, ETA_INF, n_repeats=a.repeats,
                                          batch_size=eval_batch_size(a.device))
        out["runs"][f"{eta:g}"] = {**res, "train_seconds": round(time.time() - t0, 1)}
        print(f"eta_tr {eta:.3f}: " + "  ".join(f"{100 * e:g}%: {m:.2f}" for e, m in zip(ETA_INF, res["mean"])), flush=True)
    save_results(out, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
