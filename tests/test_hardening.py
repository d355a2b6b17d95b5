"""Bad input gets a clear error, outputs are never lost (issue 10).

Library side: arguments checked at the boundary with one-line errors naming the argument, inputs
that would silently change accuracy caught (checksums, Split, NaN/Inf, calibration images), and
accuracy_vs_time resuming an interrupted run bit-identically. The command line's output rules
are tested in test_cli.py.
"""
import json
import math
import os
import tempfile
import traceback
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from torch import nn

from aimc_lib import checks, pcm, resume
from aimc_lib.checkpoints import CheckpointError, load_state, save_atomic, state_sha256
from aimc_lib.data import Split, calibration_batch
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.models import check_analog_model, check_finite, resnet
from aimc_lib.pcm import PCMParams, check_time
from aimc_lib.result_files import load_results, save_results
from aimc_lib.training import TrainConfig
from aimc_lib.checks import ArgumentError
from aimc_lib.zoo import load_model

# A few examples keep CI fast; AIMC_HYPOTHESIS_EXAMPLES=500 explores more. No example database,
# and Hypothesis's caches go to the temporary folder, not into the repository.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "aimc-hypothesis"))
FAST = settings(max_examples=int(os.environ.get("AIMC_HYPOTHESIS_EXAMPLES", "25")), deadline=None,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return resnet(8, (4, 4, 8)).eval()


def tiny_split(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                 torch.arange(n, dtype=torch.int64) % 10)


MODEL, TEST = tiny_model(), tiny_split()


def assert_clear_error(e: BaseException):
    """Raised by aimc_lib itself (not from inside torch/numpy), as one line."""
    frames = traceback.extract_tb(e.__traceback__)
    assert "aimc_lib" in frames[-1].filename.replace("\\", "/"), (
        f"{type(e).__name__} raised from {frames[-1].filename}: {e}")
    assert str(e) and "\n" not in str(e)


def reference(model, test, times, n_chips, compensation, params, seed, calib_x=None):
    """accuracy_vs_time's protocol written out: chip k (seed + k) read forward in time."""
    out = []
    for k in range(n_chips):
        chip = AnalogChip(model, params, seed=seed + k)
        out.append([accuracy(chip.read(t, compensation, calib_x), test) for t in times])
    return out


# ---------------------------------------------------------------- property-based: the public API

anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True),
                     st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
time_values = st.one_of(st.floats(min_value=0, max_value=1e6), st.integers(0, 10 ** 6),
                        st.sampled_from([float("nan"), float("inf"), -1.0, 1e40, "1", True, None]))
time_grids = st.one_of(st.lists(time_values, max_size=4), anything,
                       st.lists(st.floats(0, 1e5), min_size=1, max_size=3).map(np.array))


@FAST
@given(times=time_grids, n_chips=st.one_of(st.integers(-1, 3), anything),
       seed=st.one_of(st.integers(-2, 5), st.just(2 ** 63), anything),
       test_subset=st.one_of(st.integers(-1, 25), anything), batch_size=st.one_of(st.integers(-1, 30), anything),
       compensation=st.sampled_from(["none", "gdc", "adabs", "GDC", 3]),
       model=st.sampled_from([MODEL, MODEL, MODEL, None, "resnet32", nn.Sequential(nn.ReLU())]),
       test=st.sampled_from([TEST, TEST, TEST, None, (TEST.x, TEST.y)]),
       params=st.sampled_from([PCMParams(), PCMParams(), None, {"drift_scale": 1.0}]),
       calibration_images=st.sampled_from([20, 20, 0, 21, 2.0]))
def test_accuracy_vs_time_clear_error_or_correct_result(times, n_chips, seed, test_subset, batch_size, compensation,
                                                        model, test, params, calibration_images):
    calib = tiny_split(20, seed=1)
    try:
        res = accuracy_vs_time(model, test, times, n_chips=n_chips, compensation=compensation, seed=seed,
                               test_subset=test_subset, batch_size=batch_size, calibration_split=calib,
                               calibration_images=calibration_images, calibration_augmented=False,
                               progress=False, params=params)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
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


