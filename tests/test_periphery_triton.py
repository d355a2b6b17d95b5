"""The fused GPU kernel of the DAC conv against the PyTorch path, output noise included.

On a GPU the kernel replaces the PyTorch path (``periphery._dac_conv``) and is checked here as
compiled; without one (CI) the same kernel code runs on the CPU in Triton's interpreter
(``TRITON_INTERPRET=1``, set by conftest.py). The reference is always the PyTorch path on the CPU.
"""
import math
import os
import platform

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aimc_lib import periphery as P
from aimc_lib import rng
from aimc_lib.converters import Periphery, dac_levels_, in_step, out_step

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
    s = P._nonzero_scale(P.patch_abs_max(x, conv))
    return conv, x, w, s


def _stream(seed):
    return rng.Stream(seed, rng.OUTPUT_NOISE, 2, 0, 1) if seed is not None else None


def _fused(kernel, x, w, conv, per, digital_scale, seed=None, row0=0):
    """The kernel's output for the case (it computes the patch scales ``s`` itself)."""
    return kernel.dac_conv(x.to(DEVICE), w.to(DEVICE), conv.stride, conv.padding, per, digital_scale,
                           _stream(seed), row0).cpu()


def _reference(x, s, w, conv, per, digital_scale, seed=None, row0=0):
    return P._dac_conv(x, s, w, conv, per, _stream(seed), row0, digital_scale)


def _agrees(got, ref, x, s, w, conv, per, digital_scale, seed=None, row0=0):
    """Every output within the analysis' bound of the PyTorch path, except outputs whose value before
    the ADC lies within that bound of a rounding edge of the ADC: those may land exactly one level
    apart (the two sums' last bits decide). Returns how many did."""
    bound = _error_bound(x, s, w, conv, per, digital_scale)
    close = (got - ref).abs() <= bound + 1e-6 * ref.abs()
    if per.out_bits is None:
        assert close.all()
        return 0
    level = (s.unsqueeze(1) * (out_step(per) * digital_scale)).expand_as(ref)
    before_adc = _reference(x, s, w, conv, Periphery(inp_bits=per.inp_bits, inp_bound=per.inp_bound,
                                                     out_noise=per.out_noise), digital_scale, seed, row0)
    in_steps = before_adc / level
    edge_distance = ((in_steps - in_steps.floor()) - 0.5).abs() * level
    far = ~close
    torch.testing.assert_close((got - ref)[far].abs(), level[far], rtol=1e-4, atol=0)  # one level apart
    assert bool((edge_distance[far] <= 2 * bound[far] + 1e-6 * level[far]).all())  # and only at an edge
    return int(far.sum())


def _error_bound(x, s, w, conv, per, digital_scale):
    """How far the kernel may land from the PyTorch path without an ADC, output by output.

    Both sum the same products ``level * w`` in float32 in different orders, and the kernel's
    weights carry about 22 significant bits (two TF32 parts): a relative error of at most 2^-21 per
    weight, plus float32 sums, against ``sum |level| |w|`` (a few sqrt(K) roundings of 2^-24 each).
    A single TF32 pass (2^-11 per weight) lands 6 to 170 times outside this bound (simulated on the
    CPU for these cases).
    """
    step = in_step(per)
    n, cout = x.shape[0], w.shape[0]
    ho, wo = s.shape[-2:]
    cols = F.unfold(x.contiguous(), conv.kernel_size, padding=conv.padding, stride=conv.stride)  # [N, K, L]
    levels = dac_levels_(cols / (s.reshape(n, 1, -1) * step), per)
    w_abs = w.reshape(cout, -1).abs()
    k = w_abs.shape[1]
    magnitude = torch.einsum("nkl,ok->nol", levels.abs().double(), w_abs.double()).reshape(n, cout, ho, wo)
    eps = 2.0 ** -21 + 4 * math.sqrt(k) * 2.0 ** -24
    return (magnitude * eps * s.unsqueeze(1).double() * step * digital_scale).float()


@pytest.mark.parametrize("seed", [0, 12345, 2 ** 64 - 1])
def test_kernel_draws_the_stream_of_the_reference(kernel, seed):
    """The integer stream is bitwise the reference's; the normals agree up to float32 log/sin/cos."""
    words = rng.stream(rng.OUTPUT_NOISE, layer=7, read=3)
    z, raw = kernel.stream(seed, words, rows=5, cols=37, row0=2 ** 32 - 3, device=DEVICE)
    ref_raw = rng.uint32_blocks(seed, words, rows=5, blocks=10, row0=2 ** 32 - 3).reshape(5, 40)[:, :37]
    assert torch.equal(raw.cpu(), ref_raw)
    torch.testing.assert_close(z.cpu(), rng.normal(seed, words, 5, 37, row0=2 ** 32 - 3), rtol=0, atol=1e-6)


