"""Why direct mapping loses and custom training holds: measured variants of the device model.

    python scripts/studies.py                 # both shipped models, 10 chips (hours on a 2-core CPU)
    python scripts/studies.py --device cuda   # minutes on a GPU

Writes into ``aimc_lib/results/studies/`` (or ``--out``; existing files are skipped, and finished
chips are kept in ``<file>.partial.json``, so an interrupted run continues after its last chip; a
file that another run is writing is skipped too, so two runs can share the list):

* ``weight_noise.json``: accuracy of each model under Gaussian weight noise ``eta * max|W_l|``
  per layer, ``eta`` from 0 to 10 % (the noise axis of the paper's Fig. 2c);
* ``eta_sweep.json``: written by ``scripts/eta_sweep.py`` (short fine-tunes per eta_tr);
* ``{model}_gdc_{variant}.json``: accuracy vs time with GDC when one part of the PCM model is
  changed, to see which part costs the accuracy:

  - ``programming-only``: no drift, no read noise (programming noise alone);
  - ``no-read-noise``: programming noise and drift, no 1/f read noise;
  - ``zero-target-off``: the device of a pair whose target is 0 stays at exactly 0 uS (the
    calibrated model, our default, programs it with noise).
* ``resnet32-custom_adabs_unaugmented-calibration.json``: AdaBS with its 2,000 calibration images
  as they are, not augmented like the training batches (the shipped AdaBS result augments them).
"""
from __future__ import annotations

from pathlib import Path

from aimc_lib.checks import OutputBusy
from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import eval_batch_size
from aimc_lib.data import load_cifar10
from aimc_lib.experiments import accuracy_under_weight_noise, accuracy_vs_time
from aimc_lib.pcm import PCMParams
from aimc_lib.result_files import save_results
from aimc_lib.times import DEFAULT_TIMES_S
from aimc_lib.zoo import RESULTS_DIR, load_model

MODELS = ("resnet32-fp32", "resnet32-custom")
VARIANTS = {
    "programming-only": PCMParams(drift_scale=0.0, read_noise_scale=0.0),
    "no-read-noise": PCMParams(read_noise_scale=0.0),
    "zero-target-off": PCMParams(noise_on_zero_target=False),
}
ETAS = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1]


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies")
    ap.add_argument("--chips", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=10, help="noise draws per eta")
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    out = Path(a.out)
    test = load_cifar10("test")
    models = {name: load_model(name, a.device) for name in MODELS}

    if (out / "weight_noise.json").exists():
        print(f"exists, skipped: {out / 'weight_noise.json'}", flush=True)
    else:
        noise = {name: accuracy_under_weight_noise(m, test, ETAS, n_repeats=a.repeats, progress=True,
                                                 batch_size=eval_batch_size(a.device))
                 for name, m in models.items()}
        save_results(noise, out / "weight_noise.json")
        print(f"wrote {out / 'weight_noise.json'}", flush=True)

    for variant, params in VARIANTS.items():
        for name, m in models.items():
            _grid(out / f"{name}_gdc_{variant}.json", variant, m, name, test, a, compensation="gdc", params=params)
    _grid(out / "resnet32-custom_adabs_unaugmented-calibration.json", "unaugmented-calibration",
          models["resnet32-custom"], "resnet32-custom", test, a, compensation="adabs",
          calibration_split=load_cifar10("train"), calibration_augmented=False)
    return 0


def _grid(path: Path, variant: str, model, name: str, test, a, **kwargs) -> None:
    """One accuracy-vs-time grid of a study, tagged with its variant: skipped if ``path`` exists or
    another run is writing it, resumed from its ``.partial.json`` otherwise."""
    if path.exists():
        print(f"exists, skipped: {path}", flush=True)
        return
    try:
        res = accuracy_vs_time(model, test, DEFAULT_TIMES_S, n_chips=a.chips, model_name=name,
                               compile=a.device == "cpu", batch_size=eval_batch_size(a.device),
                               results_path=path, **kwargs)
    except OutputBusy as busy:
        print(f"busy, skipped: {busy}", flush=True)
        return
    res["meta"]["variant"] = variant
    save_results(res, path)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
