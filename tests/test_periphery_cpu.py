"""The periphery's compiled CPU functions (aimc_lib.periphery_cpu) against the one random stream (aimc_lib.rng),
against small PyTorch reference computations written here, and against their own statistics; and how the
library is declared, built, cached and found."""
import math
import os
import stat
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from aimc_lib import periphery_cpu, rng

WORDS = rng.stream(rng.OUTPUT_NOISE, layer=3, read=1)


@pytest.fixture(scope="module")
def lib():
    lib = periphery_cpu.lib()
    if lib is None:  # CI must have a C compiler: the fast path is the one users get
        msg = "the periphery's C functions did not build (no C compiler?)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return lib


@pytest.fixture(scope="module")
def compiler():
    cc = periphery_cpu.find_compiler()
    if cc is None:
        if os.environ.get("CI"):
            pytest.fail("no C compiler")
        pytest.skip("no C compiler")
    return cc


@pytest.fixture(scope="module")
def one_pass(lib):
    """The one-pass DAC conv (x86-64 with AVX2 and FMA) and the vectorised normals."""
    if not lib.has_dac_conv:
        msg = "this CPU has no AVX2 and FMA: the one-pass DAC conv is not built"
        if os.environ.get("CI"):  # CI runs on x86-64 machines that have them
            pytest.fail(msg)
        pytest.skip(msg)


def _has(lib, isa: str) -> bool:
    return periphery_cpu.ISAS.index(isa) <= lib.isa_available()


@pytest.fixture(params=periphery_cpu.ISAS)
def noise_isa(lib, request):
    """Within a test: the output stages' and the one-pass conv's noise in each instruction set this CPU has."""
    if not _has(lib, request.param):
        pytest.skip(f"this CPU has no {request.param}")
    with periphery_cpu.limited_isa(request.param) as used:
        assert used == request.param
        yield request.param


def _close_to_stream(z: torch.Tensor, ref: torch.Tensor, scale: float = 1.0) -> None:
    """``z`` equals ``scale * ref`` up to the float rounding of log, sin and cos: 1e-6 relative (absolute below 1)."""
    err = (z - scale * ref).abs() / (scale * ref.abs().clamp(min=1.0))
    assert err.numel() == 0 or float(err.max()) <= 1e-6


# ---- the stream ----

@pytest.mark.parametrize("isa", periphery_cpu.ISAS)
@pytest.mark.parametrize("seed, words, rows, cols, row0", [
    (0, (0, 0), 3, 17, 0), (2 ** 64 - 1, (5, 2 ** 32 - 1), 5, 1001, 7), (123, WORDS, 40, 32, 2 ** 32 - 3),
    (7, WORDS, 2, 1, 0), (7, WORDS, 2, 0, 0)])
def test_normals_are_the_stream(lib, isa, seed, words, rows, cols, row0):
    if not _has(lib, isa):
        pytest.skip(f"this CPU has no {isa}")
    z = periphery_cpu.normal(seed, words, rows, cols, row0, vectorised=isa)
    ref = rng.normal(seed, words, rows, cols, row0)
    assert z.shape == ref.shape == (rows, cols)
    _close_to_stream(z, ref)


@pytest.mark.parametrize("isa", periphery_cpu.ISAS)
def test_many_normals_are_the_stream(lib, isa):
    """A million values: the polynomial log, sin and cos over their whole range (u1 down to 2^-24)."""
    if not _has(lib, isa):
        pytest.skip(f"this CPU has no {isa}")
    z = periphery_cpu.normal(11, WORDS, 100, 10_000, 5, vectorised=isa)
    ref = rng.normal(11, WORDS, 100, 10_000, 5)
    _close_to_stream(z, ref)
    assert float(ref.abs().max()) > 5.0  # the tails are in the test
    if isa == "avx512":  # the same operations as the AVX2 version, 16 lanes instead of 8
        assert torch.equal(z, periphery_cpu.normal(11, WORDS, 100, 10_000, 5, vectorised="avx2"))



