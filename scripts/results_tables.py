"""Print the markdown tables of RESULTS.md from the committed results (so the note's numbers are the files').

    python scripts/results_tables.py                     # print them
    python scripts/results_tables.py --update RESULTS.md  # rewrite the note's tables in place

``--update`` replaces each table of the note by the printed table with the same header and the same
row labels (the first column), and fails, changing nothing, when a table of the note has no printed
counterpart or a printed table has no place in the note: the prose around them is the author's.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import runpy
import sys
from pathlib import Path

import numpy as np

from aimc_lib import zoo
from aimc_lib.result_files import (COMMITTED_RESULTS, GDC_READOUT_LABELS, chip_time_layer, gdc_readouts, load_results,
                                  markdown_table, paired_changes, result_name)
from aimc_lib.times import DAY_S, MONTH_S, REPORT_TIMES_S, YEAR_S

MODEL_LABELS = {"resnet32-custom": "custom training", "resnet32-fp32": "direct mapping (FP32 model)"}
COMPENSATION_LABELS = {"gdc": "GDC", "adabs": "AdaBS", "none": "no compensation"}
#: The committed results in the note's order (custom training first, then by compensation).
MAIN = {f"{MODEL_LABELS[m]}, {COMPENSATION_LABELS[c]}": result_name(m, c)
        for m in MODEL_LABELS for c in COMPENSATION_LABELS if (m, c) in COMMITTED_RESULTS}
TIMES = {"1e-5 s": 1e-5, **REPORT_TIMES_S}  # right after programming, then the note's usual times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--update", type=Path, metavar="NOTE", help="rewrite the tables of this markdown file")
    args = parser.parse_args([] if argv is None else argv)
    if args.update is None:
        print_tables()
        return 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_tables()
    note = args.update.read_text()
    args.update.write_text(update_tables(note, out.getvalue()))
    print(f"updated the tables of {args.update}")
    return 0


def tables_of(text: str) -> list[tuple[int, int]]:
    """``(first, end)`` line ranges of the markdown tables in ``text`` (runs of lines starting ``|``)."""
    spans, start = [], None
    for i, line in enumerate([*text.splitlines(), ""]):
        if line.startswith("|") and start is None:
            start = i
        elif not line.startswith("|") and start is not None:
            spans.append((start, i))
            start = None
    return spans


def _key(rows: list[str]) -> tuple[str, frozenset]:
    """A table's identity: its header and the labels of its rows (first column)."""
    return rows[0], frozenset(r.split("|")[1].strip() for r in rows[2:])


def update_tables(note: str, printed: str) -> str:
    """``note`` with each table replaced by the table of ``printed`` of the same header and row labels."""
    plines = printed.splitlines()
    new = {}
    for a, b in tables_of(printed):
        key = _key(plines[a:b])
        if key in new:
            raise ValueError(f"two printed tables share a header and row labels: {plines[a]}")
        new[key] = plines[a:b]
    lines, out, used, last = note.splitlines(), [], set(), 0
    stale = []
    for a, b in tables_of(note):
        key = _key(lines[a:b])
        out += lines[last:a]
        if key not in new:
            stale.append(lines[a] + " / " + ", ".join(sorted(key[1])))
            out += lines[a:b]
        else:
            out += new[key]
            used.add(key)
        last = b
    out += lines[last:]
    unplaced = [rows[0] + " / " + ", ".join(sorted(_key(rows)[1])) for key, rows in new.items() if key not in used]
    if stale or unplaced:
        raise SystemExit("tables not updated:\n" + "".join(f"  in the note, not printed: {t}\n" for t in stale)
                         + "".join(f"  printed, not in the note: {t}\n" for t in unplaced))
    return "\n".join(out) + ("\n" if note.endswith("\n") else "")


def print_tables() -> None:
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
            for v in ("programming-only", "no-read-noise", "zero-target-off"):
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
        print()
    other_studies = {  # the studies of other scripts, each a file and its table, in the note's order
        "eta_sweep.json": eta_sweep_table,
        "clip_noise_ablation.json": ablation_table,
        "fp32_recipe.json": lambda recipe: recipe_tables(recipe, json.loads((studies / "weight_noise.json").read_text())),
        "gdc_readout.json": gdc_readout_table,
        "zero_target.json": zero_target_table,
        "zero_inputs.json": zero_inputs_table,
    }
    for name, table in other_studies.items():
        if (studies / name).exists():
            print(table(json.loads((studies / name).read_text())))
    full = zoo.RESULTS_DIR / "periphery"
    if full.exists():
        print(seed_table(full, m["resnet32-fp32"]["test_accuracy"]))
        print(periphery_table(full))
        print(periphery_parts_table(full))
        print(periphery_parts_table(full, ("aihwkit", *REALISTIC_VARIANTS), reference="aihwkit"))


