import numpy as np
import pytest
import torch

from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.result_files import load_results, save_results, value_at
from aimc_lib.times import DEFAULT_TIMES_S
from aimc_lib.models import resnet
from aimc_lib.pcm import PCMParams


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return resnet(8, (8, 8, 16)).eval()


def test_default_grid():
    assert DEFAULT_TIMES_S[0] == 1e-5 and len(DEFAULT_TIMES_S) == 15 and DEFAULT_TIMES_S == sorted(DEFAULT_TIMES_S)
    for t in (1.0, 3600.0, 86400.0, 1e5, 30 * 86400, 365 * 86400):
        assert t in DEFAULT_TIMES_S
    assert DEFAULT_TIMES_S[-1] == 365 * 86400


def test_noise_free_chips_equal_fp32(tiny_model, cifar_test):
    p = PCMParams(prog_noise_scale=0, drift_scale=0, read_noise_scale=0)
    res = accuracy_vs_time(tiny_model, cifar_test, [0.0, 1e5], n_chips=2, params=p, test_subset=300,
                           progress=False)
    assert np.allclose(res["per_chip"], res["meta"]["fp32_accuracy"])
    assert res["std"] == [0.0, 0.0]


@pytest.mark.parametrize("compensation", ["gdc", "none"])
def test_a_chip_that_reads_the_same_network_is_evaluated_once(tiny_model, cifar_test, monkeypatch,
                                                               compensation):
    """Without drift and read noise a chip reads the same weights at every time: its accuracy is
    measured once per chip, and the table is the one that measuring every time gives. With them,
    every time is measured."""
    from aimc_lib import experiments
    calls = []

    def counting_accuracy(runner, test, *args, **kwargs):
        calls.extend([1] if len(test) == 200 else [])  # not the run-time estimate's 100-image probe
        return real_accuracy(runner, test, *args, **kwargs)

    real_accuracy = experiments.accuracy
    monkeypatch.setattr(experiments, "accuracy", counting_accuracy)
    kw = dict(times_s=[1.0, 100.0, 1e5], n_chips=2, compensation=compensation, test_subset=200,
              progress=False, fp32_accuracy=10.0, seed=5)
    still = PCMParams(drift_scale=0.0, read_noise_scale=0.0)
    once = accuracy_vs_time(tiny_model, cifar_test, params=still, **kw)
    assert len(calls) == 2 and all(len(set(row)) == 1 for row in once["per_chip"])
    calls.clear()
    monkeypatch.setattr(experiments, "_same_state", lambda a, b: False)  # measure every read
    every = accuracy_vs_time(tiny_model, cifar_test, params=still, **kw)
    assert len(calls) == 6 and every["per_chip"] == once["per_chip"]
    monkeypatch.undo()
    monkeypatch.setattr(experiments, "accuracy", counting_accuracy)
    calls.clear()
    accuracy_vs_time(tiny_model, cifar_test, params=PCMParams(), **kw)
    assert len(calls) == 6


def test_table_metadata_and_roundtrip(tiny_model, cifar_test, tmp_path):
    res = accuracy_vs_time(tiny_model, cifar_test, [1.0, 3600.0], n_chips=3, test_subset=200, seed=7,
                           progress=False, model_name="tiny")
    assert np.shape(res["per_chip"]) == (3, 2)
    assert res["mean"][0] == pytest.approx(np.mean([r[0] for r in res["per_chip"]]))
    meta = res["meta"]
    assert meta["seeds"] == [7, 8, 9] and meta["n_chips"] == 3 and len(meta["model_sha256"]) == 64
    assert meta["pcm_params"]["g_max_us"] == 25.0 and meta["test_images"] == 200
    save_results(res, tmp_path / "r.json")
    assert load_results(tmp_path / "r.json") == res
    assert value_at(res, 3000.0) == (res["mean"][1], res["std"][1])


def test_same_seed_same_result(tiny_model, cifar_test):
    kw = dict(times_s=[10.0], n_chips=2, test_subset=100, seed=3, progress=False)
    a = accuracy_vs_time(tiny_model, cifar_test, **kw)
    b = accuracy_vs_time(tiny_model, cifar_test, **kw)
    assert a["per_chip"] == b["per_chip"]


def test_bad_arguments(tiny_model, cifar_test):
    with pytest.raises(ValueError, match="unknown compensation"):
        accuracy_vs_time(tiny_model, cifar_test, [1.0], compensation="xyz")
    with pytest.raises(ValueError, match="increasing"):
        accuracy_vs_time(tiny_model, cifar_test, [10.0, 1.0])
    with pytest.raises(ValueError, match="time since programming"):
        accuracy_vs_time(tiny_model, cifar_test, [-1.0])
    with pytest.raises(ValueError, match="calibration_split"):
        accuracy_vs_time(tiny_model, cifar_test, [1.0], compensation="adabs")
    with pytest.raises(ValueError, match="n_chips"):
        accuracy_vs_time(tiny_model, cifar_test, [1.0], n_chips=0)


def test_compiled_inference_gives_the_same_table(tiny_model, cifar_test):
    kw = dict(times_s=[1.0, 1e4], n_chips=2, test_subset=200, seed=1, progress=False)
    eager = accuracy_vs_time(tiny_model, cifar_test, **kw)
    compiled = accuracy_vs_time(tiny_model, cifar_test, compile=True, **kw)
    assert np.allclose(eager["per_chip"], compiled["per_chip"], atol=0.51)  # at most one image flips
    assert compiled["meta"]["compiled"] is True


def test_markdown_table_reads_exact_grid_points():
    from aimc_lib.result_files import markdown_table
    res = {"times_s": [1.0, 3600.0], "mean": [91.234, 90.0], "std": [0.5, 0.25], "meta": {"n_chips": 10}}
    table = markdown_table({"custom / GDC": res}, {"1 s": 1.0, "1 h": 3600.0})
    assert "| custom / GDC | 10 | 91.23 +- 0.50 | 90.00 +- 0.25 |" in table
    with pytest.raises(ValueError, match="not on this result's grid"):
        markdown_table({"x": res}, {"1 day": 86400.0})


def test_accuracy_under_weight_noise(tiny_model, cifar_test):
    from aimc_lib.experiments import accuracy_under_weight_noise
    from aimc_lib.evaluation import accuracy
    sub = cifar_test.subset(200)
    res = accuracy_under_weight_noise(tiny_model, sub, [0.0, 0.5], n_repeats=2, seed=0)
    assert res["per_repeat"][0] == [accuracy(tiny_model, sub)] * 2  # eta = 0 is the clean model
    again = accuracy_under_weight_noise(tiny_model, sub, [0.0, 0.5], n_repeats=2, seed=0)
    assert again["per_repeat"] == res["per_repeat"]  # same seed, same draws
    with pytest.raises(ValueError, match="eta"):
        accuracy_under_weight_noise(tiny_model, sub, [-0.1])


def test_given_fp32_accuracy_is_recorded(tiny_model, cifar_test):
    res = accuracy_vs_time(tiny_model, cifar_test, [1.0], n_chips=1, test_subset=100, progress=False,
                           fp32_accuracy=12.5)
    assert res["meta"]["fp32_accuracy"] == 12.5
