"""The full pipeline (train FP32, fine-tune custom, publish, drift, figure) end to end on tiny subsets."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimc_lib.pcm import PCMParams
from aimc_lib.result_files import COMMITTED_RESULTS, result_name
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def test_reproduce_fast_runs_end_to_end(tmp_path, data_path):
    def run(*args):
        cmd = [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--fast", "--out", str(tmp_path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "AIMC_DATA": data_path})

    proc = run()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "weights" / "manifest.json").read_text())
    assert set(manifest) == {"resnet32-fp32", "resnet32-custom"}
    assert manifest["resnet32-custom"]["config"]["eta_tr"] > 0
    log = json.loads((tmp_path / "weights" / manifest["resnet32-fp32"]["log"]).read_text())
    assert len(log["epochs"]) == 1 and "test_acc" in log["epochs"][0]
    for model, comp in COMMITTED_RESULTS:
        res = json.loads((tmp_path / "results" / f"{result_name(model, comp)}.json").read_text())
        assert len(res["per_chip"]) == 2 and len(res["times_s"]) == 3
    assert (tmp_path / "results" / "figure.png").stat().st_size > 20_000
    assert (tmp_path / "results" / "figure.svg").exists()
    # the package's own weights folder was not touched by the fast run
    assert not (ROOT / "aimc_lib" / "weights" / "resnet32-fp32.pt").exists() or \
        json.loads((ROOT / "aimc_lib" / "weights" / "manifest.json").read_text())["resnet32-fp32"]["epochs"] > 1

    # Steps 4-5 alone, on a machine with only the test set and the saved calibration images,
    # give the same numbers (how the committed grids were run on a lent GPU).
    cal = tmp_path / "cal.npz"
    proc = run("--write-calibration", str(cal))
    assert proc.returncode == 0 and cal.stat().st_size > 100_000, proc.stderr[-3000:]
    first = {p.name: json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")}
    proc = run("--results-only", "--calibration", str(cal))
    assert proc.returncode == 0 and proc.stdout.count("exists, skipped") == len(first), proc.stdout[-3000:]
    for name in first:  # finished results are kept; computed again, they are the same
        (tmp_path / "results" / name).unlink()
    proc = run("--results-only", "--calibration", str(cal))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name, res in first.items():
        again = json.loads((tmp_path / "results" / name).read_text())
        assert again["per_chip"] == res["per_chip"], name


def test_ablation_study_names_the_runs_it_still_needs(tmp_path, monkeypatch):
    study = load_script("ablation_study")
    monkeypatch.setattr(study, "ARMS", {"both": "resnet32-custom", "clip-only": str(tmp_path / "model.pt")})
    try:
        study.main(["--quick", "--out", str(tmp_path / "out.json")])
    except SystemExit as e:
        assert "not trained yet" in str(e) and str(tmp_path / "model.pt") in str(e)
    else:
        raise AssertionError("a missing run must stop the study")
    assert not (tmp_path / "out.json").exists()


def test_ablation_study_measures_each_arm(tmp_path, monkeypatch, data_path):
    monkeypatch.setenv("AIMC_DATA", data_path)
    study = load_script("ablation_study")
    monkeypatch.setattr(study, "ARMS", {"both": "resnet32-custom"})
    assert study.main(["--quick", "--out", str(tmp_path / "out.json")]) == 0
    res = json.loads((tmp_path / "out.json").read_text())
    arm = res["arms"]["both"]
    assert res["test_images"] == 200 and res["n_chips"] == 1 and res["eta_inf"][0] == 0.0
    assert arm["weight_noise"]["per_repeat"][0] == [arm["fp32_accuracy"]] * 2  # no noise: the digital network
    assert len(arm["pcm_day"]["per_chip"]) == 1 and 80 < arm["pcm_day"]["mean"] <= 100
    meta = arm["pcm_day"]["meta"]  # how its chips were made, which the results' install checks
    assert meta["stream"] == "philox4x32-10" and meta["n_chips"] == 1 and meta["pcm_params"] == PCMParams().to_dict()


def test_zero_target_study_measures_the_size_and_the_rest_of_the_weight_error():
    import torch
    from aimc_lib.models import resnet
    from aimc_lib.pcm import PCMParams
    from aimc_lib.periphery import Periphery
    from aimc_lib.weight_noise import gain_and_rest
    study = load_script("zero_target_study")
    w = torch.randn(16, 9)
    assert gain_and_rest(2 * w, w) == pytest.approx((2.0, 0.0), abs=1e-6)
    scale, noise = gain_and_rest(w + 0.1 * torch.randn(16, 9), w)
    assert scale == pytest.approx(1.0, abs=0.1) and 0.01 < noise < 0.1

    torch.manual_seed(0)
    model = resnet(20, (8, 12, 24)).eval()
    per = Periphery.aihwkit_like(gdc_readout="periphery")
    exact = study.chip_errors(model, 0, PCMParams(prog_noise_scale=0.0, drift_scale=0.0, read_noise_scale=0.0,
                                                  noise_on_zero_target=False), per)["exact"]
    for t in study.TIMES_S:  # a chip without noise or drift holds the trained weights exactly
        assert exact["scale"][str(t)] == pytest.approx([1.0] * len(exact["scale"][str(t)]), abs=1e-5)
        assert max(exact["noise"][str(t)]) < 1e-5
    on, off = (study.chip_errors(model, 0, p, per) for p in study.SETTINGS.values())
    day = str(study.DAY_S)
    assert sum(on["exact"]["scale"][day]) < sum(off["exact"]["scale"][day])  # the noisy zero devices shrink weights


def test_gdc_readout_study_all_ones_readout():
    """The study's all-ones readout: one read with every row driven; without noise its mean |output|
    follows a uniform shrink of the weights (the known inputs are the library's: tests/test_periphery.py)."""
    import torch
    from aimc_lib.periphery import Periphery
    study = load_script("gdc_readout_study")
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(0)) * 0.3
    per = Periphery(inp_bits=8, out_bits=8, out_bound=10.0)
    ref, now = (study.all_ones_readout(f * w, per, 0, 0, r) for r, f in ((0, 1.0), (1, 0.8)))
    assert ref.shape == (1, 6)
    assert float(ref.abs().mean() / now.abs().mean()) == pytest.approx(1.25, rel=0.05)
