"""The fused GPU kernel of the DAC conv against the PyTorch path and its own noise parameters.

On a GPU the kernel replaces the PyTorch path (``periphery._dac_conv``) and is checked here as
compiled; without one (CI) the same kernel code runs on the CPU in Triton's interpreter
(``TRITON_INTERPRET=1``, set by conftest.py). The reference is always the PyTorch path on the CPU.
"""
import os
import platform

import pytest
import torch
from torch import nn

from aimc_lib import periphery as P
from aimc_lib.periphery import Periphery

SHAPES = [(3, 16, 1, 2, 8), (16, 28, 2, 2, 8), (28, 28, 1, 1, 6), (56, 56, 1, 1, 4)]  # c, cout, stride, n, hw
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def kernel():
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        import triton  # noqa: F401  (PyTorch's Linux wheels bring it: missing is an error here)
    else:
        pytest.importorskip("triton")
    assert DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    from aimc_lib import periphery_triton
    return periphery_triton


def _case(c, cout, stride, n, hw, seed=0):
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(c, cout, 3, stride, 1, bias=False)
    x = torch.randn(n, c, hw, hw, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, c, 3, 3, generator=g) * 0.2
    s = P._nonzero_scale(P._patch_abs_max(x, conv))
    return conv, x, w, s


def _fused(kernel, x, s, w, conv, per, digital_scale, seed=None):
    in_half = P._half_levels(per.inp_bits)
    out_half = P._half_levels(per.out_bits) if per.out_bits is not None else None
    g = torch.Generator(DEVICE).manual_seed(seed) if seed is not None else None
    y = kernel.dac_conv(x.to(DEVICE), s.to(DEVICE), w.to(DEVICE), conv.stride, conv.padding,
                        in_step=per.inp_bound / in_half, in_half=in_half, clamp_in=per.inp_bound < 1.0,
                        out_step=per.out_bound / out_half if out_half else 1.0, out_noise=per.out_noise,
                        out_half=out_half, out_bound=per.out_bound, digital_scale=digital_scale, generator=g)
    return y.cpu()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"c{s[0]}-cout{s[1]}-stride{s[2]}")
@pytest.mark.parametrize("per", [Periphery(inp_bits=8, out_bits=8, out_bound=10.0),
                                 Periphery(inp_bits=6, inp_bound=0.5, out_bound=3.0),
                                 Periphery(inp_bits=8)], ids=["adc", "clip-small-dac-range", "dac-only"])
def test_fused_kernel_matches_the_pytorch_path_without_noise(kernel, shape, per):
    conv, x, w, s = _case(*shape)
    ref = P._dac_conv(x, s, w, conv, per, None, 1.7)
    got = _fused(kernel, x, s, w, conv, per, 1.7)
    assert got.shape == ref.shape and got.is_contiguous(memory_format=torch.channels_last)
    close = torch.isclose(got, ref, rtol=1e-5, atol=1e-5)
    if per.out_bits is None:
        assert close.all()
    else:  # another order of float additions can put an output on the other side of an ADC boundary
        assert close.float().mean() >= 0.99
        level = (s * (per.out_bound / P._half_levels(per.out_bits)) * 1.7).expand_as(ref)
        torch.testing.assert_close((got - ref)[~close].abs(), level[~close], rtol=1e-4, atol=0)


def test_fused_kernel_output_noise_has_its_std_and_follows_the_generator(kernel):
    conv, x, w, s = _case(16, 16, 1, 4, 8, seed=1)
    per = Periphery(inp_bits=8, out_noise=0.05)  # no ADC: the noise is seen as drawn
    clean = _fused(kernel, x, s, w, conv, Periphery(inp_bits=8), 1.0)
    noisy = _fused(kernel, x, s, w, conv, per, 1.0, seed=5)
    noise = (noisy - clean) / s  # back in normalised output units
    assert noise.numel() == 4096
    assert abs(float(noise.mean())) < 4 * 0.05 / 64
    assert abs(float(noise.std()) / 0.05 - 1) < 0.05
    assert torch.equal(noisy, _fused(kernel, x, s, w, conv, per, 1.0, seed=5))
    assert not torch.equal(noisy, _fused(kernel, x, s, w, conv, per, 1.0, seed=6))


def test_fused_kernel_refuses_layers_it_cannot_hold(kernel):
    conv, x, w, s = _case(3, 16, 1, 1, 4)
    with pytest.raises(ValueError, match="all channels"):
        _fused(kernel, x, s, torch.zeros(200, 3, 3, 3), conv, Periphery(inp_bits=8), 1.0)