def test_the_vectorised_generator_is_standard_normal(one_pass):
    n = 1_000_000
    z = periphery_cpu.normal(12345, WORDS, 1, n, vectorised=True)[0].double()
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.std()) - 1) < 4 / math.sqrt(2 * n)
    assert stats.kstest(z[:200_000].numpy(), "norm").pvalue > 0.01
    for k in (2.0, 3.0, 4.0):  # the tails, where polynomial log, sin and cos would show
        p = 2 * stats.norm.sf(k)
        assert abs(float((z.abs() > k).double().mean()) - p) < 4 * math.sqrt(p / n)
    assert abs(float(stats.skew(z.numpy()))) < 4 * math.sqrt(6 / n)
    assert abs(float(stats.kurtosis(z.numpy()))) < 4 * math.sqrt(24 / n)
    assert float(z.abs().max()) <= math.sqrt(-2 * math.log(2.0 ** -24)) + 1e-5  # u1 >= 2^-24
    for lag in range(1, 33):  # draws close together are independent (lanes, blocks, Box-Muller pairs)
        assert abs(float(torch.corrcoef(torch.stack([z[:-lag], z[lag:]]))[0, 1])) < 4.5 / math.sqrt(n)


# ---- the output stage ----

def _reference_output_stage(y, gain, row_scale, noise_sd, z, adc, clip):
    """The PyTorch path's output stage: the same float32 operations in the same order."""
    y = y * (gain.view(-1, 1) if isinstance(gain, torch.Tensor) else gain)
    if noise_sd > 0:
        y = y + noise_sd * z
    if adc:
        y = y.round()
    if clip is not None:
        y = y.clamp(*clip)
    return y * row_scale.view(-1, 1)


@pytest.mark.parametrize("rows, cols, ppi, row0", [(7, 10, 1, 0), (7, 10, 1, 100), (3 * 25, 16, 25, 9),
                                                   (2 * 9, 13, 9, 0)], ids=["fc", "fc-row0", "conv", "conv-odd"])
