"""A training run's description: TrainConfig refuses bad fields by name and decides, alone, whether two
configs are the same run (the command line and the training loop both ask it)."""
import math

import pytest
from hypothesis import strategies as st

from aimc_lib.checks import ArgumentError
from aimc_lib.training import TrainConfig, custom_config
from clear_errors import anything, clear_error_or_valid


def test_train_config_clear_error_or_valid():
    def valid(cfg, kw):
        assert cfg.batch_size <= (cfg.train_subset or 50_000) and (cfg.depth - 2) % 6 == 0
        assert math.isfinite(cfg.lr_max) and cfg.lr_max > 0 and 0 <= cfg.label_smoothing < 1
        assert math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0 and len(cfg.widths) == 3

    clear_error_or_valid(lambda kw: TrainConfig(**kw), valid, kw=st.fixed_dictionaries({}, optional={
        "depth": st.one_of(st.integers(-2, 40), anything), "epochs": st.one_of(st.integers(-1, 3), anything),
        "batch_size": st.one_of(st.integers(-1, 200), anything), "lr_max": st.one_of(st.floats(), anything),
        "weight_decay": st.one_of(st.floats(), anything), "label_smoothing": st.one_of(st.floats(), anything),
        "train_subset": st.one_of(st.integers(-1, 200), anything), "widths": st.one_of(
            st.lists(st.integers(-1, 8), max_size=4), anything), "eta_tr": st.one_of(st.floats(), anything)}))


def test_train_config_errors_name_the_field():
    for kw, field in [(dict(lr_max=float("inf")), "lr_max"), (dict(weight_decay=-1e-4), "weight_decay"),
                      (dict(label_smoothing=1.0), "label_smoothing"), (dict(depth=33), "depth"),
                      (dict(train_subset=100, batch_size=128), "batch_size"), (dict(epochs=2.5), "epochs"),
                      (dict(widths=(16, 28)), "widths"), (dict(seed=-1), "seed")]:
        with pytest.raises(ArgumentError, match=f"TrainConfig.{field}"):
            TrainConfig(**kw)


def test_same_run_ignores_only_where_it_computes():
    cfg = custom_config(init_from="a.pt")
    assert cfg.same_run(custom_config(init_from="a.pt", threads=2, device="cuda"))
    other = custom_config(init_from="a.pt", epochs=16, seed=2)
    assert not cfg.same_run(other)
    assert cfg.differences(other) == {"epochs": (15, 16), "seed": (1, 2)}
