"""One run description: DriftRun and WeightNoiseRun check their arguments, and accuracy_vs_time and
accuracy_under_weight_noise either refuse an argument clearly or give exactly the protocol's result."""
import copy
import dataclasses
import glob
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from aimc_lib.checks import ArgumentError
from aimc_lib.data import calibration_batch
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import accuracy_under_weight_noise, accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from aimc_lib.result_files import load_results
from aimc_lib.runs import DriftRun, WeightNoiseRun
from clear_errors import FAST, anything, clear_error_or_valid, tiny_model, tiny_split

MODEL, TEST = tiny_model(), tiny_split()
RESULTS = Path(__file__).resolve().parents[1] / "aimc_lib" / "results"


def reference(model, test, times, n_chips, compensation, params, seed, calib_x=None):
    """accuracy_vs_time's protocol written out: chip k (seed + k) read forward in time."""
    out = []
    for k in range(n_chips):
        chip = AnalogChip(model, params, seed=seed + k)
        out.append([accuracy(chip.read(t, compensation, calib_x), test) for t in times])
    return out


time_values = st.one_of(st.floats(min_value=0, max_value=1e6), st.integers(0, 10 ** 6),
                        st.sampled_from([float("nan"), float("inf"), -1.0, 1e40, "1", True, None]))
valid_times = st.lists(st.floats(0, 1e6), min_size=1, max_size=3, unique=True).map(sorted)
time_grids = st.one_of(st.lists(time_values, max_size=4), anything,
                       st.lists(st.floats(0, 1e5), min_size=1, max_size=3).map(np.array))


def test_accuracy_vs_time_clear_error_or_the_protocols_result():
    calib = tiny_split(20, seed=1)

    def call(times, n_chips, seed, test_subset, batch_size, compensation, model, test, params, calibration_images):
        return accuracy_vs_time(model, test, times, n_chips=n_chips, compensation=compensation, seed=seed,
                                test_subset=test_subset, batch_size=batch_size, calibration_split=calib,
                                calibration_images=calibration_images, calibration_augmented=False,
                                progress=False, params=params)

    def valid(res, times, n_chips, seed, test_subset, batch_size, compensation, model, test, params,
              calibration_images):
        assert model is MODEL and test is TEST and params == PCMParams()
        assert compensation != "adabs" or calibration_images == 20
        # accepted: the arguments were valid, and the result is exactly the protocol's
        grid = [float(t) for t in times]
        assert res["times_s"] == grid and all(math.isfinite(t) and t >= 0 for t in grid)
        assert grid == sorted(set(grid)) and isinstance(n_chips, int) and n_chips >= 1
        test = TEST.subset(test_subset, seed=0) if test_subset else TEST
        calib_x = calibration_batch(calib, 20, seed=seed, augmented=False) if compensation == "adabs" else None
        assert res["per_chip"] == reference(MODEL, test, grid, n_chips, compensation, PCMParams(), seed, calib_x)
        assert res["meta"]["seeds"] == [seed + k for k in range(n_chips)]
        assert res["meta"]["test_images"] == len(test)

    clear_error_or_valid(
        call, valid, valid=dict(times=valid_times, n_chips=st.integers(1, 2), seed=st.integers(0, 5),
                                test_subset=st.integers(0, 20), batch_size=st.integers(1, 30),
                                compensation=st.sampled_from(["none", "gdc", "adabs"]), model=st.just(MODEL),
                                test=st.just(TEST), params=st.just(PCMParams()), calibration_images=st.just(20)),
        times=time_grids, n_chips=st.one_of(st.integers(-1, 3), anything),
        seed=st.one_of(st.integers(-2, 5), st.just(2 ** 63), anything),
        test_subset=st.one_of(st.integers(-1, 25), anything), batch_size=st.one_of(st.integers(-1, 30), anything),
        compensation=st.sampled_from(["none", "gdc", "adabs", "GDC", 3]),
        model=st.sampled_from([MODEL, MODEL, MODEL, None, "resnet32", nn.Sequential(nn.ReLU())]),
        test=st.sampled_from([TEST, TEST, TEST, None, (TEST.x, TEST.y)]),
        params=st.sampled_from([PCMParams(), PCMParams(), None, {"drift_scale": 1.0}]),
        calibration_images=st.sampled_from([20, 20, 0, 21, 2.0]))


@FAST
@given(times=valid_times, n_chips=st.integers(1, 2), seed=st.integers(0, 2 ** 40), test_subset=st.integers(0, 20),
       batch_size=st.integers(1, 30), compensation=st.sampled_from(["none", "gdc", "adabs"]),
       drift_scale=st.floats(0, 3), prog_noise_scale=st.floats(0, 2))
def test_accuracy_vs_time_valid_arguments_give_the_protocols_result(times, n_chips, seed, test_subset, batch_size,
                                                                    compensation, drift_scale, prog_noise_scale):
    params = PCMParams(drift_scale=drift_scale, prog_noise_scale=prog_noise_scale)
    calib = tiny_split(20, seed=1)
    res = accuracy_vs_time(MODEL, TEST, times, n_chips=n_chips, compensation=compensation, seed=seed, params=params,
                           test_subset=test_subset, batch_size=batch_size, calibration_split=calib,
                           calibration_images=20, calibration_augmented=False, progress=False)
    test = TEST.subset(test_subset, seed=0) if test_subset else TEST
    calib_x = calibration_batch(calib, 20, seed=seed, augmented=False) if compensation == "adabs" else None
    assert res["per_chip"] == reference(MODEL, test, times, n_chips, compensation, params, seed, calib_x)
    assert all(100 * round(a * len(test) / 100) / len(test) == a for row in res["per_chip"] for a in row)


