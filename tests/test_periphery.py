"""The periphery: converters, output noise and GDC readout, against their definitions."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import resnet_with_statistics

from aimc_lib.data import Split
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib import periphery, rng
from aimc_lib.backends import AnalogLayer
from aimc_lib.mapping import AnalogChip, readout_stream
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import (Periphery, analog_conv2d, analog_matmul, converter_levels, one_hot_readout,
                                quantize)


def _stream(seed=0, layer=0, read=1):
    return rng.Stream(seed, rng.OUTPUT_NOISE, layer, 0, read)


@pytest.fixture(scope="module")
def net():
    return resnet_with_statistics(8, (8, 12, 16))


@pytest.fixture(scope="module")
def x():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("t_s", [0.0, 86_400.0])
@pytest.mark.parametrize("comp", ["none", "gdc"])
def test_ideal_periphery_is_bit_identical_to_a_plain_read(net, x, t_s, comp):
    plain = AnalogChip(net, seed=3).read(t_s, comp)
    ideal = AnalogChip(net, seed=3).read(t_s, comp, periphery=Periphery.ideal())
    assert torch.equal(plain(x), ideal(x))


def test_ideal_periphery_gives_the_same_accuracy_vs_time(net):
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g),
                  torch.randint(0, 10, (64,), generator=g))
    a = accuracy_vs_time(net, split, [1.0, 3600.0], n_chips=2, progress=False)
    b = accuracy_vs_time(net, split, [1.0, 3600.0], n_chips=2, progress=False, periphery=Periphery.ideal())
    assert a["per_chip"] == b["per_chip"]
    assert b["meta"]["periphery"] == Periphery.ideal().to_dict()


@pytest.mark.parametrize("bits, bound", [(2, 1.0), (4, 1.0), (8, 1.0), (8, 10.0), (5, 0.3)])
def test_quantize_gives_exactly_the_levels_of_its_resolution(bits, bound):
    x = torch.linspace(-3 * bound, 3 * bound, 200_001)
    values = torch.unique(quantize(x.clone(), bits, bound))
    levels = converter_levels(bits, bound)
    assert len(levels) == 2 ** bits - 1
    torch.testing.assert_close(values, levels)
    assert float(values[0]) == pytest.approx(-bound) and float(values[-1]) == pytest.approx(bound)
    step = 2 * bound / (2 ** bits - 2)
    inside = x.abs() <= bound
    assert float((quantize(x.clone(), bits, bound) - x)[inside].abs().max()) <= step / 2 * (1 + 1e-5)


def test_aihwkit_like_preset_is_the_tutorials_8_bit_forward():
    p = Periphery.aihwkit_like()
    assert (p.inp_bits, p.out_bits, p.inp_bound, p.out_bound, p.out_noise) == (8, 8, 1.0, 10.0, 0.04)
    assert p.noise_management == "abs_max" and not p.is_ideal
    # aihwkit's inp_res = out_res = 1/254: the step is 2 * bound / 254
    levels = converter_levels(8, 10.0)
    assert float(levels[1] - levels[0]) == pytest.approx(20 / 254)


def test_output_noise_has_its_std_and_the_adc_clips_at_its_bound():
    x = torch.ones(100_000, 1)  # abs-max scale 1
    noisy = analog_matmul(x, torch.zeros(4, 1), Periphery(out_noise=0.04), _stream())
    assert float(noisy.std()) == pytest.approx(0.04, rel=0.01)
    assert abs(float(noisy.mean())) < 0.001
    # 50 full-scale inputs on full-scale weights: 50 > out_bound, clipped to exactly out_bound
    big = analog_matmul(torch.ones(3, 50), torch.ones(2, 50), Periphery(out_bits=8, out_bound=10.0))
    assert torch.equal(big, torch.full((3, 2), 10.0))
    clipped = analog_matmul(torch.ones(3, 50), -torch.ones(2, 50), Periphery(out_bound=5.0))
    assert torch.equal(clipped, torch.full((3, 2), -5.0))


def test_abs_max_scaling_is_undone_digitally():
    x = torch.tensor([[0.5, -2.0, 1.0], [0.0, 0.0, 0.0]])
    w = torch.tensor([[0.3, 0.2, -0.1]])
    y = analog_matmul(x, w, Periphery(out_bound=100.0))  # no quantisation: the scale cancels
    torch.testing.assert_close(y, x @ w.T)


@pytest.mark.parametrize("stride, k", [(1, 3), (2, 3), (2, 1)])
def test_conv_through_the_periphery_equals_the_mvm_of_every_im2col_column(stride, k):
    g = torch.Generator().manual_seed(2)
    conv = torch.nn.Conv2d(5, 7, k, stride, k // 2, bias=False)
    x = torch.randn(2, 5, 9, 9, generator=g)
    w = torch.randn(7, 5, k, k, generator=g) * 0.3
    cols = F.unfold(x, k, padding=k // 2, stride=stride).transpose(1, 2)  # [N, L, C*k*k]
    for per in (Periphery(inp_bits=4, inp_bound=2.0, noise_management="none"), Periphery(inp_bits=4),
                Periphery(inp_bits=4, inp_bound=0.5),  # an input range below 1: the DAC clips
                Periphery(inp_bits=4, out_bits=6, out_bound=1.5)):
        y = analog_conv2d(x, w, conv, per)
        ref = analog_matmul(cols, w.flatten(1), per).transpose(1, 2).reshape(y.shape)
        torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    # the DAC matters: without it the result differs by more than float rounding
    assert float((analog_conv2d(x, w, conv, Periphery()) - y).abs().max()) > 1e-3


def test_conv_through_the_dac_gives_the_same_result_in_chunks(monkeypatch):
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(4, 16, 3, 1, 1, bias=False)
    x = torch.randn(5, 4, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(16, 4, 3, 3, generator=g) * 0.3
    per = Periphery(inp_bits=6, out_bits=8, out_bound=4.0, out_noise=0.05)
    whole = analog_conv2d(x, w, conv, per, _stream())
    monkeypatch.setattr(periphery, "PATCH_CHUNK_BYTES", 8 * 8 * 36 * 4 * 2)  # two images per chunk: 2, 2, 1
    chunked = analog_conv2d(x, w, conv, per, _stream())
    # each output's noise is named by its image and position, not by the order of the draws
    assert torch.equal(whole, chunked)
    assert chunked.is_contiguous(memory_format=torch.channels_last)
    # and a batch computed in two calls (rows row0 = 0 and 2 of the stream) is the same batch
    split = torch.cat([analog_conv2d(x[:2], w, conv, per, _stream()), analog_conv2d(x[2:], w, conv, per, _stream(),
                                                                                     row0=2)])
    assert torch.equal(split, whole)
    assert not torch.equal(analog_conv2d(x, w, conv, per, _stream(read=2)), whole)  # another read: other noise


def test_output_noise_is_the_streams_values_in_channels_last_order():
    conv = torch.nn.Conv2d(3, 5, 1, 1, 0, bias=False)
    x = torch.ones(2, 3, 4, 4)
    w = torch.zeros(5, 3, 1, 1)  # the crossbar outputs 0: the result is the noise alone
    y = analog_conv2d(x, w, conv, Periphery(inp_bits=8, out_noise=0.5), _stream(), row0=7)
    z = _stream().normal(2, 4 * 4 * 5, row0=7).view(2, 4, 4, 5).permute(0, 3, 1, 2)
    torch.testing.assert_close(y, 0.5 * z, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="noise stream"):
        analog_conv2d(x, w, conv, Periphery(inp_bits=8, out_noise=0.5))


def test_analog_layer_linear_bias_is_a_row_driven_by_one(net):
    layer = net.fc
    w2d = torch.cat([layer.weight, layer.bias[:, None]], 1).detach()
    w_max = float(w2d.abs().max())
    a = AnalogLayer(layer, w2d / w_max, w_max, Periphery(out_bound=1e6))
    h = torch.randn(4, layer.in_features, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a(h), layer(h), rtol=1e-5, atol=1e-5)


def test_a_chip_with_a_periphery_reads_the_same_conductances(net, x):
    """The periphery has its own streams: a chip is the same chip with or without it (paired studies)."""
    near_ideal = Periphery(out_bound=1e6)  # not ideal, but numerically a plain product
    for comp in ("none", "gdc"):
        a = AnalogChip(net, seed=5).read(3600.0, comp)(x)
        b = AnalogChip(net, seed=5).read(3600.0, comp, periphery=near_ideal)(x)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_gdc_readout_through_the_periphery(net):
    drift_only = PCMParams(prog_noise_scale=0, read_noise_scale=0)
    chip = AnalogChip(net, drift_only, seed=0)
    exact = chip.gdc_factors(86_400.0)
    # ideal converters, no noise: the one-hot readout is the mean |W| of the crossbar, as GDC's exact one
    for name, st in chip.layers.items():
        w = st.reference_diff_us / drift_only.g_max_us
        assert one_hot_readout(w, Periphery(out_bound=1e6)) == pytest.approx(float(w.abs().mean()), rel=1e-5)
    # with the aihwkit-like periphery the readout is measured (ADC steps, output noise): alpha stays close
    per = Periphery.aihwkit_like(gdc_readout="periphery")
    ref = chip._periphery_reference(per)
    for name, st in chip.layers.items():
        w_day = chip._read_difference(st, 86_400.0, 0, 1) / drift_only.g_max_us
        alpha = ref[name] / one_hot_readout(w_day, per, readout_stream(0, 0, 1))
        assert 1.0 < alpha < 1.25 * exact[name], name
    assert one_hot_readout(torch.zeros(3, 4), Periphery(out_bits=8, out_bound=10.0)) == 1e-4  # aihwkit's floor


def test_gdc_readout_averages_its_calibration_reads():
    """gdc_reads=k averages k one-hot reads (rows j*in.. of the noise stream) before |.|: read 1 is
    the single read's, and the readout of a zero crossbar falls from sigma*sqrt(2/pi) as 1/sqrt(k)."""
    per1 = Periphery(out_noise=0.04)
    w = torch.zeros(64, 32)
    s = rng.Stream(5, rng.READOUT_NOISE, 2, 0, 1)
    eye = torch.eye(32)
    by_hand = sum(analog_matmul(eye, w, per1, s, row0=j * 32) for j in range(4)) / 4
    per4 = dataclasses.replace(per1, gdc_reads=4)
    assert one_hot_readout(w, per4, s) == pytest.approx(float(by_hand.abs().mean()), rel=1e-6)
    assert one_hot_readout(w, per1, s) == pytest.approx(float(analog_matmul(eye, w, per1, s).abs().mean()))
    expected = 0.04 * math.sqrt(2 / math.pi)
    assert one_hot_readout(w, per1, s) == pytest.approx(expected, rel=0.05)
    assert one_hot_readout(w, dataclasses.replace(per1, gdc_reads=16), s) == pytest.approx(expected / 4, rel=0.05)
    for bad in (0, -1, 1.5, True, "4", 2000):
        with pytest.raises(ValueError, match="Periphery.gdc_reads must be"):
            Periphery(gdc_reads=bad)
    assert Periphery(gdc_reads=torch.tensor(3)).gdc_reads == 3


