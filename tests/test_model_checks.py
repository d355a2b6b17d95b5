"""Models that would evaluate silently wrong are refused: NaN statistics, unsupported layers, edited weights."""
import pytest
import torch
from torch import nn

from aimc_lib.checkpoints import CheckpointError, load_state, save_atomic, state_sha256
from aimc_lib.mapping import AnalogChip
from aimc_lib.models import check_analog_model, check_finite
from aimc_lib.zoo import load_model
from clear_errors import tiny_model


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