def test_output_noise_is_the_stream(noise_isa, rows, cols, ppi, row0):
    """Zeros through gain 1, no ADC, no clipping, row scale 1: exactly noise_sd times the stream's normals,
    image r // ppi as stream row row0 + r // ppi, values in the image's (pixel, channel) order."""
    y = periphery_cpu.output_stage_(torch.zeros(rows, cols), 1.0, torch.ones(rows), 0.25, 5, WORDS, row0, ppi,
                                    False, None)
    ref = rng.normal(5, WORDS, rows // ppi, ppi * cols, row0).reshape(rows, cols)
    _close_to_stream(y, ref, 0.25)


def test_output_noise_of_a_large_image_is_drawn_in_pieces(lib):
    """More values per image than the C function's noise buffer (2048), and a row longer than it."""
    for rows, cols, ppi in ((2 * 300, 16, 300), (2, 5000, 1)):
        y = periphery_cpu.output_stage_(torch.zeros(rows, cols), 1.0, torch.ones(rows), 1.0, 8, WORDS, 3, ppi,
                                        False, None)
        _close_to_stream(y, rng.normal(8, WORDS, rows // ppi, ppi * cols, 3).reshape(rows, cols))


def test_output_stage_in_chunks_of_images_is_the_whole(lib):
    g = torch.Generator().manual_seed(0)
    y, gain, s = torch.randn(6 * 4, 9, generator=g), torch.rand(6 * 4, generator=g) + 0.5, torch.rand(6 * 4) + 0.5
    args = (0.3, 17, WORDS)
    whole = periphery_cpu.output_stage_(y.clone(), gain, s, *args, 0, 4, True, (-20.0, 20.0))
    parts = [periphery_cpu.output_stage_(y[a:b].clone(), gain[a:b].contiguous(), s[a:b].contiguous(), *args, a // 4, 4,
                                         True, (-20.0, 20.0)) for a, b in ((0, 8), (8, 20), (20, 24))]
    assert torch.equal(torch.cat(parts), whole)
    other = periphery_cpu.output_stage_(y.clone(), gain, s, 0.3, 17, rng.stream(rng.OUTPUT_NOISE, layer=4, read=1),
                                        0, 4, True, (-20.0, 20.0))
    assert not torch.equal(other, whole)


@pytest.mark.parametrize("adc, clip", [(True, (-127.0, 127.0)), (False, (-3.0, 3.0)), (True, None), (False, None)])
@pytest.mark.parametrize("row_gain", [False, True])
def test_output_stage_is_the_pytorch_path(lib, adc, clip, row_gain):
    """Without noise bit-identical; with noise the same but for outputs on an ADC level's edge."""
    g = torch.Generator().manual_seed(1)
    y = torch.randn(40, 12, generator=g) * 30
    gain = torch.rand(40, generator=g) + 0.5 if row_gain else 0.7
    s = torch.rand(40, generator=g) + 0.1
    clean = periphery_cpu.output_stage_(y.clone(), gain, s, 0.0, 0, WORDS, 0, 1, adc, clip)
    assert torch.equal(clean, _reference_output_stage(y, gain, s, 0.0, None, adc, clip))
    noisy = periphery_cpu.output_stage_(y.clone(), gain, s, 0.5, 3, WORDS, 2, 4, adc, clip)
    ref = _reference_output_stage(y, gain, s, 0.5, rng.normal(3, WORDS, 10, 48, 2).reshape(40, 12), adc, clip)
    if adc:
        assert int((noisy != ref).sum()) <= 1
    else:
        assert torch.allclose(noisy, ref, rtol=1e-6, atol=1e-6)


# ---- the DAC conv ----

def _patch_scales(x_nhwc, kernel, stride, padding):
    """Each patch's abs-max (1 for an all-zero patch), ``[n, Ho, Wo]``."""
    cam = x_nhwc.abs().amax(3).unsqueeze(1)
    s = F.max_pool2d(cam, kernel, stride, padding)[:, 0]  # padding adds -inf, never above a real value >= 0
    return torch.where(s > 0, s, torch.ones_like(s))


def _reference_levels(x_nhwc, kernel, stride, padding, in_step, half, clip_in):
    """The DAC's patch matrix ``[n, Ho, Wo, kh*kw*C]`` (offset-major, channel-minor), as the PyTorch path."""
    n, h, w, c = x_nhwc.shape
    s = _patch_scales(x_nhwc, kernel, stride, padding)
    cols = F.unfold(x_nhwc.permute(0, 3, 1, 2), kernel, padding=padding, stride=stride)  # [n, C*kh*kw, L]
    cols = cols.view(n, c, kernel[0] * kernel[1], -1).permute(0, 3, 2, 1).reshape(n, *s.shape[1:], -1)
    levels = (cols * (1.0 / (s * in_step)).unsqueeze(-1)).round()
    return (levels.clamp(-half, half) if clip_in else levels), s


def _reference_conv(x_nhwc, w_mat, kernel, stride, padding, in_step, half, clip_in, gain, out_scale, noise_sd, seed,
                    words, row0, adc, clip):
    levels, s = _reference_levels(x_nhwc, kernel, stride, padding, in_step, half, clip_in)
    n, ho, wo, _ = levels.shape
    y = (levels.reshape(-1, levels.shape[-1]) @ w_mat)
    z = rng.normal(seed, words, n, ho * wo * w_mat.shape[1], row0).reshape(y.shape)
    return _reference_output_stage(y, gain, (s * out_scale).reshape(-1), noise_sd, z, adc, clip).view(n, ho, wo, -1)


def _case(c=8, cout=16, n=3, hw=9, kernel=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hw, hw, c, generator=g)
    w = torch.randn(kernel * kernel * c, cout, generator=g) * 0.2
    return x, w


#: (in_step, half, clip_in, gain, out_scale, adc, clip): converter settings as the periphery passes them.
SETTINGS = {"adc": (1 / 127, 127, False, 1 / 127 / (10 / 127), 10 / 127, True, (-127.0, 127.0)),
            "clip-small-dac-range": (0.5 / 31, 31, True, 0.5 / 31 / (3 / 127), 3 / 127, True, (-127.0, 127.0)),
            "dac-only": (1 / 127, 127, False, 1 / 127, 1.0, False, None),
            "adc-only": (1 / 127, 127, False, 1 / 127 / (2 / 31), 2 / 31, True, (-31.0, 31.0)),
            "out-clip": (1 / 127, 127, False, 1 / 127, 1.0, False, (-2.0, 2.0))}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("stride", [1, 2])
def test_patch_matrix_path_is_bit_identical_to_pytorch_without_noise(lib, setting, stride):
    in_step, half, clip_in, gain, out_scale, adc, clip = SETTINGS[setting]
    x, w = _case()
    kernel, strides, padding = (3, 3), (stride, stride), (1, 1)
    ref_levels, s = _reference_levels(x, kernel, strides, padding, in_step, half, clip_in)
    n, ho, wo = s.shape
    cols = torch.empty(n, ho, wo, 9, x.shape[3])
    periphery_cpu.dac_patches(x, (1.0 / (s * in_step)).contiguous(), cols, kernel, strides, padding, half, clip_in)
    assert torch.equal(cols.view(ref_levels.shape), ref_levels)
    y = cols.view(n * ho * wo, -1) @ w
    out = periphery_cpu.output_stage_(y.clone(), gain, (s * out_scale).reshape(-1), 0.0, 0, WORDS, 0, ho * wo, adc,
                                      clip)
    assert torch.equal(out, _reference_output_stage(y, gain, (s * out_scale).reshape(-1), 0.0, None, adc, clip))
    assert torch.equal(periphery_cpu.channel_abs_max(x), x.abs().amax(3))


def _assert_conv_matches(fast, ref, adc, edge_fraction=2e-3):
    """The one-pass conv's sums differ from torch.mm's only in their rounding; after an ADC the outputs are
    equal but for the rare sum on a level's edge."""
    assert fast.shape == ref.shape
    if adc:
        assert float((fast != ref).double().mean()) <= edge_fraction
    else:
        assert torch.allclose(fast, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("c, cout, stride", [(3, 16, 1), (8, 16, 2), (28, 28, 1), (28, 56, 2), (56, 56, 1),
                                             (5, 4, 1), (20, 12, 1)])
def test_one_pass_conv_is_the_pytorch_path_without_noise(one_pass, setting, c, cout, stride):
    """Every block shape (8 to 56 output channels: 1 to 7 vectors), channel tails, strides, padding."""
    in_step, half, clip_in, gain, out_scale, adc, clip = SETTINGS[setting]
    x, w = _case(c=c, cout=cout, hw=11)
    args = ((3, 3), (stride, stride), (1, 1), in_step, half, clip_in, gain, out_scale, 0.0, 0, WORDS, 0, adc, clip)
    _assert_conv_matches(periphery_cpu.dac_conv(x, w, *args), _reference_conv(x, w, *args), adc)


@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0), (1, 2, 0), (5, 2, 2), (3, 1, 0)])
def test_one_pass_conv_handles_other_kernels(one_pass, kernel, stride, padding):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 10, 9, 12, generator=g)
    w = torch.randn(kernel * kernel * 12, 20, generator=g) * 0.2
    args = ((kernel, kernel), (stride, stride), (padding, padding), 1 / 127, 127, False, 1 / 127, 1.3, 0.4, 2, WORDS,
            0, False, None)
    fast = periphery_cpu.dac_conv(x, w, *args)
    ref_shape = F.conv2d(x.permute(0, 3, 1, 2), torch.zeros(20, 12, kernel, kernel), None, stride, padding).shape
    assert fast.permute(0, 3, 1, 2).shape == ref_shape  # the plain conv's output size
    _assert_conv_matches(fast, _reference_conv(x, w, *args), False)


