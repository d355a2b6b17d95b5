"""Programming a network onto simulated PCM and reading it back."""
import copy

import pytest
import torch
from conftest import resnet_with_statistics

from aimc_lib.mapping import AnalogChip, program_network, reestimate_bn_statistics
from aimc_lib.models import analog_layers, crossbar_matrix, resnet
from aimc_lib.pcm import PCMParams

NO_NOISE = PCMParams(prog_noise_scale=0, drift_scale=0, read_noise_scale=0)


@pytest.fixture(scope="module")
def net():
    return resnet_with_statistics(20, (8, 12, 16))


@pytest.fixture(scope="module")
def x():
    return torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("t_s", [0.0, 1.0, 86400.0, 3.15e7])
def test_noise_free_chip_reproduces_outputs(net, x, t_s):
    chip = AnalogChip(net, NO_NOISE, seed=0)
    for comp in ("gdc", "none"):
        torch.testing.assert_close(chip.read(t_s, comp)(x), net(x), rtol=1e-4, atol=1e-4)


def test_programmed_conductances_follow_differential_mapping(net):
    chip = AnalogChip(net, NO_NOISE)
    st = chip.layers["fc"]
    w = crossbar_matrix(net.fc)
    assert st.w_max == pytest.approx(w.abs().max().item())
    assert st.shape == (10, 17)  # FC bias is an extra column
    assert torch.all((st.g_plus_us == 0) | (st.g_minus_us == 0))
    assert st.g_plus_us.max().item() == pytest.approx(25.0) or st.g_minus_us.max().item() == pytest.approx(25.0)


def test_drift_only_gdc_restores_mean_abs_weight(net):
    chip = AnalogChip(net, PCMParams(prog_noise_scale=0, read_noise_scale=0))
    for t in (60.0, 86400.0):
        raw = chip.weights_at(t, "none")
        gdc = chip.weights_at(t, "gdc")
        for name, layer in analog_layers(net).items():
            w0 = crossbar_matrix(layer).abs().mean().item()
            assert raw[name].abs().mean().item() < 0.95 * w0  # drift shrinks the weights
            assert gdc[name].abs().mean().item() == pytest.approx(w0, rel=1e-5)


def test_without_compensation_weights_shrink_like_the_mean_drift(net):
    chip = AnalogChip(net, PCMParams(prog_noise_scale=0, read_noise_scale=0))
    w = chip.weights_at(86400.0, "none")["layer1.0.conv1"]
    w0 = crossbar_matrix(net.layer1[0].conv1)
    ratio = (w.abs().sum() / w0.abs().sum()).item()
    assert 0.4 < ratio < 0.75  # nu between 0.049 and 0.1 gives 0.43 ... 0.66 after 1 day


def test_same_chip_fixed_programming_fresh_read_noise(net):
    chip = AnalogChip(net, PCMParams(), seed=3)
    a, b = chip.weights_at(10.0), chip.weights_at(10.0)
    assert not torch.equal(a["fc"], b["fc"])
    # read noise is small next to the programmed state: the two reads stay close
    assert (a["fc"] - b["fc"]).abs().mean() < 0.2 * a["fc"].abs().mean()
    # same seed, same chip
    c, d = AnalogChip(net, PCMParams(), seed=3), AnalogChip(net, PCMParams(), seed=4)
    assert torch.equal(c.layers["fc"].g_plus_us, chip.layers["fc"].g_plus_us)
    assert not torch.equal(d.layers["fc"].g_plus_us, chip.layers["fc"].g_plus_us)


def test_original_model_untouched(net, x):
    before = copy.deepcopy(net.state_dict())
    out = net(x)
    chip = program_network(net, PCMParams(), seed=0)
    m = chip.read(1e4, "adabs", calibration_x=torch.randn(64, 3, 32, 32))
    assert m is not net
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(net(x), out)


def test_adabs_reestimates_bn_statistics(net):
    m = copy.deepcopy(net)
    xs = torch.randn(256, 3, 32, 32) * 2 + 1
    reestimate_bn_statistics(m, xs, batch_size=64)
    assert not m.training
    with torch.no_grad():
        h = m.bn1.running_mean
        direct = torch.nn.functional.conv2d(xs, m.conv1.weight, padding=1).mean((0, 2, 3))
    torch.testing.assert_close(h, direct, rtol=1e-4, atol=1e-4)


