"""The bottom layer of argument checks: numbers by value, integers, seeds, devices, threads, output files."""
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from aimc_lib.checks import ArgumentError, device, integer, number, output_file, seed, threads
from clear_errors import anything, clear_error_or_valid


def test_numbers_are_taken_by_value_in_their_range():
    def valid(x, v):
        assert type(x) is float and math.isfinite(x) and 0 <= x < 1 and x == float(v)

    values = st.one_of(st.floats(0, 1, exclude_max=True), st.floats(width=32, allow_nan=True).map(np.float32),
                       st.floats(-2, 2).map(torch.tensor), st.floats(-2, 2).map(lambda f: torch.tensor([f, f])),
                       anything)
    clear_error_or_valid(lambda v: number("eta", v, 0.0, 1.0, high_open=True), valid, v=values)


def test_integers_are_taken_by_value_and_bools_refused():
    def valid(i, v):
        assert type(i) is int and 1 <= i <= 5 and not isinstance(v, (bool, float))

    values = st.one_of(st.integers(0, 6), st.integers(0, 6).map(np.int64), st.integers(0, 6).map(torch.tensor),
                       st.floats(0, 6), anything)
    clear_error_or_valid(lambda v: integer("n_chips", v, 1, 5), valid, v=values)


def test_seed_leaves_room_for_consecutive_chips():
    assert seed(2 ** 63 - 10, n=10) == 2 ** 63 - 10
    with pytest.raises(ArgumentError, match="seed must be an integer in 0..9223372036854775798"):
        seed(2 ** 63 - 9, n=10)


def test_output_file_never_an_input(tmp_path):
    model = tmp_path / "model.pt"
    model.write_text("x")
    with pytest.raises(ArgumentError, match="is also an input"):
        output_file(model, inputs=[model], force=True)
    with pytest.raises(ArgumentError, match="exists; pass --force"):
        output_file(model)
    assert output_file(tmp_path / "new.json", inputs=[model]) == tmp_path / "new.json"


def test_devices_and_threads(monkeypatch):
    assert device("cpu") == torch.device("cpu")
    with pytest.raises(ArgumentError, match="unknown device 'gpu0'"):
        device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ArgumentError, match="CUDA is not available"):
        device("cuda")
    with pytest.raises(ArgumentError, match=rf"threads must be an integer in 0..{os.cpu_count()}, got 10000"):
        threads(10_000)
    assert threads(1) == 1
