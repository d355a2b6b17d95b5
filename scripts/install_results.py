"""Install the regenerated results (``runs/results-next``) into ``aimc_lib/results``, all or none.

    python scripts/install_results.py                 # check the regenerated set; list what is missing
    python scripts/install_results.py --install       # then copy it in and redraw the figure

The set is what the scripts write: ``scripts/reproduce.py`` (the ideal chip's grids),
``scripts/periphery_study.py`` (the realistic chip and the parts study) and ``scripts/studies.py``
(the device-model studies and the weight-noise sweep), and the studies of other scripts that read
simulated chips (``scripts/recipe_study.py``, ``scripts/ablation_study.py``). Nothing is copied unless every file is
there, complete (no ``.partial.json`` beside it) and made as its script says: the counter-based
stream, the shipped model (by its parameters' sha256), all 10,000 test images, the script's chips
and its device and periphery parameters. Installing then removes the committed files the set
replaces under an older name, and redraws ``figure.png`` and ``figure.svg``
(:func:`aimc_lib.headline.save_headline_figure`). Studies that read no chips (``eta_sweep.json``:
weight noise only; ``zero_inputs.json``: the FP32 network's activations) and those made after the
stream and the defaults changed (``gdc_readout.json``, ``zero_target.json``) are left as they
are, and listed.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import sys
from pathlib import Path

from aimc_lib import rng, zoo
from aimc_lib.experiments import model_sha256
from aimc_lib.headline import save_headline_figure
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from aimc_lib.result_files import COMMITTED_RESULTS, load_results, result_name

ROOT = Path(__file__).resolve().parents[1]
NEXT = ROOT / "runs" / "results-next"
TEST_IMAGES = 10_000


def _script(name: str):
    """A script of ``scripts/`` as a module (they run nothing on import)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class Expected:
    """One file of the set and how it must have been made."""
    path: str  # relative to the results folder
    model: str
    compensation: str
    chips: int
    params: PCMParams
    periphery: Periphery | None  # None: the ideal chip (no periphery entry, or an ideal one)


def expected_set() -> list[Expected]:
    """Every result file the regeneration writes, from the scripts' own lists."""
    reproduce, periphery, studies = _script("reproduce"), _script("periphery_study"), _script("studies")
    out = [Expected(f"{result_name(m, c)}.json", m, c, 10, PCMParams(), None) for m, c in COMMITTED_RESULTS]
    for m in periphery.MODELS:
        chips = periphery.CHIPS[m]
        for comp in ("gdc", "adabs"):
            out.append(Expected(f"periphery/{m}_{comp}_aihwkit.json", m, comp, chips, PCMParams(), periphery.AIHWKIT))
        for variant, (per, params) in periphery.PARTS.items():
            if variant != "aihwkit":  # the main GDC result above
                out.append(Expected(f"periphery/{m}_gdc_{variant}.json", m, "gdc", chips, params,
                                    None if per.is_ideal else per))
    for variant, params in studies.VARIANTS.items():
        for m in studies.MODELS:
            out.append(Expected(f"studies/{m}_gdc_{variant}.json", m, "gdc", 10, params, None))
    out.append(Expected("studies/resnet32-custom_adabs_unaugmented-calibration.json", "resnet32-custom", "adabs", 10,
                        PCMParams(), None))
    assert reproduce.DRIFT_RUNS == COMMITTED_RESULTS
    return out


#: Files of the set that are not accuracy-vs-time results: copied as they are.
OTHER_FILES = ("studies/weight_noise.json",)


def chip_study_runs() -> dict[str, dict]:
    """The studies of other scripts that read simulated chips, which the regeneration also writes:
    file -> {where in the file: (chips, periphery)} of each accuracy-vs-time run inside it (the
    plain-recipe network and the clip/noise arms are not shipped models: no sha256 to compare)."""
    recipe, ablation = _script("recipe_study"), _script("ablation_study")
    aihwkit = Periphery.aihwkit_like(gdc_readout="periphery")
    return {
        "studies/fp32_recipe.json": {"pcm_gdc_ideal": (recipe.CHIPS, None),
                                     "pcm_gdc_aihwkit": (recipe.PERIPHERY_CHIPS, aihwkit)},
        "studies/clip_noise_ablation.json": {f"arms.{arm}.pcm_day": (ablation.CHIPS, None) for arm in ablation.ARMS},
    }


