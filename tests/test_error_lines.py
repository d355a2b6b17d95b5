"""Issue 25, class 7: every error names its argument or file and what is allowed, in one capped line;
long runs of any kind get the estimate that drift gives."""
import warnings

import pytest

from aimc_lib import checks, exercises
from aimc_lib.cli import ERROR_CHARS, _one_line, main
from aimc_lib.experiments import accuracy_under_weight_noise
from aimc_lib.training import TrainConfig, train
from clear_errors import assert_clear_error, tiny_model, tiny_split


def test_a_million_values_are_not_repeated_back():
    label = exercises.all_labels()[0]
    for answer in (list(range(1_000_000)), "x" * 1_000_000):
        with pytest.raises((TypeError, ValueError)) as e:
            exercises.check(label, answer)
        assert len(str(e.value)) < 300, len(str(e.value))
    with pytest.raises(checks.ArgumentError) as e:
        checks.number("eta", [0.1] * 1_000_000)
    assert len(str(e.value)) < 300 and "eta must be a number" in str(e.value) and "(1000000 items)" in str(e.value)


def test_command_line_errors_are_one_capped_line(tmp_path, capsys):
    assert len(_one_line(ValueError("x " * 100_000))) <= ERROR_CHARS + 30
    assert _one_line(KeyError("compensation")) == ("a required field 'compensation' is missing (in a file or "
                                                   "an argument)")
    res = tmp_path / "r.json"
    res.write_text('{"times_s": [1.0], "mean": [1e400]}')
    assert main(["figure", "--custom", str(res), "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(res) in err and len(err.strip().splitlines()) == 1


def test_a_weight_noise_sweep_of_a_hundred_million_repeats_gives_its_estimate():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"this run \(200000000 noisy-weight evaluations .*\) will take about"):
            accuracy_under_weight_noise(tiny_model(), tiny_split(), [0.0, 0.1], n_repeats=100_000_000)


def test_training_for_a_hundred_thousand_epochs_gives_its_estimate(tmp_path):
    cfg = TrainConfig(depth=8, widths=(4, 4, 8), epochs=10_000_000, batch_size=10, train_subset=20, test_subset=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"this run \(10000000 epochs\) will take about .* fewer epochs"):
            train(cfg, tiny_split(20), tiny_split(10), tmp_path / "run", progress=False, stop_after_epochs=1)


def test_api_errors_name_the_argument():
    for call, name in ((lambda: accuracy_under_weight_noise(tiny_model(), tiny_split(), [0.1], n_repeats=2.5),
                        "n_repeats"),
                       (lambda: accuracy_under_weight_noise(tiny_model(), tiny_split(), [0.1], batch_size=-1),
                        "batch_size")):
        with pytest.raises(checks.ArgumentError, match=name) as e:
            call()
        assert_clear_error(e.value)
