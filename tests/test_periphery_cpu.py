"""The periphery's compiled CPU functions against the PyTorch path and against their own statistics."""
import math
import os

import pytest
import torch
from scipy import stats

from aimc_lib import periphery as P
from aimc_lib import periphery_cpu
from aimc_lib.periphery import Periphery, analog_conv2d, analog_matmul


@pytest.fixture(scope="module")
def lib():
    lib = periphery_cpu.lib()
    if lib is None:  # CI must have a C compiler: the fast path is the one users get
        msg = "the periphery's C functions did not build (no C compiler?)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return lib


@pytest.fixture
def torch_path(monkeypatch):
    """Within a test: the PyTorch path, as on a machine without a C compiler."""
    monkeypatch.setattr(periphery_cpu, "_lib", None)
    monkeypatch.setattr(periphery_cpu, "_tried", True)
    assert periphery_cpu.lib() is None


def _conv_case(c=8, cout=16, stride=1, n=3, hw=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(c, cout, 3, stride, 1, bias=False)
    x = torch.randn(n, c, hw, hw, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, c, 3, 3, generator=g) * 0.2
    return conv, x, w


NOISELESS = [Periphery(inp_bits=8, out_bits=8, out_bound=10.0), Periphery(inp_bits=6, inp_bound=0.5, out_bound=3.0),
             Periphery(inp_bits=8), Periphery(out_bits=6, out_bound=2.0), Periphery(inp_bits=5, noise_management="none")]


@pytest.mark.parametrize("per", NOISELESS, ids=["adc", "clip-small-dac-range", "dac-only", "adc-only", "fixed-range"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_is_bit_identical_to_the_pytorch_path_without_noise(lib, per, stride, monkeypatch):
    conv, x, w = _conv_case(stride=stride)
    fast = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    monkeypatch.setattr(P, "COMPILED", False)
    slow = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    assert torch.equal(fast, slow)
    assert fast.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("per", NOISELESS[:3], ids=["adc", "clip-small-dac-range", "dac-only"])
def test_matmul_is_bit_identical_to_the_pytorch_path_without_noise(lib, per, monkeypatch):
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(40, 30, generator=g), torch.randn(12, 30, generator=g) * 0.3
    fast = analog_matmul(x, w, per, digital_scale=0.9)
    monkeypatch.setattr(P, "COMPILED", False)
    assert torch.equal(fast, analog_matmul(x, w, per, digital_scale=0.9))


def test_the_generator_is_standard_normal(lib):
    z = periphery_cpu.normal(1_000_000, seed=12345).double()
    assert abs(float(z.mean())) < 4 / 1000  # 4 standard errors
    assert abs(float(z.std()) - 1) < 4 / math.sqrt(2 * 1e6)
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 0.01
    tail = float((z.abs() > 3.442619855899).double().mean())  # the ziggurat's tail branch
    assert abs(tail - 2 * stats.norm.sf(3.442619855899)) < 4 * math.sqrt(5.8e-4 / 1e6)
    assert not torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12346))
    assert torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12345))


def test_output_noise_has_its_std_and_follows_the_generator(lib):
    conv, x, w = _conv_case(n=8)
    clean = analog_conv2d(x, w, conv, Periphery(inp_bits=8), digital_scale=1.0)
    per = Periphery(inp_bits=8, out_noise=0.05)
    noisy = analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(4), digital_scale=1.0)
    s = P._nonzero_scale(P._patch_abs_max(x, conv))
    noise = ((noisy - clean) / s).flatten()  # normalised output units
    assert abs(float(noise.std()) / 0.05 - 1) < 0.04 and abs(float(noise.mean())) < 4 * 0.05 / math.sqrt(noise.numel())
    assert stats.kstest((noise / 0.05).double().numpy(), "norm").pvalue > 0.01
    again = analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(4), digital_scale=1.0)
    other = analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(5), digital_scale=1.0)
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)


def test_without_a_compiler_the_pytorch_path_gives_the_same_statistics(torch_path):
    conv, x, w = _conv_case(n=8)
    clean = analog_conv2d(x, w, conv, Periphery(inp_bits=8), digital_scale=1.0)
    noisy = analog_conv2d(x, w, conv, Periphery(inp_bits=8, out_noise=0.05), torch.Generator().manual_seed(4))
    noise = ((noisy - clean) / P._nonzero_scale(P._patch_abs_max(x, conv))).flatten()
    assert abs(float(noise.std()) / 0.05 - 1) < 0.04


def test_a_failed_build_falls_back_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(periphery_cpu, "_lib", None)
    monkeypatch.setattr(periphery_cpu, "_tried", False)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("AIMC_CACHE", str(tmp_path / "cache"))
    with pytest.warns(RuntimeWarning, match="PyTorch path"):
        assert periphery_cpu.lib() is None


def test_bad_inputs_are_refused(lib):
    with pytest.raises(ValueError, match="contiguous float32"):
        periphery_cpu.channel_abs_max(torch.zeros(1, 4, 4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="do not match"):
        periphery_cpu.dac_patches(torch.zeros(1, 4, 4, 3), torch.ones(1, 4, 4), torch.empty(10), (3, 3), (1, 1),
                                  (1, 1), 127, False)
    with pytest.raises(ValueError, match="one gain and one scale per row"):
        periphery_cpu.output_stage_(torch.zeros(5, 3), 1.0, torch.ones(4), 0.0, 0, False, None)


def test_gdc_readout_is_the_same_with_and_without_the_compiled_loops(lib, monkeypatch):
    """A chip's GDC factors are part of its calibration: a seed gives the same ones on every machine."""
    w = torch.randn(16, 40, generator=torch.Generator().manual_seed(2)) * 0.3
    per = Periphery.aihwkit_like()
    fast = P.one_hot_readout(w, per, torch.Generator().manual_seed(3))
    monkeypatch.setattr(P, "COMPILED", False)
    assert fast == P.one_hot_readout(w, per, torch.Generator().manual_seed(3))
