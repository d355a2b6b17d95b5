"""Issue 25, classes 3-4: numbers are taken by value with an upper bound, and what leaves a chip, a
training epoch or a run is finite, or an error naming where it came from."""
import json

import numpy as np
import pytest
import torch

from aimc_lib import pcm
from aimc_lib.checks import ArgumentError
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.pcm import PCMParams
from aimc_lib.training import TrainConfig, train
from clear_errors import tiny_model, tiny_split


@pytest.mark.parametrize("value", [np.float32(2.5), np.float64(2.5), torch.tensor(2.5), torch.tensor([2.5]),
                                   np.int64(2), 2])
def test_pcm_params_take_numbers_by_value(value):
    p = PCMParams(drift_scale=value, prog_noise_scale=value, g_max_us=value * 10, t0_s=value * 10)
    for name in ("drift_scale", "prog_noise_scale", "g_max_us", "t0_s"):
        assert type(getattr(p, name)) is float
    assert p.drift_scale == 2.5 or p.drift_scale == 2.0
    json.dumps(p.to_dict())  # a result's meta: no numpy or tensor type reaches the JSON


@pytest.mark.parametrize("field,value", [("g_max_us", 1e38), ("g_max_us", 1e-30), ("prog_noise_scale", 1e40),
                                         ("read_noise_scale", 11.0), ("drift_scale", 1e3), ("t0_s", 1e300),
                                         ("t_read_s", 1e-45), ("g_max_us", np.float32("inf"))])
def test_pcm_params_refuse_absurd_magnitudes(field, value):
    with pytest.raises(ArgumentError, match=f"PCMParams.{field} must be a finite number in \\["):
        PCMParams(**{field: value})


def test_numpy_and_tensor_arguments_reach_the_saved_and_resumed_result_as_python_numbers(tmp_path):
    out = tmp_path / "r.json"
    kw = dict(times_s=np.array([1.0, 10.0], dtype=np.float32), n_chips=np.int64(2), seed=torch.tensor(3),
              params=PCMParams(drift_scale=np.float32(1.5)), test_subset=np.int64(10), batch_size=np.int32(5),
              fp32_accuracy=np.float64(50.0), progress=False)
    res = accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    assert json.loads(out.read_text()) == res and res["meta"]["seeds"] == [3, 4]
    # the partial file of an interrupted run resumes with the same numpy arguments
    out.unlink()
    again = accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    assert again["per_chip"] == res["per_chip"]


@pytest.mark.parametrize("t", [1e300, 1e40, float("inf"), -1.0, np.float64(1e300)])
def test_every_read_has_the_float32_time_check(t):
    p = PCMParams()
    g, nu = torch.full((4,), 10.0), torch.full((4,), 0.05)
    for call in (lambda: pcm.drift(g, nu, t, p), lambda: pcm.read(g, nu, t, p, torch.Generator()),
                 lambda: AnalogChip(tiny_model(), p, seed=1).read(t),
                 lambda: AnalogChip(tiny_model(), p, seed=1).weights_at(t)):
        with pytest.raises(ArgumentError, match="time since programming|float32"):
            call()
    assert torch.isfinite(pcm.read(g, nu, 1e7, p, torch.Generator().manual_seed(0))).all()  # a valid time reads


def test_a_chip_that_reads_nan_weights_is_an_error_naming_the_chip_and_layer():
    chip = AnalogChip(tiny_model(), PCMParams(), seed=7)
    name = next(iter(chip.layers))
    chip.layers[name].g_plus_us[0] = float("nan")  # a corrupted device state
    with pytest.raises(ValueError, match=f"chip 7 read at 10 s: layer '{name}' holds NaN or Inf weights"):
        chip.read(10.0)
    with pytest.raises(ValueError, match="NaN or Inf weights"):
        chip.read_into(tiny_model(), 10.0, "none")


def test_chip_refuses_params_that_are_not_pcm_params():
    with pytest.raises(ArgumentError, match="params must be an aimc_lib.pcm.PCMParams"):
        AnalogChip(tiny_model(), {"g_max_us": 25.0})


def test_a_diverging_training_run_writes_no_nan_model(tmp_path, cifar_train, cifar_test):
    cfg = TrainConfig(depth=8, widths=(4, 4, 8), epochs=1, batch_size=64, lr_max=1e30, train_subset=128,
                      test_subset=100, seed=0)
    with pytest.raises(ValueError, match="training diverged in epoch 1: train loss .*Lower the learning rate"):
        train(cfg, cifar_train, cifar_test, tmp_path / "run", progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []  # no checkpoint, log or model.pt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # and no lock file left
