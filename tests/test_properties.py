"""Issue 25, class 8: each public function's arguments drawn from the classes of bad input (numpy and
tensor scalars, bools, huge, tiny, NaN, negative, wrong shape): a clear error, or a valid result that is
finite and made of Python numbers. clear_error_or_valid asserts that both outcomes occur."""
import json
import math

import numpy as np
import torch
from hypothesis import strategies as st

from aimc_lib import pcm
from aimc_lib.experiments import accuracy_under_weight_noise, accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.pcm import PCMParams
from clear_errors import clear_error_or_valid, tiny_model, tiny_split

MODEL, TEST = tiny_model(), tiny_split()

#: The classes of bad numbers: NaN, infinities, huge, tiny, negative, bools, strings, wrong shapes.
BAD = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 1e-300, 1e-45, -1.0, -1e-9,
                       True, False, "1", None, [1.0], [1.0, 2.0], torch.tensor([1.0, 2.0]), np.zeros(3),
                       torch.tensor(float("nan")), np.float32("inf")])


def typed(values):
    """``values`` (Python numbers) as any of their types: Python, numpy (32 and 64 bit), a 0-d or
    one-element tensor."""
    as_type = st.sampled_from([lambda v: v, np.float32, np.float64, torch.tensor, lambda v: torch.tensor([v]),
                               lambda v: np.int64(v) if float(v).is_integer() else np.float64(v)])
    return st.builds(lambda v, f: f(v), values, as_type)


def kinds(values):
    """``values`` in any of their types (:func:`typed`), or a value of a bad class."""
    return st.one_of(typed(values), BAD)


def plain(x):
    """JSON of Python numbers only: numpy or tensor types make json.dumps fail."""
    return json.loads(json.dumps(x, allow_nan=False))


def test_pcm_params_fields_by_value_within_their_range():
    def valid(p, **kw):
        for name, (low, high) in pcm.RANGES.items():
            v = getattr(p, name)
            assert type(v) is float and low <= v <= high
        plain(p.to_dict())
    clear_error_or_valid(lambda **kw: PCMParams(**kw), valid,
                         g_max_us=kinds(st.floats(0.01, 2000)), drift_scale=kinds(st.floats(0, 20)),
                         read_noise_scale=kinds(st.floats(0, 20)),
                         valid={"g_max_us": typed(st.floats(1, 100)), "drift_scale": typed(st.floats(0, 5)),
                                "read_noise_scale": typed(st.floats(0, 5))})


def test_pcm_read_is_finite_or_a_clear_error():
    g, nu = torch.linspace(0, 25, 8), torch.full((8,), 0.06)

    def valid(out, t, drift_scale):
        assert torch.isfinite(out).all() and (out >= 0).all()
    clear_error_or_valid(lambda t, drift_scale: pcm.read(g, nu, t, PCMParams(drift_scale=drift_scale),
                                                         torch.Generator().manual_seed(0)),
                         valid, t=kinds(st.floats(0, 1e12)), drift_scale=kinds(st.floats(0, 10)),
                         valid={"t": typed(st.floats(0, 1e9)), "drift_scale": typed(st.floats(0, 5))})


def test_chip_reads_are_finite_or_a_clear_error():
    def valid(model, t, seed, prog):
        assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    clear_error_or_valid(lambda t, seed, prog: AnalogChip(MODEL, PCMParams(prog_noise_scale=prog), seed=seed).read(t),
                         valid, t=kinds(st.floats(0, 1e9)), seed=kinds(st.integers(0, 2 ** 31)),
                         prog=kinds(st.floats(0, 10)),
                         valid={"t": typed(st.floats(0, 1e9)), "seed": typed(st.integers(0, 2 ** 31)),
                                "prog": typed(st.floats(0, 5))})


def test_accuracy_vs_time_results_are_plain_finite_numbers_or_a_clear_error():
    def valid(res, **kw):
        assert plain(res) == res
        assert all(0 <= x <= 100 for row in res["per_chip"] for x in row)
        assert all(math.isfinite(x) and x >= 0 for x in res["std"])
    clear_error_or_valid(
        lambda n_chips, seed, batch_size, t: accuracy_vs_time(MODEL, TEST, [1.0, t], n_chips=n_chips, seed=seed,
                                                              batch_size=batch_size, progress=False),
        valid, n_chips=kinds(st.integers(0, 3)), seed=kinds(st.integers(0, 100)),
        batch_size=kinds(st.integers(0, 30)), t=kinds(st.floats(1.5, 1e8)),
        valid={"n_chips": typed(st.integers(1, 2)), "seed": typed(st.integers(0, 9)),
               "batch_size": typed(st.integers(1, 20)), "t": typed(st.floats(2, 1e6))})


def test_weight_noise_results_are_plain_finite_numbers_or_a_clear_error():
    def valid(res, **kw):
        assert plain(res) == res and all(0 <= m <= 100 for m in res["mean"])
    clear_error_or_valid(
        lambda eta, n_repeats, seed: accuracy_under_weight_noise(MODEL, TEST, [eta], n_repeats=n_repeats, seed=seed),
        valid, eta=kinds(st.floats(0, 2)), n_repeats=kinds(st.integers(0, 3)), seed=kinds(st.integers(0, 100)),
        valid={"eta": typed(st.floats(0, 0.5)), "n_repeats": typed(st.integers(1, 2)), "seed": typed(st.integers(0, 9))})