def test_gdc_with_known_inputs():
    """The known inputs are Walsh patterns on blocks of 16 rows; through a periphery without noise or
    ADC their outputs are the exact products, and a uniform shrink of the weights gives alpha = 1/shrink
    (the least-squares gain, no absolute value); through the aihwkit-like periphery it stays within
    a few % where the one-hot readout is biased low."""
    from aimc_lib.periphery import gdc_alpha, gdc_readout, known_input_outputs, known_inputs, walsh_patterns
    h = walsh_patterns(8)
    assert torch.equal(h @ h.T, 8 * torch.eye(8, dtype=h.dtype)) and torch.equal(h[0], torch.ones(8, dtype=h.dtype))
    x = known_inputs(20)
    assert torch.equal(x[:16, :16], walsh_patterns(16)) and not x[:16, 16:].any() and not x[16:, :16].any()
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(0)) * 0.3
    exact = Periphery(inp_bits=8, gdc_readout="known-inputs")
    torch.testing.assert_close(known_input_outputs(w, exact), (x @ w.double().T).float())
    assert gdc_alpha(gdc_readout(w, exact), gdc_readout(0.8 * w, exact)) == pytest.approx(1.25, rel=1e-5)
    # through the aihwkit-like periphery: weights of a tenth of full scale (like direct mapping's), shrunk by 0.7
    small = torch.randn(64, 256, generator=torch.Generator().manual_seed(1)) * 0.1
    known, one_hot = (Periphery.aihwkit_like(gdc_readout=r) for r in ("known-inputs", "periphery"))
    s0, s1 = (rng.Stream(3, rng.READOUT_NOISE, 0, 0, r) for r in (0, 1))
    alpha_known = gdc_alpha(gdc_readout(small, known, s0), gdc_readout(0.7 * small, known, s1))
    alpha_one_hot = gdc_alpha(gdc_readout(small, one_hot, s0), gdc_readout(0.7 * small, one_hot, s1))
    assert 0.7 * alpha_known == pytest.approx(1.0, abs=0.03) and 0.7 * alpha_one_hot < 0.97
    with pytest.raises(ValueError, match="gdc_readout must be one of"):
        Periphery(gdc_readout="all-ones")


