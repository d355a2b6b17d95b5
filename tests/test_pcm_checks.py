"""The PCM model refuses what it cannot simulate: its parameters, times, and time grids beyond float32."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from aimc_lib.checks import ArgumentError
from aimc_lib.pcm import (FLOAT32_TINY, NU_MAX, NU_MEAN_MAX, PCMParams, check_time, drift, drift_nu_stats,
                          time_grid, underflow_time_s)
from clear_errors import anything, clear_error_or_valid


def test_pcm_params_clear_error_or_valid():
    def valid(p, kw):
        assert p.t_read_s < p.t0_s and p.g_max_us > 0 and isinstance(p.noise_on_zero_target, bool)
        for f in ("g_max_us", "t0_s", "t_read_s", "prog_noise_scale", "drift_scale", "read_noise_scale"):
            v = getattr(p, f)
            assert not isinstance(v, (bool, str)) and math.isfinite(v) and v >= 0

    clear_error_or_valid(lambda kw: PCMParams(**kw), valid, kw=st.fixed_dictionaries({}, optional={
        "g_max_us": st.one_of(st.floats(allow_nan=True), anything), "t0_s": st.one_of(st.floats(), anything),
        "t_read_s": st.one_of(st.floats(), anything), "drift_scale": st.one_of(st.floats(), anything),
        "prog_noise_scale": st.one_of(st.floats(), anything), "noise_on_zero_target": anything}))


def test_check_time_clear_error_or_number():
    def valid(v, t):
        assert isinstance(v, float) and math.isfinite(v) and v >= 0 and not isinstance(t, (str, bool))

    time_values = st.one_of(st.floats(min_value=0, max_value=1e6), st.integers(0, 10 ** 6),
                            st.sampled_from([float("nan"), float("inf"), -1.0, 1e40, "1", True, None]))
    clear_error_or_valid(lambda t: check_time(t), valid, t=st.one_of(time_values, anything))


def test_pcm_params_types_and_read_pulse():
    with pytest.raises(ArgumentError, match=r"PCMParams.t_read_s must be shorter than t0_s"):
        PCMParams(t_read_s=0.5, t0_s=0.1)
    with pytest.raises(ArgumentError, match="PCMParams.drift_scale must be a number"):
        PCMParams(drift_scale="1")
    with pytest.raises(ArgumentError, match="noise_on_zero_target must be True or False"):
        PCMParams(noise_on_zero_target=1)


def test_time_grid_messages_name_the_argument():
    with pytest.raises(ArgumentError, match=r"times_s must hold at least one time"):
        time_grid([])
    with pytest.raises(ArgumentError, match=r"times_s\[1\].*finite"):
        time_grid([1.0, float("nan")])
    with pytest.raises(ArgumentError, match=r"times_s\[0\].*got '1'"):
        time_grid(["1"])
    with pytest.raises(ArgumentError, match="strictly increasing"):
        time_grid([1.0, 1.0])
    with pytest.raises(ArgumentError, match="list of times"):
        time_grid(3600.0)
    assert time_grid(np.array([0, 1.5])) == [0.0, 1.5]
    assert time_grid(torch.tensor([2.0, 3.0])) == [2.0, 3.0]


def test_float32_underflow_refused_or_warned():
    calibrated = PCMParams()
    with pytest.raises(ArgumentError, match="float32 range"):
        time_grid([1e40], calibrated)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        time_grid([1e5, 365 * 86400.0], calibrated)  # the figure's range: no warning
    strong = PCMParams(drift_scale=10)  # the largest accepted scale
    with pytest.raises(ArgumentError, match="underflows to 0"):
        time_grid([3e39], strong)
    t_warn = underflow_time_s(strong.t0_s, strong.drift_scale, NU_MAX, 1.0)
    with pytest.warns(UserWarning, match="most-drifting devices"):
        time_grid([t_warn * 1.01], strong)
    # the refusal is right: a device of 1 uS with the mean exponent really reads 0 at that time
    t_all = underflow_time_s(strong.t0_s, strong.drift_scale, NU_MEAN_MAX, 1.0)
    ratio = torch.tensor((t_all * 1.01 + strong.t0_s) / strong.t0_s)
    g = torch.tensor([1.0]) * torch.pow(ratio, -torch.tensor([NU_MEAN_MAX * strong.drift_scale]))
    assert float(g) < FLOAT32_TINY
    with pytest.raises(ArgumentError, match="underflows to 0"):  # and every read makes the same check
        drift(torch.tensor([1.0]), torch.tensor([NU_MEAN_MAX * 10]), t_all * 1.01, strong)


def test_drift_bounds_are_the_models_clamps():
    """NU_MAX is read from the drift model, not restated: the largest mean and std it draws from."""
    g = torch.logspace(-6, 0, 200) * PCMParams().g_max_us
    mu, sigma = drift_nu_stats(g)
    assert NU_MEAN_MAX == pytest.approx(float(mu.max())) and NU_MEAN_MAX == pytest.approx(0.1)
    assert NU_MAX == pytest.approx(float(mu.max() + 5 * sigma.max())) and NU_MAX == pytest.approx(0.325)
