"""The one counter-based stream (aimc_lib.rng): Philox4x32-10 as Random123 defines it, and its normals."""
import math

import pytest
import torch
from scipy import stats

from aimc_lib import rng


def _words(*values):
    return tuple(torch.tensor([v], dtype=torch.int64) for v in values)


@pytest.mark.parametrize("counter, key, expected", [
    # Random123's known-answer vectors (kat_vectors, philox4x32 10 rounds)
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(counter, key, expected):
    out = rng.philox4x32(*_words(*counter), key[0] | key[1] << 32)
    assert tuple(int(o) for o in out) == expected


def test_a_draw_is_named_by_its_counter_not_by_the_draws_before():
    whole = rng.normal(7, rng.stream(rng.OUTPUT_NOISE, layer=3, read=2), rows=6, cols=50)
    part = rng.normal(7, rng.stream(rng.OUTPUT_NOISE, layer=3, read=2), rows=2, cols=50, row0=3)
    assert torch.equal(part, whole[3:5])
    narrow = rng.normal(7, rng.stream(rng.OUTPUT_NOISE, layer=3, read=2), rows=6, cols=13)
    assert torch.equal(narrow, whole[:, :13])
    other = rng.normal(7, rng.stream(rng.OUTPUT_NOISE, layer=4, read=2), rows=6, cols=50)
    assert not torch.equal(other, whole)
    assert not torch.equal(rng.normal(8, rng.stream(rng.OUTPUT_NOISE, layer=3, read=2), 6, 50), whole)


def test_normals_are_standard_normal():
    z = rng.normal(0, rng.stream(rng.PROGRAMMING), rows=200, cols=5000).flatten().double()
    assert abs(float(z.mean())) < 4 / math.sqrt(z.numel())
    assert abs(float(z.std()) - 1) < 0.003
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 1e-3
    # the four lanes are each standard normal and uncorrelated with each other
    lanes = z.view(-1, 4)
    assert torch.allclose(lanes.std(0), torch.ones(4, dtype=torch.float64), atol=0.01)
    c = torch.corrcoef(lanes.T)
    assert (c - torch.eye(4, dtype=torch.float64)).abs().max() < 0.01


def test_normals_from_bits_are_box_muller_in_float32():
    x = rng.uint32_blocks(5, (1, 2), rows=1, blocks=3)[0]
    z = rng.normal(5, (1, 2), rows=1, cols=12)[0]
    for b in range(3):
        x0, x1, x2, x3 = (int(v) for v in x[b])
        for lane, (a, c, fn) in enumerate(((x0, x1, math.cos), (x0, x1, math.sin), (x2, x3, math.cos),
                                           (x2, x3, math.sin))):
            u1, u2 = ((a >> 8) + 1) * 2.0 ** -24, (c >> 8) * 2.0 ** -24
            assert float(z[4 * b + lane]) == pytest.approx(math.sqrt(-2 * math.log(u1)) * fn(2 * math.pi * u2),
                                                           rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("bad", [-1, 2 ** 64, 1.5, True, "3", None])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="seed"):
        rng.normal(bad, (0, 0), 1, 4)


def test_numpy_and_tensor_seeds_are_taken_by_value():
    import numpy as np
    ref = rng.normal(3, (0, 0), 1, 8)
    assert torch.equal(rng.normal(np.int64(3), (0, 0), 1, 8), ref)
    assert torch.equal(rng.normal(torch.tensor(3), (0, 0), 1, 8), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_stream_is_the_same_on_a_gpu():
    cpu = rng.uint32_blocks(11, (4, 5), rows=7, blocks=100)
    gpu = rng.uint32_blocks(11, (4, 5), rows=7, blocks=100, device="cuda")
    assert torch.equal(cpu, gpu.cpu())
    assert (rng.normal(11, (4, 5), 7, 400) - rng.normal(11, (4, 5), 7, 400, device="cuda").cpu()).abs().max() < 1e-6
