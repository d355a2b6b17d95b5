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


@pytest.fixture
def one_pass(lib, monkeypatch):
    """Within a test: the one-pass DAC conv, and proof that the patch-matrix loops are not used."""
    if not lib.has_dac_conv:
        msg = "this CPU has no AVX2 and FMA: the one-pass DAC conv is not built"
        if os.environ.get("CI"):  # CI runs on x86-64 machines that have them
            pytest.fail(msg)
        pytest.skip(msg)

    def not_used(*args, **kwargs):
        raise AssertionError("the patch-matrix path ran")
    monkeypatch.setattr(periphery_cpu, "dac_patches", not_used)


@pytest.fixture
def patch_matrix(lib, monkeypatch):
    """Within a test: the compiled patch-matrix loops, as on CPUs without AVX2 (e.g. ARM)."""
    monkeypatch.setattr(lib, "has_dac_conv", False)


@pytest.mark.parametrize("per", NOISELESS, ids=["adc", "clip-small-dac-range", "dac-only", "adc-only", "fixed-range"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_is_bit_identical_to_the_pytorch_path_without_noise(patch_matrix, per, stride, monkeypatch):
    conv, x, w = _conv_case(stride=stride)
    fast = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    monkeypatch.setattr(P, "COMPILED", False)
    slow = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    assert torch.equal(fast, slow)
    assert fast.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("per", NOISELESS[:4], ids=["adc", "clip-small-dac-range", "dac-only", "adc-only"])
@pytest.mark.parametrize("c, cout, stride", [(3, 16, 1), (8, 16, 2), (28, 28, 1), (28, 56, 2), (56, 56, 1),
                                             (5, 4, 1), (20, 12, 1)])
def test_one_pass_conv_matches_the_pytorch_path_without_noise(one_pass, per, c, cout, stride, monkeypatch):
    """Every block shape (8 to 56 output channels: 1 to 7 vectors), channel tails, strides, padding."""
    conv, x, w = _conv_case(c=c, cout=cout, stride=stride, hw=11)
    fast = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    monkeypatch.setattr(P, "COMPILED", False)
    slow = analog_conv2d(x, w, conv, per, digital_scale=1.7)
    assert fast.shape == slow.shape and fast.is_contiguous(memory_format=torch.channels_last)
    if per.out_bits is None:  # the sums differ from torch.mm's only in their rounding
        assert torch.allclose(fast, slow, rtol=0, atol=1e-5 * float(slow.abs().max()))
    else:  # after the ADC: equal, but for the rare sum that sits on a level's edge
        assert float((fast != slow).double().mean()) <= 2e-3


@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0), (1, 2, 0), (5, 2, 2), (3, 1, 0)])
def test_one_pass_conv_handles_other_kernels(one_pass, kernel, stride, padding, monkeypatch):
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(12, 20, kernel, stride, padding, bias=False)
    x = torch.randn(3, 12, 10, 9, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(20, 12, kernel, kernel, generator=g) * 0.2
    per = Periphery(inp_bits=8)
    fast = analog_conv2d(x, w, conv, per, digital_scale=1.3)
    monkeypatch.setattr(P, "COMPILED", False)
    slow = analog_conv2d(x, w, conv, per, digital_scale=1.3)
    assert fast.shape == slow.shape == conv(x).shape  # the plain conv's output size
    assert torch.allclose(fast, slow, rtol=0, atol=1e-5 * float(slow.abs().max()))


def test_one_pass_conv_noise_has_its_std_and_follows_the_generator(one_pass):
    conv, x, w = _conv_case(c=16, cout=28, n=8)
    clean = analog_conv2d(x, w, conv, Periphery(inp_bits=8), digital_scale=1.0)
    per = Periphery(inp_bits=8, out_noise=0.05)
    noisy = analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(4), digital_scale=1.0)
    rows = ((noisy - clean) / P._nonzero_scale(P._patch_abs_max(x, conv)) / 0.05).permute(0, 2, 3, 1).reshape(-1, 28)
    noise = rows.flatten()
    assert abs(float(noise.std()) - 1) < 0.03 and abs(float(noise.mean())) < 4 / math.sqrt(noise.numel())
    assert stats.kstest(noise.double().numpy(), "norm").pvalue > 0.01
    by_channel = rows.std(0)  # every output channel gets the same noise (no vector lane is special)
    assert float((by_channel - 1).abs().max()) < 5 / math.sqrt(2 * rows.shape[0])
    again = analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(4), digital_scale=1.0)
    assert torch.equal(noisy, again)