def test_a_chip_reads_with_known_input_gdc(net):
    """A chip without noise or drift read with known-input GDC holds its weights: alpha is 1."""
    still = PCMParams(prog_noise_scale=0, read_noise_scale=0, drift_scale=0, noise_on_zero_target=False)
    per = Periphery(inp_bits=8, gdc_readout="known-inputs")
    chip = AnalogChip(net, still, seed=0)
    model = chip.read(86_400.0, "gdc", periphery=per)
    from aimc_lib.backends import AnalogLayer
    layers = {n: m for n, m in model.named_modules() if isinstance(m, AnalogLayer)}
    assert set(layers) == set(chip.layers)
    for name, m in layers.items():  # digital scale W_max * alpha with alpha = 1
        assert m.digital_scale == pytest.approx(chip.layers[name].w_max, rel=1e-5), name


def test_accuracy_vs_time_records_the_periphery(net):
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g),
                  torch.randint(0, 10, (32,), generator=g))
    per = Periphery.aihwkit_like()
    a = accuracy_vs_time(net, split, [60.0], n_chips=1, progress=False, periphery=per)
    b = accuracy_vs_time(net, split, [60.0], n_chips=1, progress=False, periphery=per)
    assert a["per_chip"] == b["per_chip"]  # reproducible: output noise from the chip's stream
    assert a["meta"]["periphery"] == per.to_dict()


