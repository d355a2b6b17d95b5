"""The PCM device model against its formulas (the science reference, book/science.md), on 10^5+ devices."""
import math

import pytest
import torch

from aimc_lib import pcm
from aimc_lib.pcm import PCMParams

N = 200_000
P = PCMParams()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def sigma_p(g):  # the formula, written out independently
    return max(-1.1731 * g * g + 1.9650 * g + 0.2635, 0.0)


def test_formula_values_quoted_in_science_md():
    assert sigma_p(0) == pytest.approx(0.2635)
    assert pcm.prog_noise_std_us(torch.tensor([25.0])).item() == pytest.approx(1.0554, abs=1e-4)
    g = torch.linspace(0, 25, 2501)
    s = pcm.prog_noise_std_us(g)
    assert s.max().item() == pytest.approx(1.0864, abs=1e-3)
    assert g[s.argmax()].item() / 25 == pytest.approx(0.8375, abs=0.01)
    # Retention quoted for nu = 0.049
    for t, kept in ((60, 0.93), (3600, 0.78), (86400, 0.66), (365 * 86400, 0.50)):
        assert pcm.mean_drift_factor(t) == pytest.approx(kept, abs=0.01)


@pytest.mark.parametrize("g_t_us", [2.0, 8.0, 15.0, 25.0])
def test_programming_noise_std_matches_formula(g_t_us):
    target = torch.full((N,), g_t_us)
    g_p, _ = pcm.program(target, P, gen())
    want = sigma_p(g_t_us / 25.0)
    # far from 0 the clipping at 0 is negligible (>= 7 sigma away)
    assert g_p.mean().item() == pytest.approx(g_t_us, abs=4 * want / math.sqrt(N))
    assert g_p.std().item() == pytest.approx(want, rel=0.01)


@pytest.mark.parametrize("g_t_us", [0.5, 2.0, 10.0, 25.0])
def test_drift_exponent_statistics(g_t_us):
    g = g_t_us / 25.0
    mu = min(max(-0.0155 * math.log(g) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(g) - 0.0059, 0.008), 0.045)
    _, nu = pcm.program(torch.full((N,), g_t_us), P, gen(1))
    assert (nu >= 0).all()
    # |N(mu, sd)|: mu/sd >= 2.2 here, folding changes mean/std by < 1e-3 relative... check folded moments
    from scipy.stats import foldnorm
    c = mu / sd
    assert nu.mean().item() == pytest.approx(foldnorm.mean(c, scale=sd), rel=0.005)
    assert nu.std().item() == pytest.approx(foldnorm.std(c, scale=sd), rel=0.01)


@pytest.mark.parametrize("g_t_us", [5.0, 25.0])
@pytest.mark.parametrize("t_s", [0.0, 3600.0])
def test_read_noise_std_matches_formula(g_t_us, t_s):
    p = PCMParams(prog_noise_scale=0.0, drift_scale=0.0)
    g_p, nu = pcm.program(torch.full((N,), g_t_us), p, gen())
    reads = pcm.read(g_p, nu, t_s, p, gen(2))
    q_s = min(0.0088 / (g_t_us / 25) ** 0.65, 0.2)
    want = g_t_us * q_s * math.sqrt(math.log((t_s + 20 + 250e-9) / (2 * 250e-9)))
    assert reads.std().item() == pytest.approx(want, rel=0.01)
    assert reads.mean().item() == pytest.approx(g_t_us, abs=4 * want / math.sqrt(N))


def test_fresh_read_noise_at_each_read():
    g_p, nu = pcm.program(torch.full((1000,), 10.0), P, gen())
    g = gen(5)
    assert not torch.equal(pcm.read(g_p, nu, 10.0, P, g), pcm.read(g_p, nu, 10.0, P, g))


def test_drift_follows_power_law_and_t0_is_no_drift():
    g_p, nu = pcm.program(torch.full((1000,), 20.0), P, gen())
    assert torch.equal(pcm.drift(g_p, nu, 0.0), g_p)
    for t in (1.0, 100.0, 1e5):
        expect = g_p * ((t + 20.0) / 20.0) ** (-nu)
        assert torch.allclose(pcm.drift(g_p, nu, t), expect, rtol=1e-5)
    # log-log slope between two late times is -nu
    t1, t2 = 1e6, 1e8
    slope = (torch.log(pcm.drift(g_p, nu, t2)) - torch.log(pcm.drift(g_p, nu, t1))) / (
        math.log(t2 + 20) - math.log(t1 + 20))
    assert torch.allclose(slope, -nu, atol=1e-4)


def test_clipping_at_zero_and_zero_target_option():
    target = torch.zeros(N)
    g_off, _ = pcm.program(target, PCMParams(noise_on_zero_target=False), gen())
    assert torch.equal(g_off, target)
    g_on, _ = pcm.program(target, PCMParams(), gen())  # the calibrated model's default
    assert PCMParams().noise_on_zero_target
    assert (g_on >= 0).all() and (g_on > 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    # max(0, N(0, 0.2635)): mean sigma / sqrt(2 pi)
    assert g_on.mean().item() == pytest.approx(0.2635 / math.sqrt(2 * math.pi), rel=0.01)
    low, nu = pcm.program(torch.full((N,), 0.3), P, gen())
    assert (low >= 0).all() and (low == 0).any()
    assert (pcm.read(low, nu, 100.0, P, gen()) >= 0).all()


def test_seeds_reproduce_and_differ():
    t = torch.rand(10_000) * 25
    a = pcm.program(t, P, gen(3))
    b = pcm.program(t, P, gen(3))
    c = pcm.program(t, P, gen(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_scales_switch_effects_off():
    t = torch.rand(10_000) * 25
    g_p, nu = pcm.program(t, PCMParams(prog_noise_scale=0, drift_scale=0, read_noise_scale=0), gen())
    assert torch.equal(g_p, t) and torch.equal(nu, torch.zeros_like(nu))
    p = PCMParams(prog_noise_scale=0, drift_scale=0, read_noise_scale=0)
    assert torch.equal(pcm.read(g_p, nu, 1e5, p, gen()), t)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_times_raise(bad):
    g_p, nu = pcm.program(torch.ones(10), P, gen())
    with pytest.raises(ValueError, match="time since programming"):
        pcm.drift(g_p, nu, bad)
    with pytest.raises(ValueError, match="time since programming"):
        pcm.read(g_p, nu, bad, P, gen())


@pytest.mark.parametrize("kwargs", [dict(g_max_us=0), dict(g_max_us=-25), dict(t0_s=0),
                                    dict(prog_noise_scale=-1), dict(drift_scale=-0.5),
                                    dict(read_noise_scale=float("nan"))])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError, match="PCMParams"):
        PCMParams(**kwargs)


def test_bad_targets_raise():
    with pytest.raises(ValueError, match="NaN"):
        pcm.program(torch.tensor([1.0, float("nan")]), P, gen())
    with pytest.raises(ValueError, match="G_max"):
        pcm.program(torch.tensor([-1.0]), P, gen())
    with pytest.raises(ValueError, match="G_max"):
        pcm.program(torch.tensor([30.0]), P, gen())