@FAST
@given(times=st.lists(st.floats(0, 1e9), min_size=1, max_size=3, unique=True).map(sorted),
       n_chips=st.integers(1, 2), seed=st.integers(0, 2 ** 40), test_subset=st.integers(0, 20),
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


@FAST
@given(kw=st.fixed_dictionaries({}, optional={
    "g_max_us": st.one_of(st.floats(allow_nan=True), anything), "t0_s": st.one_of(st.floats(), anything),
    "t_read_s": st.one_of(st.floats(), anything), "drift_scale": st.one_of(st.floats(), anything),
    "prog_noise_scale": st.one_of(st.floats(), anything), "noise_on_zero_target": anything}))
def test_pcm_params_clear_error_or_valid(kw):
    try:
        p = PCMParams(**kw)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
    assert p.t_read_s < p.t0_s and p.g_max_us > 0 and isinstance(p.noise_on_zero_target, bool)
    for f in ("g_max_us", "t0_s", "t_read_s", "prog_noise_scale", "drift_scale", "read_noise_scale"):
        v = getattr(p, f)
        assert not isinstance(v, (bool, str)) and math.isfinite(v) and v >= 0


@FAST
@given(t=st.one_of(time_values, anything))
def test_check_time_clear_error_or_number(t):
    try:
        v = check_time(t)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
    assert isinstance(v, float) and math.isfinite(v) and v >= 0 and not isinstance(t, (str, bool))


@FAST
@given(kw=st.fixed_dictionaries({}, optional={
    "depth": st.one_of(st.integers(-2, 40), anything), "epochs": st.one_of(st.integers(-1, 3), anything),
    "batch_size": st.one_of(st.integers(-1, 200), anything), "lr_max": st.one_of(st.floats(), anything),
    "weight_decay": st.one_of(st.floats(), anything), "label_smoothing": st.one_of(st.floats(), anything),
    "train_subset": st.one_of(st.integers(-1, 200), anything), "widths": st.one_of(
        st.lists(st.integers(-1, 8), max_size=4), anything), "eta_tr": st.one_of(st.floats(), anything)}))
def test_train_config_clear_error_or_valid(kw):
    try:
        cfg = TrainConfig(**kw)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
    assert cfg.batch_size <= (cfg.train_subset or 50_000) and (cfg.depth - 2) % 6 == 0
    assert math.isfinite(cfg.lr_max) and cfg.lr_max > 0 and 0 <= cfg.label_smoothing < 1
    assert math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0 and len(cfg.widths) == 3


@FAST
@given(n=st.one_of(st.integers(-1, 25), anything), seed=st.one_of(st.integers(-1, 2 ** 64), anything))
def test_subset_clear_error_or_balanced(n, seed):
    try:
        s = TEST.subset(n, seed=seed)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
    assert isinstance(n, int) and 1 <= n <= len(TEST) and len(s) == n
    assert s.x.dtype == torch.uint8 and set(s.y.tolist()) <= set(TEST.y.tolist())


@FAST
@given(n=st.integers(0, 4), c=st.sampled_from([1, 3]), xdtype=st.sampled_from([torch.uint8, torch.float32]),
       ydtype=st.sampled_from([torch.int64, torch.int32, torch.float32]), ny=st.integers(0, 4),
       label=st.integers(-1, 11))
def test_split_validated_on_construction(n, c, xdtype, ydtype, ny, label):
    x, y = torch.zeros(n, c, 32, 32, dtype=xdtype), torch.full((ny,), label).to(ydtype)
    try:
        s = Split(x, y)
    except (ValueError, TypeError) as e:
        assert_clear_error(e)
        return
    assert (n, c, xdtype, ydtype) == (ny, 3, torch.uint8, torch.int64) and n > 0 and 0 <= label <= 9
    assert len(s) == n


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=3),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                   max_size=3), max_leaves=8)


@FAST
@given(extra=st.dictionaries(st.sampled_from(["times_s", "mean", "std", "per_chip", "meta"]), json_values))
def test_load_results_names_the_file_or_gives_a_result(extra, tmp_path_factory):
    good = {"times_s": [1.0, 10.0], "mean": [50.0, 40.0], "std": [0.0, 1.0], "per_chip": [[50.0, 40.0]],
            "meta": {"n_chips": 1}}
    path = tmp_path_factory.mktemp("r") / "res.json"
    path.write_text(json.dumps({**good, **extra}))
    try:
        res = load_results(path)
    except ValueError as e:
        assert_clear_error(e)
        assert str(path) in str(e)
        return
    assert len(res["mean"]) == len(res["times_s"]) == len(res["per_chip"][0])