def paired_change(d: np.ndarray) -> str:
    """Chip-by-chip differences ``d`` (same chips, two setups) as "mean +- standard error"."""
    return f"{d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f}"


#: Times of the periphery table: the note's usual ones plus those of the seed-figure comparison.
PERIPHERY_TABLE_TIMES = {"1e-5 s": 1e-5, "10 s": 10.0, "60 s": 60.0, "1 h": 3600.0, "1 day": 86400.0,
                         "1e5 s": 1e5, "1 month": 30 * 86400.0, "1 year": 365 * 86400.0}


def periphery_table(folder: Path) -> str:
    """The full periphery results: ideal vs aihwkit-like periphery, and the change on the shared chips.

    The aihwkit-like results use chips ``0..n-1``; the ideal ones the first 10 of them, so the
    change row pairs chip ``k`` with chip ``k`` (the periphery does not change a chip's conductances).
    A time the ideal grid lacks (60 s) shows ``-``.
    """
    head = "| model, compensation, periphery | chips | " + " | ".join(PERIPHERY_TABLE_TIMES) + " |"
    rows = [head, "| --- | --- | " + " | ".join("---" for _ in PERIPHERY_TABLE_TIMES) + " |"]
    for model, label in (("resnet32-fp32", "direct mapping"), ("resnet32-custom", "custom training")):
        for comp in ("gdc", "adabs"):
            res = load_results(folder / f"{model}_{comp}_aihwkit.json")
            ideal = zoo.results(result_name(model, comp)) if (model, comp) in COMMITTED_RESULTS else None
            name = f"{label}, {COMPENSATION_LABELS[comp]}"
            pc = np.asarray(res["per_chip"])
            if ideal is not None:
                ref = np.asarray(ideal["per_chip"])
                n = len(ref)
                if res["meta"]["seeds"][:n] != ideal["meta"]["seeds"]:
                    raise ValueError("paired differences need the same chips")
                cells, change = [], []
                for t in PERIPHERY_TABLE_TIMES.values():
                    j = res["times_s"].index(t)
                    if t in ideal["times_s"]:
                        i = ideal["times_s"].index(t)
                        cells.append(f"{ref[:, i].mean():.2f} +- {ref[:, i].std(ddof=1):.2f}")
                        d = pc[:n, j] - ref[:, i]
                        change.append(paired_change(d))
                    else:
                        cells.append("-")
                        change.append("-")
                rows.append(f"| {name}, ideal | {n} | " + " | ".join(cells) + " |")
            rows.append(f"| {name}, aihwkit-like | {len(pc)} | " + " | ".join(
                f"{pc[:, res['times_s'].index(t)].mean():.2f} +- {pc[:, res['times_s'].index(t)].std(ddof=1):.2f}"
                for t in PERIPHERY_TABLE_TIMES.values()) + " |")
            if ideal is not None:
                rows.append(f"| {name}, change on the same {n} chips (mean +- standard error) | {n} | "
                            + " | ".join(change) + " |")
    return "\n".join(rows) + "\n"


#: The seed figure read off by eye, and the paper's numbers (Joshi et al. 2020), per row of :func:`seed_table`:
#: (row, network, time in s or None for the FP32 baseline, seed figure, paper).
SEED_ROWS = (("FP32 baseline", None, None, "about 92", "about 93.9"),
             ("custom training, earliest time (1e-5 s)", "resnet32-custom", 1e-5, "about 91", "93.7 after mapping"),
             ("custom training, 10 s", "resnet32-custom", 10.0, "about 90", "-"),
             ("custom training, 1e5 s (about a day)", "resnet32-custom", 1e5, "about 89-90",
              "> 93.5 after a day (preprint > 92.6)"),
             ("direct mapping, earliest time (1e-5 s)", "resnet32-fp32", 1e-5, "about 89", "-"),
             ("direct mapping, 10 s", "resnet32-fp32", 10.0, "about 75", "-"),
             ("direct mapping, 1e5 s (about a day)", "resnet32-fp32", 1e5, "about 81", "-"))


