"""The data refuse what would change accuracy silently: bad splits and subsets, swapped labels, and
calibration images that are not normalized images."""
import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from aimc_lib.checks import ArgumentError
from aimc_lib.data import Split
from aimc_lib.mapping import AnalogChip
from clear_errors import anything, clear_error_or_valid, tiny_model, tiny_split

MODEL, TEST = tiny_model(), tiny_split()


def test_subset_clear_error_or_balanced():
    def valid(s, n, seed):
        assert isinstance(n, int) and 1 <= n <= len(TEST) and len(s) == n
        assert s.x.dtype == torch.uint8 and set(s.y.tolist()) <= set(TEST.y.tolist())

    clear_error_or_valid(lambda n, seed: TEST.subset(n, seed=seed), valid,
                         valid=dict(n=st.integers(1, len(TEST)), seed=st.integers(0, 2 ** 63 - 1)),
                         n=st.one_of(st.integers(-1, 25), anything), seed=st.one_of(st.integers(-1, 2 ** 64), anything))


def test_split_validated_on_construction():
    def make(n, c, xdtype, ydtype, ny, label):
        return Split(torch.zeros(n, c, 32, 32, dtype=xdtype), torch.full((ny,), label).to(ydtype))

    def valid(s, n, c, xdtype, ydtype, ny, label):
        assert (n, c, xdtype, ydtype) == (ny, 3, torch.uint8, torch.int64) and n > 0 and 0 <= label <= 9
        assert len(s) == n

    clear_error_or_valid(make, valid, valid=dict(n=st.just(3), ny=st.just(3), c=st.just(3), xdtype=st.just(torch.uint8),
                                                 ydtype=st.just(torch.int64), label=st.integers(0, 9)),
                         n=st.integers(0, 4), c=st.sampled_from([1, 3]), xdtype=st.sampled_from([torch.uint8, torch.float32]),
                         ydtype=st.sampled_from([torch.int64, torch.int32, torch.float32]), ny=st.integers(0, 4),
                         label=st.integers(-1, 11))


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
                     (torch.randn(16, 32, 32), r"shape \[N, 3, 32, 32\]"),
                     (torch.randn(16, 3, 64, 64), r"shape \[N, 3, 32, 32\]")]:
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