@pytest.mark.parametrize("cout", [16, 28])
def test_one_pass_conv_noise_is_the_stream(one_pass, noise_isa, cout):
    """An all-zero image: scale 1, levels 0, product 0, so the output is out_scale * noise_sd times the stream
    (image n: row row0 + n, values in (pixel, channel) order). A known product: noisy - clean is the same."""
    x, w = _case(c=16, cout=cout, n=5, hw=7)
    x[2] = 0.0
    args = ((3, 3), (1, 1), (1, 1), 1 / 127, 127, False, 1 / 127, 0.5)
    noisy = periphery_cpu.dac_conv(x, w, *args, 0.2, 9, WORDS, 40, False, None)
    z = rng.normal(9, WORDS, 5, 7 * 7 * cout, 40).reshape(5, 7, 7, cout)
    _close_to_stream(noisy[2], z[2], 0.5 * 0.2)
    clean = periphery_cpu.dac_conv(x, w, *args, 0.0, 9, WORDS, 40, False, None)
    s = _patch_scales(x, (3, 3), (1, 1), (1, 1)).unsqueeze(-1)
    # (p g + sd z) s' - (p g) s', up to the rounding of p g (|p g| <= 127 |w|_1-ish)
    assert torch.allclose(noisy - clean, 0.5 * s * 0.2 * z, rtol=1e-5, atol=1e-5 * float(clean.abs().max()))
    ref = _reference_conv(x, w, *args, 0.2, 9, WORDS, 40, False, None)
    _assert_conv_matches(noisy, ref, False)