# ---------------------------------------------------------------- time grids and arguments

def test_time_grid_messages_name_the_argument():
    with pytest.raises(ArgumentError, match=r"times_s must hold at least one time"):
        pcm.time_grid([])
    with pytest.raises(ArgumentError, match=r"times_s\[1\].*finite"):
        pcm.time_grid([1.0, float("nan")])
    with pytest.raises(ArgumentError, match=r"times_s\[0\].*got '1'"):
        pcm.time_grid(["1"])
    with pytest.raises(ArgumentError, match="strictly increasing"):
        pcm.time_grid([1.0, 1.0])
    with pytest.raises(ArgumentError, match="list of times"):
        pcm.time_grid(3600.0)
    assert pcm.time_grid(np.array([0, 1.5])) == [0.0, 1.5]
    assert pcm.time_grid(torch.tensor([2.0, 3.0])) == [2.0, 3.0]


def test_float32_underflow_refused_or_warned():
    calibrated = PCMParams()
    with pytest.raises(ArgumentError, match="float32 range"):
        pcm.time_grid([1e40], calibrated)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pcm.time_grid([1e5, 365 * 86400.0], calibrated)  # the figure's range: no warning
    strong = PCMParams(drift_scale=100)
    with pytest.raises(ArgumentError, match="underflows to 0"):
        pcm.time_grid([1e30], strong)
    t_warn = pcm.underflow_time_s(strong.t0_s, strong.drift_scale, pcm.NU_MAX, 1.0)
    with pytest.warns(UserWarning, match="most-drifting devices"):
        pcm.time_grid([t_warn * 1.01], strong)
    # the refusal is right: a device of 1 uS with the mean exponent really reads 0 at that time
    from aimc_lib.pcm import drift
    t_all = pcm.underflow_time_s(strong.t0_s, strong.drift_scale, pcm.NU_MEAN_MAX, 1.0)
    g = drift(torch.tensor([1.0]), torch.tensor([pcm.NU_MEAN_MAX * 100]), t_all * 10, strong)
    assert float(g) < pcm.FLOAT32_TINY


def test_devices_and_threads(monkeypatch):
    assert checks.device("cpu") == torch.device("cpu")
    with pytest.raises(ArgumentError, match="unknown device 'gpu0'"):
        checks.device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArgumentError, match="CUDA is not available"):
        checks.device("cuda")
    import os
    with pytest.raises(ArgumentError, match=rf"threads must be an integer in 0..{os.cpu_count()}, got 10000"):
        checks.threads(10_000)
    assert checks.threads(1) == 1


def test_pcm_params_types_and_read_pulse():
    with pytest.raises(ArgumentError, match=r"PCMParams.t_read_s must be shorter than t0_s"):
        PCMParams(t_read_s=30.0)
    with pytest.raises(ArgumentError, match="PCMParams.drift_scale must be a number"):
        PCMParams(drift_scale="1")
    with pytest.raises(ArgumentError, match="noise_on_zero_target must be True or False"):
        PCMParams(noise_on_zero_target=1)


def test_train_config_errors_name_the_field():
    for kw, field in [(dict(lr_max=float("inf")), "lr_max"), (dict(weight_decay=-1e-4), "weight_decay"),
                      (dict(label_smoothing=1.0), "label_smoothing"), (dict(depth=33), "depth"),
                      (dict(train_subset=100, batch_size=128), "batch_size"), (dict(epochs=2.5), "epochs"),
                      (dict(widths=(16, 28)), "widths"), (dict(seed=-1), "seed")]:
        with pytest.raises(ArgumentError, match=f"TrainConfig.{field}"):
            TrainConfig(**kw)


# ---------------------------------------------------------------- inputs that change accuracy silently

def test_nan_in_batchnorm_statistics_refused_on_load_and_programming(tmp_path):
    m = tiny_model()
    m.bn1.running_var[0] = float("nan")
    with pytest.raises(ValueError, match="buffer 'bn1.running_var' holds NaN"):
        check_finite(m)
    with pytest.raises(ValueError, match="bn1.running_var"):
        AnalogChip(m)
    save_atomic({"model": m.state_dict(), "meta": {"config": {"depth": 8, "widths": [4, 4, 8]}}}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="bn1.running_var.*NaN"):
        load_model(str(tmp_path / "m.pt"))


