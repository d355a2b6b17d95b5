"""Shared by the tests of bad input: a tiny model and split, what a clear error is, and property tests
that must see both outcomes (a clear error and a valid result), so that none passes vacuously."""
import os
import tempfile
import traceback

import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from aimc_lib.data import Split
from aimc_lib.models import resnet

# A few examples keep CI fast; AIMC_HYPOTHESIS_EXAMPLES=500 explores more. No example database,
# and Hypothesis's caches go to the temporary folder, not into the repository.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "aimc-hypothesis"))
FAST = settings(max_examples=int(os.environ.get("AIMC_HYPOTHESIS_EXAMPLES", "25")), deadline=None,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Values of the wrong kind for almost any argument.
anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True),
                     st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return resnet(8, (4, 4, 8)).eval()


def tiny_split(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                 torch.arange(n, dtype=torch.int64) % 10)


def assert_clear_error(e: BaseException):
    """Raised by aimc_lib itself (not from inside torch/numpy), as one line."""
    frames = traceback.extract_tb(e.__traceback__)
    assert "aimc_lib" in frames[-1].filename.replace("\\", "/"), (
        f"{type(e).__name__} raised from {frames[-1].filename}: {e}")
    assert str(e) and "\n" not in str(e)


def clear_error_or_valid(call, check_valid, errors=(ValueError, TypeError), valid=None, **strategies) -> None:
    """Property test: for arguments drawn from ``strategies``, ``call(**kw)`` either raises a clear
    error or returns a result that ``check_valid(result, **kw)`` accepts. Both outcomes must occur
    among the examples, so that the test cannot pass by rejecting (or accepting) everything.

    ``valid``: strategies (by argument) that draw only valid arguments; then half the examples come
    from them, so that a valid example occurs even where a random one is rarely valid."""
    seen = set()
    drawn = st.fixed_dictionaries(strategies)
    if valid is not None:
        drawn = st.one_of(st.fixed_dictionaries({**strategies, **valid}), drawn)

    @FAST
    @given(kw=drawn)
    def example(kw):
        try:
            result = call(**kw)
        except errors as e:
            assert_clear_error(e)
            seen.add("clear error")
            return
        check_valid(result, **kw)
        seen.add("valid result")

    example()
    assert seen == {"clear error", "valid result"}, (
        f"only {seen or 'nothing'} among the examples: the strategies must draw both valid and invalid arguments")


def run_cli(args, capsys):
    """Run the CLI in this process: its exit code, stdout and stderr (never a traceback)."""
    from aimc_lib.cli import main
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err