def test_one_pass_conv_with_noise_and_adc_is_the_pytorch_path(one_pass):
    x, w = _case(c=16, cout=16, n=9, hw=8)
    args = ((3, 3), (1, 1), (1, 1), *SETTINGS["adc"][:5], 0.6, 4, WORDS, 3, True, (-127.0, 127.0))
    _assert_conv_matches(periphery_cpu.dac_conv(x, w, *args), _reference_conv(x, w, *args), True)


def test_one_pass_conv_noise_does_not_depend_on_threads_or_chunks(one_pass, noise_isa):
    group = periphery_cpu.IMAGES_PER_GROUP
    x, w = _case(c=16, cout=16, n=2 * group + 3, hw=6)
    x[group:2 * group] = x[:group]  # the same images in two groups: different noise all the same
    args = ((3, 3), (1, 1), (1, 1), *SETTINGS["adc"][:5], 0.8, 9, WORDS)
    threads = torch.get_num_threads()
    try:
        runs = []
        for t in (1, 3):  # 3 groups of images: in order on one thread, in parallel on three
            torch.set_num_threads(t)
            runs.append(periphery_cpu.dac_conv(x, w, *args, 0, True, (-127.0, 127.0)))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0][:group], runs[0][group:2 * group])
    chunks = [periphery_cpu.dac_conv(x[a:b].contiguous(), w, *args, a, True, (-127.0, 127.0))
              for a, b in ((0, 5), (5, 6), (6, 2 * group + 3))]
    assert torch.equal(torch.cat(chunks), runs[0])


def test_one_pass_conv_and_patch_matrix_path_agree_with_noise(one_pass):
    """The two compiled paths draw the same noise for the same output: only the sums' rounding differs."""
    in_step, half, clip_in, gain, out_scale, _, _ = SETTINGS["dac-only"]
    x, w = _case(c=8, cout=24, n=4, hw=9)
    fast = periphery_cpu.dac_conv(x, w, (3, 3), (2, 2), (1, 1), in_step, half, clip_in, gain, out_scale, 0.3, 1,
                                  WORDS, 6, False, None)
    s = _patch_scales(x, (3, 3), (2, 2), (1, 1))
    n, ho, wo = s.shape
    cols = torch.empty(n, ho, wo, 9, 8)
    periphery_cpu.dac_patches(x, (1.0 / (s * in_step)).contiguous(), cols, (3, 3), (2, 2), (1, 1), half, clip_in)
    y = cols.view(n * ho * wo, -1) @ w
    slow = periphery_cpu.output_stage_(y, gain, (s * out_scale).reshape(-1), 0.3, 1, WORDS, 6, ho * wo, False, None)
    _assert_conv_matches(fast, slow.view(fast.shape), False)


