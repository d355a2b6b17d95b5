"""Issue 25, class 5: a model's state is validated once, on entry (dtype, device, finite, BatchNorm
variance, 3-channel input), images by shape, and a checkpoint beyond its run's epochs is refused."""
import dataclasses

import pytest
import torch

from aimc_lib.checkpoints import CheckpointError, load_into, save_atomic
from aimc_lib.data import Split
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.models import check_model_state
from aimc_lib.training import TrainConfig, build_model, make_optimizer, train
from clear_errors import assert_clear_error, tiny_model, tiny_split


def _negative_bn():
    m = tiny_model()
    m.bn1.running_var[0] = -1.0
    return m


@pytest.mark.parametrize("make,match", [
    (lambda: tiny_model().half(), "is torch.float16; the simulation runs in float32"),
    (lambda: tiny_model().to(torch.bfloat16), "is torch.bfloat16"),
    (lambda: tiny_model().double(), "is torch.float64"),
    (lambda: tiny_model().to("meta"), "meta device"),
    (_negative_bn, "BatchNorm 'bn1' has running variance -1 <= 0"),
])
def test_invalid_model_states_are_refused_on_entry(make, match):
    for call in (lambda m: AnalogChip(m), lambda m: accuracy_vs_time(m, tiny_split(), [1.0], n_chips=1,
                                                                        progress=False)):
        with pytest.raises(ValueError, match=match) as e:
            call(make())
        assert_clear_error(e.value)
    check_model_state(tiny_model())  # the valid state passes


def test_a_checkpoint_with_integer_weights_is_refused():
    state = {k: (v.round().to(torch.int64) if k == "conv1.weight" else v) for k, v in tiny_model().state_dict().items()}
    with pytest.raises(CheckpointError, match="'conv1.weight' holds torch.int64 values; the network's 'conv1.weight' "
                                              "is torch.float32"):
        load_into(tiny_model(), state, "m.pt")
    bn = dict(tiny_model().state_dict(), **{"bn1.running_var": -torch.ones(4)})
    with pytest.raises(CheckpointError, match="m.pt: .*running variance"):
        load_into(tiny_model(), bn, "m.pt")


def test_images_of_another_size_are_refused():
    with pytest.raises(ValueError, match=r"Split.x must be uint8 CIFAR-10 images \[N, 3, 32, 32\]"):
        Split(torch.zeros(4, 3, 64, 64, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))
    assert len(tiny_split(4)) == 4


def test_a_checkpoint_beyond_the_configs_epochs_is_refused(tmp_path):
    cfg = TrainConfig(depth=8, widths=(4, 4, 8), epochs=2, batch_size=10, train_subset=20, test_subset=10)
    model = build_model(cfg)
    run = tmp_path / "run"
    run.mkdir()
    save_atomic({"model": model.state_dict(), "optimizer": make_optimizer(model, cfg).state_dict(), "epoch": 99,
                 "config": dataclasses.asdict(cfg), "log": [{}] * 99}, run / "checkpoint.pt")
    with pytest.raises(ValueError, match="is at epoch 99 .* but this run has 2 epochs"):
        train(cfg, tiny_split(20), tiny_split(10), run, progress=False)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]