@pytest.mark.parametrize("kwargs, match", [
    (dict(inp_bits=0), "inp_bits"), (dict(inp_bits=1), "inp_bits"), (dict(out_bits=1.5, out_bound=1.0), "out_bits"),
    (dict(inp_bits=True), "inp_bits"), (dict(out_noise=-0.1), "out_noise"), (dict(out_noise=math.nan), "out_noise"),
    (dict(inp_bound=0.0), "inp_bound"), (dict(out_bound=0.0), "out_bound"), (dict(out_bound=-1.0), "out_bound"),
    (dict(out_bits=8), "needs out_bound"), (dict(noise_management="max"), "noise_management"),
    (dict(gdc_readout="column"), "gdc_readout"),
])
def test_bad_periphery_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Periphery(**kwargs)


def test_a_periphery_read_runs_with_autograd_on(net, x):
    """A plain ``model(x)`` call (autograd on, BatchNorm parameters that require grad) works and
    gives what the same read gives under ``no_grad`` (it failed once: in-place writes under autograd)."""
    per = Periphery(inp_bits=8, out_bits=8, out_bound=10.0, gdc_readout="exact")
    model = AnalogChip(net, seed=1).read(86_400.0, "gdc", periphery=per)
    assert torch.is_grad_enabled() and any(p.requires_grad for p in model.parameters())
    y = model(x)
    with torch.no_grad():
        assert torch.equal(y, model(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (run on one whenever available)")
def test_cuda_periphery_matches_cpu_without_noise(net, x):
    per = Periphery(inp_bits=8, out_bits=8, out_bound=10.0, gdc_readout="exact")
    cpu = AnalogChip(net, seed=1).read(86_400.0, "gdc", periphery=per)(x)
    gpu_net = AnalogChip(net.cuda(), seed=1).read(86_400.0, "gdc", periphery=per)
    gpu = gpu_net(x.cuda()).cpu()
    net.cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-3)