def test_bad_inputs_are_refused(lib):
    with pytest.raises(ValueError, match="contiguous float32"):
        periphery_cpu.channel_abs_max(torch.zeros(1, 4, 4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="do not match"):
        periphery_cpu.dac_patches(torch.zeros(1, 4, 4, 3), torch.ones(1, 4, 4), torch.empty(10), (3, 3), (1, 1),
                                  (1, 1), 127, False)
    with pytest.raises(ValueError, match="one gain and one scale per row"):
        periphery_cpu.output_stage_(torch.zeros(5, 3), 1.0, torch.ones(4), 0.0, 0, WORDS, 0, 1, False, None)
    with pytest.raises(ValueError, match="whole images"):
        periphery_cpu.output_stage_(torch.zeros(5, 3), 1.0, torch.ones(5), 0.0, 0, WORDS, 0, 2, False, None)
    with pytest.raises(ValueError, match="noise_sd"):
        periphery_cpu.output_stage_(torch.zeros(4, 3), 1.0, torch.ones(4), float("nan"), 0, WORDS, 0, 1, False, None)
    for rows, cols in ((0, 3), (4, 0)):  # nothing to do
        y = periphery_cpu.output_stage_(torch.zeros(rows, cols), 1.0, torch.ones(rows), 1.0, 0, WORDS, 0, 1, False,
                                        None)
        assert y.shape == (rows, cols)
    with pytest.raises(ValueError, match="words"):
        periphery_cpu.normal(0, (0, 2 ** 32), 1, 4)
    with pytest.raises(ValueError, match="seed"):
        periphery_cpu.normal(-1, WORDS, 1, 4)
    with pytest.raises(ValueError, match="row0"):
        periphery_cpu.normal(0, WORDS, 1, 4, row0=-1)
    if lib.has_dac_conv:
        with pytest.raises(ValueError, match="26 rows"):
            periphery_cpu.dac_conv(torch.zeros(1, 4, 4, 3), torch.zeros(26, 8), (3, 3), (1, 1), (1, 1), 1 / 127, 127,
                                   False, 1.0, 1.0, 0.0, 0, WORDS, 0, False, None)


def test_the_portable_build_draws_the_same_noise(compiler, monkeypatch, tmp_path):
    """The library as on a CPU without AVX2 (e.g. ARM): no one-pass conv, the portable normals in the output stage."""
    path = periphery_cpu.build(compiler, tmp_path / "portable.so", extra_flags=("-DAIMC_PORTABLE",))
    monkeypatch.setattr(periphery_cpu, "_lib", periphery_cpu._open(path))
    monkeypatch.setattr(periphery_cpu, "_tried", True)
    assert periphery_cpu.available() and not periphery_cpu.has_dac_conv()
    y = periphery_cpu.output_stage_(torch.zeros(3 * 20, 16), 1.0, torch.ones(3 * 20), 0.5, 4, WORDS, 2, 20, False, None)
    _close_to_stream(y, rng.normal(4, WORDS, 3, 20 * 16, 2).reshape(3 * 20, 16), 0.5)
    with pytest.raises(RuntimeError, match="AVX2"):
        periphery_cpu.normal(0, WORDS, 1, 4, vectorised=True)
    with pytest.raises(RuntimeError, match="has no avx2"):
        periphery_cpu.normal(0, WORDS, 1, 4, vectorised="avx2")
    assert periphery_cpu.isa() == "portable"
    with pytest.raises(RuntimeError, match="AVX2"):
        periphery_cpu.dac_conv(torch.zeros(1, 4, 4, 3), torch.zeros(27, 8), (3, 3), (1, 1), (1, 1), 1 / 127, 127,
                               False, 1.0, 1.0, 0.0, 0, WORDS, 0, False, None)
    assert periphery_cpu._call("dac_conv", **{a: 0 for _, a in periphery_cpu.DECLARATIONS["dac_conv"][1]}) == -2


# ---- the declared interface ----

def test_calls_go_by_the_declared_names_and_ranges(lib):
    with pytest.raises(TypeError, match="declared"):
        periphery_cpu._call("channel_abs_max", x=None, out=None, npix=0)
    with pytest.raises(ValueError, match="int32_t"):
        periphery_cpu._call("channel_abs_max", x=None, out=None, npix=0, c=2 ** 31)
    for name, (ret, args) in periphery_cpu.DECLARATIONS.items():
        f = getattr(lib, name)
        assert len(f.argtypes) == len(args) and (f.restype is None) == (ret == "void")


def _compile_fails(cc, tmp_path, declarations, match):
    with pytest.raises(RuntimeError, match=match):
        periphery_cpu.build(cc, tmp_path / "bad.so", declarations)
    assert not (tmp_path / "bad.so").exists()


def test_a_declaration_that_disagrees_with_the_c_does_not_compile(compiler, tmp_path):
    wrong = {k: (r, list(a)) for k, (r, a) in periphery_cpu.DECLARATIONS.items()}
    ret, args = wrong["output_stage"]
    wrong["output_stage"] = (ret, [("int64_t", "cols") if a == "cols" else (t, a) for t, a in args])
    _compile_fails(compiler, tmp_path, wrong, "conflicting types")
    fewer = dict(wrong, output_stage=(ret, args[:-1]))
    _compile_fails(compiler, tmp_path, fewer, "conflicting types")


def test_an_undeclared_exported_function_does_not_compile(compiler, tmp_path):
    missing = {k: v for k, v in periphery_cpu.DECLARATIONS.items() if k != "normal_fill"}
    _compile_fails(compiler, tmp_path, missing, "normal_fill")


# ---- build, cache, fallback ----

@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """The library not yet loaded, with its cache in a temporary folder."""
    monkeypatch.setattr(periphery_cpu, "_lib", None)
    monkeypatch.setattr(periphery_cpu, "_tried", False)
    monkeypatch.setenv("AIMC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AIMC_PERIPHERY_C", raising=False)
    return tmp_path / "cache"


def test_the_cache_is_the_platforms(monkeypatch, tmp_path):
    monkeypatch.delenv("AIMC_CACHE", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert periphery_cpu.cache_dir() == tmp_path / "xdg" / "aimc_lib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert periphery_cpu.cache_dir() == Path.home() / ".cache" / "aimc_lib"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert periphery_cpu.cache_dir() == Path.home() / "Library" / "Caches" / "aimc_lib"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert periphery_cpu.cache_dir() == tmp_path / "local" / "aimc_lib"
    monkeypatch.setenv("AIMC_CACHE", str(tmp_path / "mine"))
    assert periphery_cpu.cache_dir() == tmp_path / "mine"


def _no_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))