def seed_table(folder: Path, fp32_accuracy: float) -> str:
    """The seed figure and the paper beside the realistic chip (GDC, the headline) and the ideal chip
    (GDC, its first chips), with the change on the chips both read (mean +- standard error)."""
    rows = ["| test accuracy (%) | seed figure (read by eye) | paper | realistic chip (GDC) | ideal chip (GDC) "
            "| realistic - ideal, same chips (mean +- standard error) |", "| --- | --- | --- | --- | --- | --- |"]
    for label, model, t, seed, paper in SEED_ROWS:
        if model is None:
            rows.append(f"| {label} | {seed} | {paper} | {fp32_accuracy:.2f} | {fp32_accuracy:.2f} | - |")
            continue
        real, ideal = load_results(folder / f"{model}_gdc_aihwkit.json"), zoo.results(result_name(model, "gdc"))
        a = np.asarray(real["per_chip"])[:, real["times_s"].index(t)]
        b = np.asarray(ideal["per_chip"])[:, ideal["times_s"].index(t)]
        mean, se = paired_changes(real, ideal, [t])
        rows.append(f"| {label} | {seed} | {paper} | {a.mean():.2f} +- {a.std(ddof=1):.2f} ({len(a)} chips) | "
                    f"{b.mean():.2f} +- {b.std(ddof=1):.2f} ({len(b)} chips) | {mean[0]:+.2f} +- {se[0]:.2f} |")
    return "\n".join(rows) + "\n"


_PERIPHERY_STUDY = runpy.run_path(str(Path(__file__).with_name("periphery_study.py")))
#: The parts of the periphery, each switched on alone, then together, and the variants of the
#: realistic chip (``scripts/periphery_study.py --only parts``).
PARTS = tuple(_PERIPHERY_STUDY["PARTS"])
#: The times they were read at.
PARTS_TIMES = {"1 day": DAY_S, "1 month": MONTH_S, "1 year": YEAR_S}
assert list(PARTS_TIMES.values()) == _PERIPHERY_STUDY["PARTS_TIMES_S"]
#: The realistic chip's variants, paired with it (GDC's readout, the zero-target device).
REALISTIC_VARIANTS = tuple(v for v in PARTS if v.startswith("aihwkit-"))


def periphery_parts_table(folder: Path, variants=PARTS, times: dict[str, float] = PARTS_TIMES,
                          reference: str = "ideal") -> str:
    """Which part of the periphery costs what at ``times``: each variant on the same chips as
    ``reference`` (the ideal periphery, or ``"aihwkit"``: the realistic chip).

    The ``aihwkit`` variant is the main result file (its grid holds ``times``); the change is the
    chip-by-chip difference to ``reference``, mean +- standard error over the chips.
    """
    rows = ["| model (GDC), periphery | chips x images | " + " | ".join(
        f"{label}: accuracy (mean +- std) | {label}: change on the same chips (mean +- standard error)"
        for label in times) + " |", "| --- | --- | " + " | ".join("--- | ---" for _ in times) + " |"]
    for model, label in (("resnet32-fp32", "direct mapping"), ("resnet32-custom", "custom training")):
        def at(v):
            res = load_results(folder / f"{model}_gdc_{v}.json")
            return res, np.asarray(res["per_chip"])[:, [res["times_s"].index(t) for t in times.values()]]
        base, _ = at(reference)
        n = len(base["meta"]["seeds"])
        for v in variants:
            res, acc = at(v)
            mean, se = paired_changes(res, base, times.values())  # same chips and test images, or ValueError
            acc = acc[:n]
            rows.append(f"| {label}, {v} | {len(acc)} x {res['meta']['test_images']} | " + " | ".join(
                f"{acc[:, j].mean():.2f} +- {acc[:, j].std(ddof=1):.2f} | {mean[j]:+.2f} +- {se[j]:.2f}"
                for j in range(len(times))) + " |")
    return "\n".join(rows) + "\n"