def test_models_need_an_analog_layer_and_supported_layers():
    with pytest.raises(ValueError, match="no analog layer"):
        check_analog_model(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match=r"unsupported layer.*1 \(Conv1d\)"):
        check_analog_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv1d(4, 4, 1)))
    with pytest.raises(ValueError, match=r"emb \(Embedding\)"):
        AnalogChip(nn.ModuleDict({"fc": nn.Linear(2, 2), "emb": nn.Embedding(3, 2)}))
    check_analog_model(tiny_model())  # conv + BN + linear: fine


def test_checkpoint_weights_sha256(tmp_path):
    m = tiny_model()
    p = tmp_path / "m.pt"
    save_atomic({"model": m.state_dict(), "meta": {"config": {"depth": 8, "widths": [4, 4, 8]}}}, p)
    ck = load_state(p)
    assert ck["weights_sha256"] == state_sha256(m.state_dict())
    ck["model"]["fc.weight"][0, 0] += 1.0  # edited after saving, checksum kept
    torch.save(ck, p)
    with pytest.raises(CheckpointError, match="do not match their sha256"):
        load_state(p)
    # an older checkpoint without a checksum still loads (documented)
    torch.save({"model": m.state_dict(), "meta": {"config": {"depth": 8, "widths": [4, 4, 8]}}}, p)
    assert torch.equal(load_model(str(p)).fc.weight, m.fc.weight)
    with pytest.raises(CheckpointError, match="is a folder"):
        load_state(tmp_path)


def test_calibration_images_validated():
    chip = AnalogChip(MODEL, seed=0)
    m = tiny_model()
    good = torch.randn(16, 3, 32, 32)
    chip.read_into(m, 1.0, "adabs", good)
    for bad, msg in [(torch.zeros(0, 3, 32, 32), "holds no images"),
                     (torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8), "dtype torch.uint8"),
                     (torch.rand(16, 3, 32, 32) * 255, "raw 0..255 pixels"),
                     (torch.rand(16, 3, 32, 32), r"raw pixels in \[0, 1\]"),
                     (torch.full((16, 3, 32, 32), float("nan")), "NaN"),
                     (torch.randn(16, 32, 32), r"shape \[N, 3, H, W\]")]:
        with pytest.raises(ArgumentError, match=msg):
            chip.read_into(m, 1.0, "adabs", bad)


def test_label_checksums(tmp_path, data_path):
    from aimc_lib.data import DataError, load_cifar10
    with np.load(f"{data_path}/test_batch.npz") as d:
        x, y = d["x"], d["y"].copy()
    y[[0, 1]] = y[[1, 0]]  # two labels swapped: counts and range still fine
    assert y[0] != y[1]
    np.savez(tmp_path / "test_batch.npz", x=x, y=y)
    with pytest.raises(DataError, match="label checksum"):
        load_cifar10("test", tmp_path)


# ---------------------------------------------------------------- resume

def _interrupt_after(monkeypatch, n_chips_done):
    calls = {"n": 0}
    orig = resume.ChipLog.add

    def add(self, k, row, seconds=0.0):
        orig(self, k, row, seconds)
        calls["n"] += 1
        if calls["n"] == n_chips_done:
            raise KeyboardInterrupt
    monkeypatch.setattr(resume.ChipLog, "add", add)


@pytest.mark.parametrize("compensation", ["gdc", "adabs"])
def test_resume_after_interrupt_is_bit_identical(tmp_path, monkeypatch, compensation):
    kw = dict(times_s=[1.0, 3600.0, 1e5], n_chips=3, compensation=compensation, seed=5, progress=False,
              calibration_split=tiny_split(20, seed=2), calibration_images=20)
    whole = accuracy_vs_time(MODEL, TEST, **kw)
    out = tmp_path / "r.json"
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 2)
        with pytest.raises(KeyboardInterrupt):
            accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    saved = json.loads(resume.partial_path(out).read_text())
    assert len(saved["rows"]) == 2 and not out.exists()
    assert saved["rows"] == whole["per_chip"][:2]
    computed = []
    orig = AnalogChip.__init__

    def spy(self, model, params=PCMParams(), seed=0):
        computed.append(seed)
        orig(self, model, params, seed)
    monkeypatch.setattr(AnalogChip, "__init__", spy)
    res = accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    assert computed == [7]  # only the chip that was missing
    assert res["per_chip"] == whole["per_chip"] and res["mean"] == whole["mean"] and res["std"] == whole["std"]
    skip = ("wall_seconds", "date")
    assert {k: v for k, v in res["meta"].items() if k not in skip} == \
        {k: v for k, v in whole["meta"].items() if k not in skip}
    assert load_results(out) == res and not resume.partial_path(out).exists()