def test_a_prebuilt_library_runs_without_a_compiler(compiler, fresh, monkeypatch, tmp_path):
    assert periphery_cpu.lib() is not None  # built into the fresh cache
    built = list(fresh.glob("periphery_cpu-*"))
    assert len(built) == 1
    monkeypatch.setattr(periphery_cpu, "_lib", None)
    monkeypatch.setattr(periphery_cpu, "_tried", False)
    _no_compiler(monkeypatch, tmp_path)

    def no_search():
        raise AssertionError("looked for a compiler although the library was in the cache")
    monkeypatch.setattr(periphery_cpu, "find_compiler", no_search)
    assert periphery_cpu.available()
    _close_to_stream(periphery_cpu.normal(1, WORDS, 2, 5), rng.normal(1, WORDS, 2, 5))


def test_a_broken_cached_file_is_rebuilt_and_old_builds_removed(compiler, fresh):
    fresh.mkdir(parents=True)
    target = fresh / periphery_cpu._library_name()
    target.write_bytes(b"not a shared library")
    old = fresh / "periphery_cpu-0123456789abcdef.so"
    old.write_bytes(b"an old build")
    assert periphery_cpu.available()
    assert target.read_bytes()[:4] == b"\x7fELF" or sys.platform != "linux"
    assert not old.exists() and sorted(fresh.glob("periphery_cpu-*")) == [target]


def test_without_a_compiler_the_pytorch_path_is_used_with_one_warning(fresh, monkeypatch, tmp_path):
    _no_compiler(monkeypatch, tmp_path)
    with pytest.warns(RuntimeWarning, match="no C compiler found.*PyTorch path") as record:
        assert not periphery_cpu.available()
        assert not periphery_cpu.has_dac_conv() and periphery_cpu.lib() is None
    assert len(record) == 1
    with pytest.raises(RuntimeError, match="not available"):
        periphery_cpu.normal(0, WORDS, 1, 4)


def test_the_switch_off_needs_no_compiler_and_says_nothing(fresh, monkeypatch, recwarn):
    monkeypatch.setenv("AIMC_PERIPHERY_C", "0")
    monkeypatch.setattr(periphery_cpu, "find_compiler", lambda: pytest.fail("looked for a compiler"))
    assert not periphery_cpu.available()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(sys.platform == "win32", reason="shell scripts as stand-in tools")
def test_on_macos_apples_stub_compiler_is_never_run(monkeypatch, tmp_path):
    """Without the command-line tools, /usr/bin/cc opens an install dialog: only run it if xcode-select -p succeeds."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    marker = tmp_path / "cc-was-run"
    _script(bin_ / "cc", f"touch {marker}; exit 1")
    _script(bin_ / "xcode-select", "exit 2")
    monkeypatch.setenv("PATH", str(bin_))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert periphery_cpu.find_compiler() is None
    assert not marker.exists()
    _script(bin_ / "xcode-select", "echo /Library/Developer/CommandLineTools; exit 0")
    assert periphery_cpu.find_compiler() == [str(bin_ / "cc")]
    assert not marker.exists()
    monkeypatch.setattr(sys, "platform", "linux")  # elsewhere cc is a compiler
    (bin_ / "xcode-select").unlink()
    assert periphery_cpu.find_compiler() == [str(bin_ / "cc")]