def test_bad_inputs_raise(net):
    chip = AnalogChip(net, NO_NOISE)
    with pytest.raises(ValueError, match="unknown compensation"):
        chip.read(1.0, "magic")
    with pytest.raises(ValueError, match="time since programming"):
        chip.read(-1.0)
    with pytest.raises(ValueError, match="time since programming"):
        chip.read(float("nan"))
    with pytest.raises(ValueError, match="calibration_x"):
        chip.read(1.0, "adabs")
    bad = copy.deepcopy(net)
    with torch.no_grad():
        bad.layer1[0].conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        AnalogChip(bad)
    with torch.no_grad():
        bad.layer1[0].conv1.weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        AnalogChip(bad)


def test_gdc_factor_is_inverse_mean_drift(net):
    chip = AnalogChip(net, PCMParams(prog_noise_scale=0, read_noise_scale=0))
    alpha = chip.gdc_factors(86400.0)
    raw = chip.weights_at(86400.0, "none")
    for name, layer in analog_layers(net).items():
        ratio = raw[name].abs().mean().item() / crossbar_matrix(layer).abs().mean().item()
        assert alpha[name] == pytest.approx(1 / ratio, rel=1e-5)
        assert 1.3 < alpha[name] < 2.5


def test_zero_weights_map_to_zero_conductance_without_sign():
    from aimc_lib.mapping import weights_to_targets
    gp, gm = weights_to_targets(torch.tensor([0.0, -0.5, 1.0]), 1.0, 25.0)
    assert gp.tolist() == [0.0, 0.0, 25.0] and gm.tolist() == [0.0, 12.5, 0.0]
    assert not torch.signbit(gp).any() and not torch.signbit(gm).any()


def test_read_into_equals_read(net, x):
    chip_a, chip_b = AnalogChip(net, PCMParams(), seed=5), AnalogChip(net, PCMParams(), seed=5)
    target = copy.deepcopy(net)
    with torch.no_grad():
        target.bn1.running_mean.fill_(7.0)  # stale state must be overwritten
    for t in (1.0, 1e4):
        torch.testing.assert_close(chip_a.read_into(target, t)(x), chip_b.read(t)(x))
    with pytest.raises(ValueError, match="layers"):
        chip_a.read_into(resnet(8), 1.0)


def test_a_chip_is_its_streams():
    """Every draw of a chip is named: programming by (seed, layer, device), reads also by the read's index."""
    from aimc_lib import pcm
    from aimc_lib.mapping import programming_streams, read_stream, weights_to_targets
    from aimc_lib.models import analog_layers, crossbar_matrix
    net = resnet_with_statistics(8, (8, 12, 16))
    chip = AnalogChip(net, seed=11)
    name, layer = list(analog_layers(net).items())[2]
    w = crossbar_matrix(layer).detach().float()
    tp, tm = weights_to_targets(w, float(w.abs().max()), chip.params.g_max_us)
    gp, nup = pcm.program(tp, chip.params, programming_streams(11, 2, 0))
    gm, num = pcm.program(tm, chip.params, programming_streams(11, 2, 1))
    st = chip.layers[name]
    assert all(torch.equal(a, b) for a, b in [(gp, st.g_plus_us), (nup, st.nu_plus), (gm, st.g_minus_us),
                                              (num, st.nu_minus)])
    w_day = chip.weights_at(86_400.0, "none")[name]  # read 1 after the calibration read 0
    diff = pcm.read(gp, nup, 86_400.0, chip.params, read_stream(11, 2, 0, 1)) - \
        pcm.read(gm, num, 86_400.0, chip.params, read_stream(11, 2, 1, 1))
    torch.testing.assert_close(w_day, diff * (st.w_max / chip.params.g_max_us), rtol=0, atol=0)
    # the same chip on another run, whatever was read before on another one
    other = AnalogChip(net, seed=11)
    other.weights_at(60.0, "none")
    assert torch.equal(other.layers[name].g_plus_us, st.g_plus_us)
    assert not torch.equal(other.weights_at(86_400.0, "none")[name], w_day)  # read 2: fresh read noise


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_seed_names_the_same_chip_on_a_gpu():
    net = resnet_with_statistics(8, (8, 12, 16))
    cpu = AnalogChip(net, seed=4)
    gpu = AnalogChip(net.cuda(), seed=4)
    for name, st in cpu.layers.items():
        torch.testing.assert_close(gpu.layers[name].g_plus_us.cpu(), st.g_plus_us, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gpu.weights_at(3600.0)["conv1"].cpu(), cpu.weights_at(3600.0)["conv1"],
                               rtol=1e-5, atol=1e-6)
    net.cpu()