def test_weights_split_into_an_exact_tf32_part_and_the_rest(kernel):
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * torch.logspace(-6, 1, 1000)
    hi, lo = kernel.split_tf32(w)
    assert torch.equal(hi + lo, w)  # exact: lo is what hi leaves
    assert int((hi.view(torch.int32) & 8191).abs().sum()) == 0  # hi: 10 mantissa bits, as TF32 holds
    assert bool((lo.abs() <= w.abs() * 2.0 ** -10).all())


@pytest.mark.parametrize("precision", ["tf32x2", "tf32x3"])
def test_both_tensor_core_splits_match_the_pytorch_path(kernel, precision, monkeypatch):
    monkeypatch.setattr(kernel, "INPUT_PRECISION", precision)
    conv, x, w, s = _case(28, 56, 2, 2, 8, seed=4)
    per = Periphery(inp_bits=12)  # the most levels TF32 holds exactly; no ADC: the error as it is
    ref = _reference(x, s, w, conv, per, 1.0)
    assert _agrees(_fused(kernel, x, w, conv, per, 1.0), ref, x, s, w, conv, per, 1.0) == 0


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"c{s[0]}-cout{s[1]}-stride{s[2]}")
@pytest.mark.parametrize("per", [Periphery(inp_bits=8, out_bits=8, out_bound=10.0),
                                 Periphery(inp_bits=6, inp_bound=0.5, out_bound=3.0),
                                 Periphery(inp_bits=8)], ids=["adc", "clip-small-dac-range", "dac-only"])
def test_fused_kernel_matches_the_pytorch_path_without_noise(kernel, shape, per):
    conv, x, w, s = _case(*shape)
    ref = _reference(x, s, w, conv, per, 1.7)
    got = _fused(kernel, x, w, conv, per, 1.7)
    assert got.shape == ref.shape and got.is_contiguous(memory_format=torch.channels_last)
    _agrees(got, ref, x, s, w, conv, per, 1.7)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_fused_kernel_finds_the_patch_scales_also_for_zero_patches(kernel, kernel_size):
    """The kernel's own abs-max: zero padding counts as 0 and an all-zero patch gets scale 1 (outputs 0)."""
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(8, 16, kernel_size, 1, kernel_size // 2, bias=False)
    x = torch.randn(3, 8, 9, 9, generator=g)
    x[0] = 0.0  # every patch of image 0 is all zero
    x[1, :, :6, :6] = 0.0  # and some of image 1's
    x[2] *= 1e-3  # small inputs: the scale, not the range, sets the levels
    x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(16, 8, kernel_size, kernel_size, generator=g) * 0.2
    per = Periphery(inp_bits=8, out_bits=8, out_bound=10.0)
    s = P._nonzero_scale(P.patch_abs_max(x, conv))
    ref = _reference(x, s, w, conv, per, 1.0)
    got = _fused(kernel, x, w, conv, per, 1.0)
    assert torch.equal(got[0], torch.zeros_like(got[0]))
    _agrees(got, ref, x, s, w, conv, per, 1.0)


@pytest.mark.parametrize("per", [Periphery(inp_bits=8, out_noise=0.05),
                                 Periphery.aihwkit_like()], ids=["noise-only", "aihwkit-like"])
def test_fused_kernel_draws_the_reference_noise(kernel, per):
    """The kernel's output noise is the stream's (image row0 + n, value p * C_out + c), as the PyTorch path."""
    conv, x, w, s = _case(16, 28, 1, 4, 8, seed=1)
    ref = _reference(x, s, w, conv, per, 1.3, seed=5, row0=9)
    got = _fused(kernel, x, w, conv, per, 1.3, seed=5, row0=9)
    _agrees(got, ref, x, s, w, conv, per, 1.3, seed=5, row0=9)
    clean = _fused(kernel, x, w, conv, Periphery(inp_bits=8), 1.3)
    if per.out_bits is None:
        noise = (got - clean) / (s.unsqueeze(1) * 1.3)  # back in normalised output units
        assert abs(float(noise.std()) / 0.05 - 1) < 0.05
    assert not torch.equal(got, _fused(kernel, x, w, conv, per, 1.3, seed=6, row0=9))
    assert not torch.equal(got, _fused(kernel, x, w, conv, per, 1.3, seed=5, row0=10))


def test_fused_kernel_refuses_layers_it_cannot_hold(kernel):
    conv, x, w, s = _case(3, 16, 1, 1, 4)
    with pytest.raises(ValueError, match="all channels"):
        _fused(kernel, x, torch.zeros(200, 3, 3, 3), conv, Periphery(inp_bits=8), 1.0)
    with pytest.raises(ValueError, match="not exact in TF32"):
        _fused(kernel, x, torch.zeros(16, 3, 3, 3), conv, Periphery(inp_bits=13), 1.0)
