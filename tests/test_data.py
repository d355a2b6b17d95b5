import numpy as np
import pytest
import torch

from aimc_lib.data import DataError, augment, load_cifar10, load_split, normalize, save_split


def test_full_cifar10_counts(cifar_train, cifar_test):
    assert cifar_train.x.shape == (50_000, 3, 32, 32) and cifar_train.x.dtype == torch.uint8
    assert cifar_test.x.shape == (10_000, 3, 32, 32)
    assert torch.bincount(cifar_train.y).tolist() == [5000] * 10
    assert torch.bincount(cifar_test.y).tolist() == [1000] * 10
    assert cifar_test.y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # official test order


def test_normalized_statistics(cifar_train):
    x = normalize(cifar_train.x[:10_000])
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert x.mean((0, 2, 3)).abs().max().item() < 0.02
    assert x.std((0, 2, 3)).sub(1).abs().max().item() < 0.02


def test_subset_is_class_balanced(cifar_test):
    s = cifar_test.subset(500, seed=1)
    assert len(s) == 500 and torch.bincount(s.y).tolist() == [50] * 10


def test_augment_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(2, 3, 32, 32)
    x = x.repeat(200, 1, 1, 1)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    same = (out == x).flatten(1).all(1).float().mean().item()
    assert 0 < same < 0.1  # 1 in 162 keeps offset (4,4) unflipped
    flipped_exact = (out == x.flip(-1)).flatten(1).all(1).float().mean().item()
    assert 0 < flipped_exact < 0.1


def test_missing_data_gives_clear_error(tmp_path):
    with pytest.raises(DataError, match="AIMC_DATA"):
        load_cifar10("test", tmp_path)


def test_corrupted_or_truncated_file(tmp_path, data_path):
    src = f"{data_path}/test_batch.npz"
    raw = open(src, "rb").read()
    (tmp_path / "test_batch.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="corrupted or truncated"):
        load_cifar10("test", tmp_path)
    # valid archive, wrong pixels: checksum catches it
    with np.load(src) as d:
        x, y = d["x"].copy(), d["y"]
    x[0, 0, 0, 0] ^= 1
    np.savez(tmp_path / "test_batch.npz", x=x, y=y)
    with pytest.raises(DataError, match="checksum"):
        load_cifar10("test", tmp_path)
    np.savez(tmp_path / "test_batch.npz", x=x[:9000], y=y[:9000])
    with pytest.raises(DataError, match="expected uint8 images"):
        load_cifar10("test", tmp_path)


def test_bad_split_name():
    with pytest.raises(ValueError, match="split"):
        load_cifar10("validation")


def test_saved_split_round_trip_and_bad_files(tmp_path, cifar_test):
    sub = cifar_test.subset(200, seed=3)
    save_split(sub, tmp_path / "cal.npz")
    back = load_split(tmp_path / "cal.npz")
    assert torch.equal(back.x, sub.x) and torch.equal(back.y, sub.y)
    assert back.x.dtype == torch.uint8 and back.y.dtype == torch.int64
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable split"):
        load_split(tmp_path / "junk.npz")
    np.savez(tmp_path / "hwc.npz", x=np.zeros((4, 32, 32, 3), np.uint8), y=np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"uint8 x \[N, 3, 32, 32\]"):
        load_split(tmp_path / "hwc.npz")


def test_calibration_batch(cifar_train):
    from aimc_lib.data import calibration_batch
    a = calibration_batch(cifar_train, 200, seed=0)
    assert a.shape == (200, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, calibration_batch(cifar_train, 200, seed=0))        # seeded
    raw = calibration_batch(cifar_train, 200, seed=0, augmented=False)
    assert not torch.equal(a, raw)                                             # cropped / flipped
    sub = cifar_train.subset(200, seed=0)
    assert torch.equal(raw, normalize(sub.x))                                  # the same images
    assert torch.equal(calibration_batch(sub, 200, augmented=False), raw)      # a split of size n: as it is