def gdc_readout_table(study: dict) -> str:
    """GDC's factor through the periphery relative to the exact one (``scripts/gdc_readout_study.py``):
    mean over chips and layers, in %, per readout, the worst layer at a year, and the size the weights
    are left at a year (their least-squares gain on the trained weights; exact GDC's first)."""
    times = study["meta"]["times_s"]
    labels = {60.0: "60 s", 3600.0: "1 h", 86400.0: "1 day", 30 * 86400.0: "1 month", 365 * 86400.0: "1 year"}
    rows = ["| model, GDC readout | chips | " + " | ".join(labels[t] for t in times)
            + " | worst layer, 1 year | weights' gain, 1 year |",
            "| --- | --- | " + " | ".join("---" for _ in times) + " | --- | --- |"]
    for model, label in (("resnet32-fp32", "direct mapping"), ("resnet32-custom", "custom training")):
        chips = study["models"][model]
        gain = chip_time_layer(chips, "gain_exact", times_s=times)[:, -1]  # chip, layer at a year
        rows.append(f"| {label}, exact | {len(chips)} | " + " | ".join("0" for _ in times)
                    + f" | 0 | {gain.mean():.3f} |")
        for key in gdc_readouts(study):
            b = chip_time_layer(chips, "bias", key, times_s=times)
            rows.append(f"| {label}, {GDC_READOUT_LABELS.get(key, key)} | {len(chips)} | "
                        + " | ".join(f"{v:+.2f} %" for v in 100 * b.mean(axis=(0, 2)))
                        + f" | {100 * b[:, -1].mean(axis=0).min():+.1f} % | {((1 + b[:, -1]) * gain).mean():.3f} |")
    return "\n".join(rows) + "\n"


def zero_target_table(study: dict) -> str:
    """The size of the weights after GDC (least-squares gain on the trained ones; mean over chips and
    layers), with the zero-target device noisy or at 0 uS, on the ideal and the realistic chip, and
    the rest of the error at 1 day (``scripts/zero_target_study.py``)."""
    times = study["meta"]["times_s"]
    labels = {60.0: "60 s", 86400.0: "1 day", 30 * 86400.0: "1 month", 365 * 86400.0: "1 year"}
    chips = {"exact": "ideal chip (exact GDC readout)", "periphery": "realistic chip (readout through the periphery)"}
    rows = ["| model, chip, zero-target device | chips | " + " | ".join(f"gain, {labels[t]}" for t in times)
            + " | gain, lowest layer, 1 year | rest of the error, 1 day (% of max abs w) |",
            "| --- | --- | " + " | ".join("---" for _ in times) + " | --- | --- |"]
    day = times.index(86400.0)
    for model, label in (("resnet32-fp32", "direct mapping"), ("resnet32-custom", "custom training")):
        for readout in study["meta"]["readouts"]:
            for setting, name in (("on", "noisy"), ("off", "at 0 uS")):
                entries = study["models"][model][setting]
                g = chip_time_layer(entries, readout, "scale", times_s=times)
                n = 100 * chip_time_layer(entries, readout, "noise", times_s=times)
                rows.append(f"| {label}, {chips[readout]}, {name} | {len(entries)} | "
                            + " | ".join(f"{v:.3f}" for v in g.mean(axis=(0, 2)))
                            + f" | {g[:, -1].mean(axis=0).min():.3f} | {n[:, day].mean():.2f} |")
    return "\n".join(rows) + "\n"


def zero_inputs_table(study: dict) -> str:
    """How often an analog layer's input vector is all zero (``scripts/zero_inputs_study.py``)."""
    rows = ["| model | test images | all-zero input vectors (all layers) | the layer with most |",
            "| --- | --- | --- | --- |"]
    for model, counts in study["models"].items():
        zeros, total = (sum(c[i] for c in counts.values()) for i in (0, 1))
        worst = max(counts, key=lambda k: counts[k][0] / counts[k][1])
        rows.append(f"| {model} | {study['test_images']:,} | {100 * zeros / total:.3f} % | "
                    f"{worst}: {100 * counts[worst][0] / counts[worst][1]:.2f} % |")
    return "\n".join(rows) + "\n"


def eta_sweep_table(sweep: dict) -> str:
    """The short eta_tr sweep (``scripts/eta_sweep.py``): each fine-tune under inference weight noise."""
    rows = ["| eta_tr (training) | " + " | ".join(f"eta_inf {100 * e:g} %" for e in sweep["eta_inf"]) + " |",
            "| --- | " + " | ".join("---" for _ in sweep["eta_inf"]) + " |"]
    for eta_tr, r in sweep["runs"].items():
        rows.append(f"| {100 * float(eta_tr):g} % | " + " | ".join(f"{m:.2f} +- {sd:.2f}" for m, sd in zip(r["mean"], r["std"]))
                    + " |")
    return "\n".join(rows) + "\n"


