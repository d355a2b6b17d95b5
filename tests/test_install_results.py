"""scripts/install_results.py: the regenerated results go in all together, and only as their scripts make them."""
import dataclasses
import json
import shutil

import pytest

from aimc_lib import rng, zoo
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from project_scripts import load_script

installer = load_script("install_results")


def _committed_like(e) -> dict:
    """A committed result of the same model, compensation and chip count, re-labelled as ``e`` says
    it must have been made (the test's stand-in for a regenerated file)."""
    candidates = [p for p in sorted(zoo.RESULTS_DIR.rglob("resnet32-*.json"))
                  if (m := json.loads(p.read_text())["meta"])["model"] == e.model and m["compensation"] == e.compensation
                  and m["n_chips"] == e.chips]
    res = json.loads(candidates[0].read_text())
    res["meta"].update(stream=rng.STREAM_NAME, pcm_params=e.params.to_dict())
    res["meta"].pop("periphery", None)
    if e.periphery is not None:
        res["meta"]["periphery"] = dataclasses.asdict(e.periphery)
    return res


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("next")
    for e in installer.expected_set():
        (folder / e.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / e.path).write_text(json.dumps(_committed_like(e)))
    for name in installer.OTHER_FILES:
        shutil.copy(zoo.RESULTS_DIR / name, folder / name)
    for name, runs in installer.chip_study_runs().items():
        data = json.loads((zoo.RESULTS_DIR / name).read_text())
        for where, (chips, per) in runs.items():
            run = installer._at(data, where)
            run["meta"] = dict(run.get("meta", {}), stream=rng.STREAM_NAME, pcm_params=PCMParams().to_dict(),
                               test_images=10_000, n_chips=chips)
            run["meta"].pop("periphery", None)
            if per is not None:
                run["meta"]["periphery"] = dataclasses.asdict(per)
        (folder / name).write_text(json.dumps(data))
    return folder


def test_the_expected_set_is_what_the_scripts_write():
    items = {e.path: e for e in installer.expected_set()}
    assert len(items) == len(installer.expected_set())  # no file twice
    assert items["resnet32-fp32_gdc.json"].periphery is None and items["resnet32-fp32_gdc.json"].chips == 10
    main = items["periphery/resnet32-fp32_gdc_aihwkit.json"]
    assert main.chips == 20 and main.periphery == Periphery.aihwkit_like(gdc_readout="periphery")
    assert items["periphery/resnet32-custom_gdc_ideal-zero-target-off.json"].params == PCMParams(noise_on_zero_target=False)
    assert items["periphery/resnet32-custom_gdc_aihwkit-16-gdc-reads.json"].periphery.gdc_reads == 16
    assert items["studies/resnet32-fp32_gdc_programming-only.json"].params.drift_scale == 0.0
    assert "studies/resnet32-custom_adabs_unaugmented-calibration.json" in items


def test_a_complete_set_installs_replaces_the_old_names_and_redraws_the_figure(regenerated, tmp_path, capsys):
    assert installer.problems(regenerated, installer.expected_set()) == []
    target = tmp_path / "results"
    shutil.copytree(zoo.RESULTS_DIR, target)
    (target / "figure.png").unlink()
    for old in ("studies/resnet32-fp32_gdc_zero-target-noise.json",  # names of the results before 0.2.0
                "periphery/resnet32-fp32_gdc_ideal-zero-target-noise.json"):
        shutil.copy(target / "resnet32-fp32_gdc.json", target / old)
    (target / "periphery" / "resnet32-fp32_gdc_ideal-zero-target-off.json").unlink(missing_ok=True)
    assert installer.main(["--from", str(regenerated), "--to", str(target), "--install"]) == 0
    out = capsys.readouterr().out
    assert "removed studies/resnet32-fp32_gdc_zero-target-noise.json" in out
    assert not (target / "periphery" / "resnet32-fp32_gdc_ideal-zero-target-noise.json").exists()
    assert (target / "periphery" / "resnet32-fp32_gdc_ideal-zero-target-off.json").exists()
    assert (target / "studies" / "eta_sweep.json").exists()  # another script's study, left as it is
    assert json.loads((target / "studies" / "fp32_recipe.json").read_text())["pcm_gdc_ideal"]["meta"]["stream"] \
        == rng.STREAM_NAME  # a chip study of another script, installed with the set
    assert (target / "figure.png").stat().st_size > 20_000