def test_one_pass_conv_gives_the_same_noise_on_any_number_of_threads(one_pass):
    group = periphery_cpu.IMAGES_PER_GROUP
    conv, x, w = _conv_case(c=16, cout=16, n=group, hw=6)
    x = torch.cat([x, x, x[:3]]).contiguous(memory_format=torch.channels_last)  # the same images in each group
    per = Periphery.aihwkit_like()
    threads = torch.get_num_threads()
    try:
        runs = []
        for t in (1, 3):  # 3 groups of images: in order on one thread, in parallel on three
            torch.set_num_threads(t)
            runs.append(analog_conv2d(x, w, conv, per, torch.Generator().manual_seed(9), digital_scale=1.0))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0][:group], runs[0][group:2 * group])  # each group draws its own noise


def test_the_vectorised_generator_is_standard_normal(one_pass):
    n = 1_000_000
    z = periphery_cpu.normal(n, seed=12345, vectorised=True).double()
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.std()) - 1) < 4 / math.sqrt(2 * n)
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 0.01
    for k in (2.0, 3.0, 4.0):  # the tails, where polynomial log, sin and cos would show
        p = 2 * stats.norm.sf(k)
        assert abs(float((z.abs() > k).double().mean()) - p) < 4 * math.sqrt(p / n)
    assert abs(float(stats.skew(z.numpy()))) < 4 * math.sqrt(6 / n)
    assert abs(float(stats.kurtosis(z.numpy()))) < 4 * math.sqrt(24 / n)
    assert float(z.abs().max()) < 6.67  # u1 >= 2^-32
    for lag in range(1, 33):  # draws close together are independent (lanes, halves of a word, Box-Muller pairs)
        assert abs(float(torch.corrcoef(torch.stack([z[:-lag], z[lag:]]))[0, 1])) < 4.5 / math.sqrt(n)
    assert torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12345, vectorised=True))
    assert not torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12346, vectorised=True))


@pytest.mark.parametrize("per", NOISELESS[:3], ids=["adc", "clip-small-dac-range", "dac-only"])
def test_matmul_is_bit_identical_to_the_pytorch_path_without_noise(lib, per, monkeypatch):
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(40, 30, generator=g), torch.randn(12, 30, generator=g) * 0.3
    fast = analog_matmul(x, w, per, digital_scale=0.9)
    monkeypatch.setattr(P, "COMPILED", False)
    assert torch.equal(fast, analog_matmul(x, w, per, digital_scale=0.9))


def test_the_ziggurat_generator_is_standard_normal(lib):
    z = periphery_cpu.normal(1_000_000, seed=12345).double()
    assert abs(float(z.mean())) < 4 / 1000  # 4 standard errors
    assert abs(float(z.std()) - 1) < 4 / math.sqrt(2 * 1e6)
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 0.01
    tail = float((z.abs() > 3.442619855899).double().mean())  # the ziggurat's tail branch
    assert abs(tail - 2 * stats.norm.sf(3.442619855899)) < 4 * math.sqrt(5.8e-4 / 1e6)
    assert not torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12346))
    assert torch.equal(z[:1000].float(), periphery_cpu.normal(1000, seed=12345))


def test_output_noise_has_its_std_and_follows_the_generator(patch_matrix):
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
    if lib.has_dac_conv:
        with pytest.raises(ValueError, match="26 rows"):
            periphery_cpu.dac_conv(torch.zeros(1, 4, 4, 3), torch.zeros(26, 8), (3, 3), (1, 1), (1, 1), 1 / 127, 127,
                                   False, 1.0, 1.0, 0.0, 0, False, None)


def test_gdc_readout_is_the_same_with_and_without_the_compiled_loops(lib, monkeypatch):
    """A chip's GDC factors are part of its calibration: a seed gives the same ones on every machine."""
    w = torch.randn(16, 40, generator=torch.Generator().manual_seed(2)) * 0.3
    per = Periphery.aihwkit_like()
    fast = P.one_hot_readout(w, per, torch.Generator().manual_seed(3))
    monkeypatch.setattr(P, "COMPILED", False)
    assert fast == P.one_hot_readout(w, per, torch.Generator().manual_seed(3))