def ablation_table(ablation: dict) -> str:
    """The full-length clipping / noise ablation: weight-noise robustness and PCM at one day per arm."""
    etas = ablation["eta_inf"]
    rows = ["| fine-tune (15 epochs, all images) | FP32 (%) | " + " | ".join(f"eta_inf {100 * e:g} %" for e in etas[1:])
            + f" | PCM, 1 day, GDC ({ablation['n_chips']} chips) | change from both, same chip seeds |",
            "| --- | --- | " + " | ".join("---" for _ in etas[1:]) + " | --- | --- |"]
    ref = np.asarray(ablation["arms"]["both"]["pcm_day"]["per_chip"])
    for arm, r in ablation["arms"].items():
        wn, chips = r["weight_noise"], np.asarray(r["pcm_day"]["per_chip"])
        d = chips - ref
        change = "-" if arm == "both" else paired_change(d)
        rows.append(f"| {arm} | {r['fp32_accuracy']:.2f} | " + " | ".join(
            f"{m:.2f} +- {sd:.2f}" for m, sd in zip(wn["mean"][1:], wn["std"][1:]))
            + f" | {chips.mean():.2f} +- {chips.std(ddof=1):.2f} | {change} |")
    return "\n".join(rows) + "\n"


def recipe_tables(recipe: dict, weight_noise: dict) -> str:
    """The plain-recipe FP32 network next to the shipped one: weight noise, then PCM with and without periphery."""
    etas = recipe["weight_noise"]["etas"]
    shipped = weight_noise["resnet32-fp32"]
    rows = ["| FP32 network | test accuracy (%) | " + " | ".join(f"eta_inf {100 * e:g} %" for e in etas[1:]) + " |",
            "| --- | --- | " + " | ".join("---" for _ in etas[1:]) + " |"]
    idx = [shipped["etas"].index(e) for e in etas[1:]]
    rows.append(f"| shipped (label smoothing 0.1, weight decay 5e-4; {shipped['n_repeats']} draws) | "
                f"{shipped['mean'][0]:.2f} | " + " | ".join(f"{shipped['mean'][i]:.2f} +- {shipped['std'][i]:.2f}" for i in idx) + " |")
    wn = recipe["weight_noise"]
    rows.append(f"| plain (no label smoothing, weight decay 1e-4; {wn['n_repeats']} draws) | {recipe['fp32_accuracy']:.2f} | "
                + " | ".join(f"{m:.2f} +- {sd:.2f}" for m, sd in zip(wn["mean"][1:], wn["std"][1:])) + " |")
    out = "\n".join(rows) + "\n\n"
    for key, ref_name, label in (("pcm_gdc_ideal", "resnet32-fp32_gdc", "ideal periphery"),
                                 ("pcm_gdc_aihwkit", "periphery/resnet32-fp32_gdc_aihwkit", "aihwkit-like periphery")):
        res, ref = recipe[key], zoo.results(ref_name)
        n = res["meta"]["n_chips"]
        if ref["meta"]["seeds"][:n] != res["meta"]["seeds"]:
            raise ValueError("the plain network must be read on the shipped results' first chips")
        cols = [ref["times_s"].index(t) for t in res["times_s"]]
        names = {v: k for k, v in PERIPHERY_TABLE_TIMES.items()}
        heads = [names.get(t, f"{t:g} s") for t in res["times_s"]]
        rows = [f"| direct mapping, GDC, {label} | chips | " + " | ".join(heads) + " |",
                "| --- | --- | " + " | ".join("---" for _ in heads) + " |"]
        shipped_pc = np.asarray(ref["per_chip"])[:n][:, cols]
        for name, pc in (("shipped FP32", shipped_pc), ("plain FP32", np.asarray(res["per_chip"]))):
            rows.append(f"| {name} | {n} | " + " | ".join(f"{m:.2f}" for m in pc.mean(0)) + " |")
        rows.append(f"| how much more the plain network loses (points; each from its own FP32 accuracy) | {n} | " + " | ".join(
            f"{(recipe['fp32_accuracy'] - p) - (ref['meta']['fp32_accuracy'] - q):+.2f}"
            for p, q in zip(np.asarray(res["per_chip"]).mean(0), shipped_pc.mean(0))) + " |")
        out += "\n".join(rows) + "\n\n"
    return out


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