# ---------------------------------------------------------------- the run descriptions themselves

def test_drift_run_checks_normalises_and_is_frozen():
    run = DriftRun(times_s=np.array([1.0, 60.0]), n_chips=np.int64(3), seed=torch.tensor(4),
                   fp32_accuracy=np.float32(91.5))
    assert run.times_s == (1.0, 60.0) and type(run.n_chips) is int and type(run.seed) is int
    assert run.seeds == [4, 5, 6] and type(run.fp32_accuracy) is float
    assert run.periphery == Periphery.ideal() and run == DriftRun((1.0, 60.0), 3, seed=4, fp32_accuracy=91.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.n_chips = 4
    for kw, match in [(dict(n_chips=0), "n_chips"), (dict(times_s=[2.0, 1.0]), "strictly increasing"),
                      (dict(compensation="GDC"), "unknown compensation"), (dict(params={}), "PCMParams"),
                      (dict(periphery="aihwkit"), "periphery must be"), (dict(fp32_accuracy=101.0), "fp32_accuracy"),
                      (dict(calibration_images=0), "calibration_images"), (dict(compile=1), "compile"),
                      (dict(model_name=3), "model_name"), (dict(seed=2 ** 63 - 1, n_chips=2), "seed")]:
        with pytest.raises(ValueError, match=match):
            DriftRun(**kw)


def test_weight_noise_run_checks_and_normalises():
    run = WeightNoiseRun(np.array([0.0, 0.02]), n_repeats=np.int64(2))
    assert run.etas == (0.0, 0.02) and type(run.n_repeats) is int


#: The committed accuracy-vs-time results (the other study files hold weight-noise sweeps and tables).
DRIFT_RESULTS = [p for p in sorted(glob.glob(str(RESULTS / "**" / "*.json"), recursive=True))
                 if "per_chip" in json.loads(Path(p).read_text())]


def test_the_committed_drift_results_are_found():
    assert len(DRIFT_RESULTS) >= 20 and any(p.endswith("resnet32-custom_adabs.json") for p in DRIFT_RESULTS)


@pytest.mark.parametrize("path", DRIFT_RESULTS, ids=lambda p: Path(p).relative_to(RESULTS).as_posix())
def test_committed_results_read_back_as_the_run_that_wrote_them(path):
    """Every committed accuracy-vs-time result (also those written before DriftRun) is a DriftRun's
    meta: read back, the run describes it with the same values."""
    res = load_results(path)
    run = DriftRun.from_meta(res)
    meta = res["meta"]
    for key, value in run.meta().items():
        if key == "periphery" and "periphery" not in meta:
            assert run.periphery == Periphery.ideal()
        elif key == "periphery":  # results made before a field was added (gdc_reads) lack it: its default
            assert Periphery(**meta["periphery"]) == run.periphery
        else:
            assert meta.get(key) == value, key
    assert list(run.times_s) == res["times_s"] and run.n_chips == len(res["per_chip"])


def test_the_result_meta_is_the_run_description():
    run = DriftRun(times_s=(1.0, 3600.0), n_chips=2, compensation="gdc", seed=3, model_name="tiny",
                   periphery=Periphery(out_noise=0.01))
    res = accuracy_vs_time(MODEL, TEST, run.times_s, n_chips=2, seed=3, model_name="tiny",
                           periphery=Periphery(out_noise=0.01), progress=False)
    assert {k: res["meta"][k] for k in run.meta()} == run.meta()
    assert DriftRun.from_meta(res) == dataclasses.replace(run, test_subset=len(TEST), fp32_accuracy=res["meta"]["fp32_accuracy"],
                                                          backend=res["meta"]["periphery_backend"])
    old = copy.deepcopy(res)
    del old["meta"]["stream"]  # a result of aimc_lib 0.1.0, made before the counter-based stream
    with pytest.raises(ValueError, match="before the counter-based stream"):
        DriftRun.from_meta(old)
    with pytest.raises(ValueError, match="unknown random stream 'torch-cpu'"):
        DriftRun.from_meta(copy.deepcopy(res) | {"meta": res["meta"] | {"stream": "torch-cpu"}})


# ---------------------------------------------------------------- weight noise

@pytest.mark.parametrize("kw, match", [
    (dict(etas=[0.0, 1.0]), r"every eta .* \[0, 1\)"),
    (dict(etas=[float("nan")]), "every eta"),
    (dict(etas=[]), "etas is empty"),
    (dict(etas="0.02"), "etas must be a list"),
    (dict(n_repeats=0), "n_repeats"),
    (dict(seed=-1), "seed"),
    (dict(test_subset=10 ** 6), "test_subset"),
    (dict(batch_size=0), "batch_size"),
])
def test_weight_noise_sweep_refuses_bad_arguments_by_name(kw, match):
    args = {**dict(etas=[0.0, 0.02], n_repeats=2, seed=0, test_subset=0, batch_size=100), **kw}
    with pytest.raises(ArgumentError, match=match):
        accuracy_under_weight_noise(MODEL, TEST, **args)


def test_weight_noise_sweep_refuses_nan_weights_and_non_splits():
    bad = tiny_model()
    with torch.no_grad():
        next(bad.parameters())[0].fill_(float("nan"))
    with pytest.raises(ValueError, match="conv1.weight' holds NaN"):
        accuracy_under_weight_noise(bad, TEST, [0.02])
    with pytest.raises(ArgumentError, match="Split"):
        accuracy_under_weight_noise(MODEL, (TEST.x, TEST.y), [0.02])