def run_mismatches(meta: dict, chips: int, params: PCMParams, periphery: Periphery | None) -> dict[str, tuple]:
    """What a run's ``meta`` records against what it must record: stream, test images, chips,
    device and periphery (None: the ideal chip), as ``{key: (recorded, expected)}`` where they differ."""
    per = Periphery(**meta["periphery"]) if "periphery" in meta else None
    checks = {"stream": (meta.get("stream"), rng.STREAM_NAME),
              "test_images": (meta.get("test_images"), TEST_IMAGES),
              "chips": (meta.get("n_chips"), chips),
              "pcm_params": (PCMParams(**meta["pcm_params"]) if "pcm_params" in meta else None, params),
              "periphery": (None if per is None or per.is_ideal else per, periphery)}
    return {k: v for k, v in checks.items() if v[0] != v[1]}


def _at(data: dict, where: str):
    for key in where.split("."):
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data


def chip_study_problems(folder: Path) -> list[str]:
    """What keeps the chip-reading studies of other scripts from being installed."""
    out = []
    for name, runs in chip_study_runs().items():
        if not (folder / name).exists():
            out.append(f"{name}: missing")
            continue
        try:
            data = json.loads((folder / name).read_text())
        except json.JSONDecodeError as err:
            out.append(f"{name}: not JSON ({err})")
            continue
        for where, (chips, per_want) in runs.items():
            wrong = run_mismatches(_at(data, where).get("meta", {}), chips, PCMParams(), per_want)
            out += [f"{name} ({where}): {k} is {got!r}, expected {want!r}" for k, (got, want) in wrong.items()]
    return out


def problems(folder: Path, items: list[Expected]) -> list[str]:
    """What keeps ``folder`` from being installed: one line per missing, partial or mismatched file."""
    out, shas = [], {}
    for e in items:
        path = folder / e.path
        partial = path.with_name(path.name + ".partial.json")
        if not path.exists():
            out.append(f"{e.path}: missing" + (" (partial: a run is under way or was stopped)" if partial.exists() else ""))
            continue
        try:
            meta = load_results(path)["meta"]
        except ValueError as err:
            out.append(f"{e.path}: {err}")
            continue
        if e.model not in shas:
            shas[e.model] = model_sha256(zoo.pretrained(e.model))
        model = {"model": (meta.get("model"), e.model), "model_sha256": (meta.get("model_sha256"), shas[e.model]),
                 "compensation": (meta.get("compensation"), e.compensation)}
        wrong = {k: v for k, v in model.items() if v[0] != v[1]} | run_mismatches(meta, e.chips, e.params, e.periphery)
        out += [f"{e.path}: {k} is {got!r}, expected {want!r}" for k, (got, want) in wrong.items()]
    out += [f"{name}: missing" for name in OTHER_FILES if not (folder / name).exists()]
    return out + chip_study_problems(folder)


def install(folder: Path, target: Path, items: list[Expected]) -> list[str]:
    """Copy the set into ``target``, remove the result files it replaces, redraw the figure; the
    lines of what was done."""
    done = []
    names = {e.path for e in items} | set(OTHER_FILES) | set(chip_study_runs())
    for name in sorted(names):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / name, target / name)
        done.append(f"installed {name}")
    for sub, pattern in (("", "resnet32-*.json"), ("periphery", "resnet32-*.json"), ("studies", "resnet32-*.json")):
        for path in sorted((target / sub).glob(pattern)):
            name = path.relative_to(target).as_posix()
            if name not in names:
                path.unlink()
                done.append(f"removed {name} (replaced by the regenerated set)")
    png = save_headline_figure(target)
    done.append(f"drew {png.relative_to(target) if png else 'no figure (headline results missing)'}")
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=str(NEXT), help="the regenerated results (default: runs/results-next)")
    ap.add_argument("--to", dest="target", default=str(zoo.RESULTS_DIR), help="where to install (default: aimc_lib/results)")
    ap.add_argument("--install", action="store_true", help="copy the set in (only if it is complete)")
    a = ap.parse_args(argv)
    source, target = Path(a.source), Path(a.target)
    items = expected_set()
    todo = problems(source, items)
    total = len(items) + len(OTHER_FILES) + len(chip_study_runs())
    ready = total - len({line.split(":")[0].split(" (")[0] for line in todo})
    print(f"{ready} of {total} files ready in {source}")
    for line in todo:
        print(f"  {line}")
    others = sorted(p.relative_to(target).as_posix() for p in (target / "studies").glob("*.json")
                    if not p.name.startswith("resnet32-")
                    and f"studies/{p.name}" not in (*OTHER_FILES, *chip_study_runs()))
    print("left as they are (other scripts): " + ", ".join(others))
    if todo:
        print("not installed: the set is incomplete" if a.install else "incomplete", file=sys.stderr if a.install else sys.stdout)
        return 1 if a.install else 0
    if a.install:
        for line in install(source, target, items):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
