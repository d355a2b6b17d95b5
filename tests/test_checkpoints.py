import pytest
import torch

from aimc_lib.checkpoints import CheckpointError, load_into, load_state, save_atomic
from aimc_lib.models import resnet, resnet32
from aimc_lib.zoo import load_model


def test_roundtrip(tmp_path):
    m = resnet32()
    save_atomic({"model": m.state_dict(), "meta": {"config": {"depth": 32, "widths": [16, 28, 56]}}},
                tmp_path / "m.pt")
    loaded = load_model(str(tmp_path / "m.pt"))
    for (k, v), (_, w) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(v, w), k


def test_corrupted_checkpoint(tmp_path):
    p = tmp_path / "bad.pt"
    save_atomic({"model": resnet32().state_dict()}, p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_state(p)
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_state(p)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="neither a pretrained model"):
        load_model(str(tmp_path / "nope.pt"))


def test_wrong_architecture(tmp_path):
    p = tmp_path / "r20.pt"
    save_atomic({"model": resnet(20).state_dict()}, p)
    with pytest.raises(CheckpointError, match="does not fit this network architecture"):
        load_into(resnet32(), load_state(p)["model"], str(p))


class Evil:
    """Any pickled class that is not a tensor container: weights_only loading must refuse it."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, p)
    with pytest.raises(CheckpointError):
        load_state(p)