@pytest.mark.parametrize("change, message", [
    (lambda res: res["meta"].pop("stream"), "stream is None, expected 'philox4x32-10'"),
    (lambda res: res["meta"]["pcm_params"].update(noise_on_zero_target=False), "pcm_params is PCMParams("),
    (lambda res: res["meta"].update(test_images=1000), "test_images is 1000, expected 10000"),
    (lambda res: res["meta"].update(model_sha256="0" * 64), "model_sha256 is '000"),
    (lambda res: res["meta"].pop("periphery"), "periphery is None, expected Periphery("),
])
def test_a_file_not_made_as_its_script_says_stops_the_install(regenerated, tmp_path, change, message, capsys):
    folder = tmp_path / "next"
    shutil.copytree(regenerated, folder)
    path = folder / "periphery" / "resnet32-fp32_gdc_aihwkit.json"
    res = json.loads(path.read_text())
    change(res)
    path.write_text(json.dumps(res))
    target = tmp_path / "results"
    shutil.copytree(zoo.RESULTS_DIR, target)
    before = sorted(p.name for p in target.rglob("*"))
    assert installer.main(["--from", str(folder), "--to", str(target), "--install"]) == 1
    captured = capsys.readouterr()
    assert f"periphery/resnet32-fp32_gdc_aihwkit.json: {message}" in captured.out
    assert "not installed: the set is incomplete" in captured.err
    assert sorted(p.name for p in target.rglob("*")) == before  # nothing copied


def test_the_chip_studies_of_other_scripts_are_part_of_the_set(regenerated, tmp_path, capsys):
    """The plain-recipe and clip/noise studies read chips: made with the old stream (their committed
    files record none) they stop the install; regenerated, they are installed with the set."""
    runs = installer.chip_study_runs()
    assert runs["studies/fp32_recipe.json"]["pcm_gdc_aihwkit"][1] == Periphery.aihwkit_like(gdc_readout="periphery")
    assert set(runs["studies/clip_noise_ablation.json"]) == {"arms.both.pcm_day", "arms.clip-only.pcm_day",
                                                             "arms.noise-only.pcm_day"}
    assert installer.chip_study_problems(regenerated) == []
    folder = tmp_path / "next"
    shutil.copytree(regenerated, folder)
    for name, where in (("clip_noise_ablation.json", "arms.both.pcm_day"), ("fp32_recipe.json", "pcm_gdc_ideal")):
        data = json.loads((folder / "studies" / name).read_text())
        installer._at(data, where)["meta"].pop("stream")  # as the results before 0.2.0 recorded it
        (folder / "studies" / name).write_text(json.dumps(data))
    old = installer.chip_study_problems(folder)
    assert "studies/clip_noise_ablation.json (arms.both.pcm_day): stream is None, expected 'philox4x32-10'" in old
    assert any(line.startswith("studies/fp32_recipe.json (pcm_gdc_ideal): stream is None") for line in old)
    assert len(old) == 2
    (folder / "studies" / "fp32_recipe.json").unlink()
    assert installer.main(["--from", str(folder), "--to", str(tmp_path / "unused"), "--install"]) == 1
    assert "studies/fp32_recipe.json: missing" in capsys.readouterr().out


def test_a_missing_or_partial_file_is_named(regenerated, tmp_path, capsys):
    folder = tmp_path / "next"
    shutil.copytree(regenerated, folder)
    path = folder / "resnet32-custom_none.json"
    path.rename(path.with_name(path.name + ".partial.json"))
    (folder / "studies" / "weight_noise.json").unlink()
    assert installer.main(["--from", str(folder), "--to", str(tmp_path / "unused")]) == 0  # a check only
    out = capsys.readouterr().out
    assert "resnet32-custom_none.json: missing (partial: a run is under way or was stopped)" in out
    assert "studies/weight_noise.json: missing" in out and "incomplete" in out