def test_resume_refuses_other_arguments(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    kw = dict(times_s=[1.0, 10.0], n_chips=2, seed=0, progress=False)
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 1)
        with pytest.raises(KeyboardInterrupt):
            accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    from aimc_lib.periphery import Periphery
    for change in (dict(seed=1), dict(times_s=[1.0, 20.0]), dict(compensation="none"),
                   dict(params=PCMParams(drift_scale=0.5)), dict(periphery=Periphery.aihwkit_like())):
        with pytest.raises(resume.ResumeError, match="different arguments"):
            accuracy_vs_time(MODEL, TEST, results_path=out, **{**kw, **change})
    with pytest.raises(resume.ResumeError, match="different arguments"):
        accuracy_vs_time(tiny_model(seed=1), TEST, results_path=out, **kw)
    with pytest.raises(resume.ResumeError, match="different arguments"):
        accuracy_vs_time(MODEL, tiny_split(seed=9), results_path=out, **kw)
    with pytest.raises(ArgumentError, match="periphery must be"):
        accuracy_vs_time(MODEL, TEST, results_path=out, periphery="aihwkit", **kw)
    resume.partial_path(out).write_text("{not json")
    with pytest.raises(resume.ResumeError, match="unreadable"):
        accuracy_vs_time(MODEL, TEST, results_path=out, **kw)


def test_results_path_checked_before_the_first_chip(tmp_path, monkeypatch):
    def no_chips(*a, **k):
        raise AssertionError("a chip was programmed before the results path was checked")
    monkeypatch.setattr(AnalogChip, "__init__", no_chips)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ArgumentError, match="results_path: .*afile is not a folder"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=afile / "r.json")
    with pytest.raises(ArgumentError, match="is a folder"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=tmp_path)
    with pytest.raises(ArgumentError, match="results_path must be a file path"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=3)
    monkeypatch.undo()
    out = tmp_path / "new" / "deeper" / "r.json"  # missing folders are created, as save_results does
    accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=out)
    assert load_results(out)["per_chip"]


def test_long_run_warning(monkeypatch):
    from aimc_lib import experiments
    monkeypatch.setattr(experiments, "estimate_seconds", lambda *a: 5 * 3600.0)
    with pytest.warns(UserWarning, match="about 5.0 hours"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False)


def test_saved_results_round_trip_with_structure_check(tmp_path):
    res = accuracy_vs_time(MODEL, TEST, [1.0, 2.0], n_chips=2, progress=False)
    save_results(res, tmp_path / "a.json")
    assert load_results(tmp_path / "a.json") == res
    bad = dict(res, per_chip=[[1.0], [2.0]])
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"b.json: 'per_chip' must be a list of rows of 2 numbers"):
        load_results(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="c.json is not a JSON result file"):
        load_results(tmp_path / "c.json")


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
    from aimc_lib.experiments import accuracy_under_weight_noise
    args = {**dict(etas=[0.0, 0.02], n_repeats=2, seed=0, test_subset=0, batch_size=100), **kw}
    with pytest.raises(ArgumentError, match=match):
        accuracy_under_weight_noise(MODEL, TEST, **args)


def test_weight_noise_sweep_refuses_nan_weights_and_non_splits():
    from aimc_lib.experiments import accuracy_under_weight_noise
    bad = tiny_model()
    with torch.no_grad():
        next(bad.parameters())[0].fill_(float("nan"))
    with pytest.raises(ValueError, match="conv1.weight' holds NaN"):
        accuracy_under_weight_noise(bad, TEST, [0.02])
    with pytest.raises(ArgumentError, match="Split"):
        accuracy_under_weight_noise(MODEL, (TEST.x, TEST.y), [0.02])
