"""The periphery (DAC, ADC, output noise) on simulated PCM: results and the study of what costs what.

    python scripts/periphery_study.py                      # everything (hours on a 2-core CPU; minutes on a GPU)
    python scripts/periphery_study.py --only parts --models resnet32-fp32 --chips 2 --test-subset 1000 --times 86400

Writes into ``aimc_lib/results/periphery/`` (or ``--out``); existing files are skipped, and each
finished chip is kept in ``<file>.partial.json`` until its file is complete, so an interrupted run
continues after its last finished chip (``aimc_lib.resume``).

* ``main``: both shipped models with the aihwkit-like periphery (8-bit DAC and ADC, output noise
  0.04, GDC read through the periphery) with GDC and with AdaBS, on the grid ``PERIPHERY_TIMES_S``
  (the default grid plus 60 s); 10 chips for custom training, 20 for direct mapping.
  Files ``{model}_{gdc|adabs}_aihwkit.json``.
* ``parts``: which part costs what, on the same chips (same seeds) as the ideal periphery: DAC
  only, ADC only, output noise only, all, all with exact GDC readout, with 16 GDC calibration
  reads averaged or with GDC calibrated on known inputs, and the ideal and aihwkit-like chips with the zero-target device left at 0 uS
  (``noise_on_zero_target=False``), read at ``PARTS_TIMES_S`` (1 day, 1 month, 1 year). Files
  ``{model}_gdc_{variant}.json``; chip-by-chip differences to ``ideal`` (or to ``aihwkit``) are what
  ``results_tables.py`` prints.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.config import eval_batch_size
from aimc_lib.data import load_cifar10
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from aimc_lib.result_files import save_results
from aimc_lib.times import DAY_S, MONTH_S, PERIPHERY_TIMES_S, YEAR_S
from aimc_lib.zoo import RESULTS_DIR, load_model

MODELS = ("resnet32-fp32", "resnet32-custom")
CHIPS = {"resnet32-fp32": 20, "resnet32-custom": 10}
AIHWKIT = Periphery.aihwkit_like(gdc_readout="periphery")
#: The parts are read at these times only: the drift-dependent costs, without the full grid's price.
PARTS_TIMES_S = [DAY_S, MONTH_S, YEAR_S]
#: variant -> (periphery, PCM parameters); all on the same chips as "ideal".
PARTS = {
    "ideal": (Periphery.ideal(), PCMParams()),
    "dac-only": (Periphery(inp_bits=8), PCMParams()),
    "adc-only": (Periphery(out_bits=8, out_bound=10.0), PCMParams()),
    "out-noise-only": (Periphery(out_noise=0.04), PCMParams()),
    "aihwkit": (AIHWKIT, PCMParams()),
    "aihwkit-exact-gdc": (Periphery.aihwkit_like(gdc_readout="exact"), PCMParams()),
    "aihwkit-16-gdc-reads": (dataclasses.replace(AIHWKIT, gdc_reads=16), PCMParams()),
    "aihwkit-known-inputs-gdc": (Periphery.aihwkit_like(gdc_readout="known-inputs"), PCMParams()),
    "aihwkit-zero-target-off": (AIHWKIT, PCMParams(noise_on_zero_target=False)),
    "ideal-zero-target-off": (Periphery.ideal(), PCMParams(noise_on_zero_target=False)),
}


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "periphery")
    ap.add_argument("--only", choices=("main", "parts"), help="run one part only")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--variants", nargs="+", choices=list(PARTS), default=list(PARTS),
                    help="which parts variants to run (default: all)")
    ap.add_argument("--compensations", nargs="+", choices=("gdc", "adabs"), default=["gdc", "adabs"],
                    help="which compensations the main results use (default: both)")
    ap.add_argument("--chips", type=int, help="chips per result (default: 20 direct mapping, 10 custom)")
    ap.add_argument("--times", type=float, nargs="+",
                    help="times in s (default: PERIPHERY_TIMES_S for main, PARTS_TIMES_S for parts)")
    ap.add_argument("--test-subset", type=int, default=0, help="class-balanced test subset (0 = all 10,000)")
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    out = Path(a.out)
    test = load_cifar10("test")
    jobs = []
    for name in a.models:
        chips = a.chips or CHIPS[name]
        if a.only in (None, "parts"):
            for variant in a.variants:
                per, params = PARTS[variant]
                # the "aihwkit" variant is the main GDC result itself, on its full grid
                grid = PERIPHERY_TIMES_S if variant == "aihwkit" else PARTS_TIMES_S
                jobs.append((f"{name}_gdc_{variant}.json", name, "gdc", per, params, chips, a.times or grid))
        if a.only in (None, "main"):
            for comp in a.compensations:
                jobs.append((f"{name}_{comp}_aihwkit.json", name, comp, AIHWKIT, PCMParams(), chips,
                             a.times or PERIPHERY_TIMES_S))
    train = None
    for fname, name, comp, per, params, chips, times in jobs:
        path = out / fname
        if path.exists():
            print(f"exists, skipped: {path}", flush=True)
            continue
        if comp == "adabs" and train is None:
            train = load_cifar10("train")
        res = accuracy_vs_time(load_model(name, a.device), test, times, n_chips=chips, compensation=comp,
                               params=params, periphery=per, test_subset=a.test_subset, model_name=name,
                               calibration_split=train if comp == "adabs" else None,
                               batch_size=eval_batch_size(a.device), progress=False, results_path=path)
        res["meta"]["variant"] = fname.removesuffix(".json").split("_", 2)[-1]
        save_results(res, path)  # again, with the variant
        print(f"wrote {path}: " + ", ".join(f"{m:.2f}" for m in res["mean"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
