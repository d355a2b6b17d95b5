"""Print the markdown tables of RESULTS.md from the committed results (so the note's numbers are the files').

    python scripts/results_tables.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aimc_lib import zoo  # noqa: E402
from aimc_lib.result_files import COMMITTED_RESULTS, load_results, markdown_table, result_name  # noqa: E402
from aimc_lib.times import REPORT_TIMES_S  # noqa: E402

MODEL_LABELS = {"resnet32-custom": "custom training", "resnet32-fp32": "direct mapping (FP32 model)"}
COMPENSATION_LABELS = {"gdc": "GDC", "adabs": "AdaBS", "none": "no compensation"}
#: The committed results in the note's order (custom training first, then by compensation).
MAIN = {f"{MODEL_LABELS[m]}, {COMPENSATION_LABELS[c]}": result_name(m, c)
        for m in MODEL_LABELS for c in COMPENSATION_LABELS if (m, c) in COMMITTED_RESULTS}
TIMES = {"1e-5 s": 1e-5, **REPORT_TIMES_S}  # right after programming, then the note's usual times


def main() -> int:
    m = zoo.manifest()
    print("| model | recipe | epochs | test accuracy (FP32, %) | training time | hardware | torch | aimc_lib |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, e in m.items():
        print(f"| {name} | `{e['recipe']}` | {e['epochs']} | {e['test_accuracy']:.2f} | "
              f"{e['train_seconds'] / 3600:.2f} h | {e['hardware']} | {e['torch']} | {e['aimc_lib']} |")
    print()
    print(markdown_table({label: zoo.results(name) for label, name in MAIN.items()}, TIMES))
    studies = zoo.RESULTS_DIR / "studies"
    if studies.exists():
        variants = {}
        for model, label in (("resnet32-fp32", "direct mapping"), ("resnet32-custom", "custom training")):
            variants[f"{label}, full model"] = zoo.results(f"{model}_gdc")
            for v in ("programming-only", "no-read-noise", "zero-target-noise"):
                f = studies / f"{model}_gdc_{v}.json"
                if f.exists():
                    variants[f"{label}, {v}"] = load_results(f)
        print(markdown_table(variants, TIMES))
        adabs = {"custom training, AdaBS (augmented calibration images, shipped)": zoo.results("resnet32-custom_adabs"),
                 "custom training, AdaBS (un-augmented calibration images)":
                     load_results(studies / "resnet32-custom_adabs_unaugmented-calibration.json")}
        print(markdown_table(adabs, TIMES))
        noise = json.loads((studies / "weight_noise.json").read_text())
        etas = next(iter(noise.values()))["etas"]
        print("| eta (% of max abs W) | " + " | ".join(noise) + " |")
        print("| --- | " + " | ".join("---" for _ in noise) + " |")
        for i, eta in enumerate(etas):
            print(f"| {100 * eta:g} | " + " | ".join(f"{r['mean'][i]:.2f} +- {r['std'][i]:.2f}"
                                                    for r in noise.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
