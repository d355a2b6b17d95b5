"""Result files: written atomically, read back with their structure checked, a bad file named."""
import json

import numpy as np
import pytest
from hypothesis import strategies as st

from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.result_files import load_results, paired_changes, save_results
from clear_errors import clear_error_or_valid, tiny_model, tiny_split

MODEL, TEST = tiny_model(), tiny_split()

json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=3),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                   max_size=3), max_leaves=8)


def test_load_results_names_the_file_or_gives_a_result(tmp_path_factory):
    good = {"times_s": [1.0, 10.0], "mean": [50.0, 40.0], "std": [0.0, 0.0], "per_chip": [[50.0, 40.0]],
            "meta": {"n_chips": 1}}
    folder = tmp_path_factory.mktemp("r")

    def call(extra):
        path = folder / "res.json"
        path.write_text(json.dumps({**good, **extra}))
        try:
            return load_results(path)
        except ValueError as e:
            assert str(path) in str(e)
            raise

    def valid(res, extra):
        assert len(res["mean"]) == len(res["times_s"]) == len(res["per_chip"][0])

    keys = st.sampled_from(["times_s", "mean", "std", "per_chip", "meta"])
    clear_error_or_valid(call, valid, errors=(ValueError,),
                         extra=st.one_of(st.dictionaries(keys, json_values),
                                         st.dictionaries(st.just("meta"), st.dictionaries(st.text(max_size=4), json_values))))


def test_saved_results_round_trip_with_structure_check(tmp_path):
    res = accuracy_vs_time(MODEL, TEST, [1.0, 2.0], n_chips=2, progress=False)
    save_results(res, tmp_path / "a.json")
    assert load_results(tmp_path / "a.json") == res
    bad = dict(res, per_chip=[[1.0], [2.0]])
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"b.json: 'per_chip' must be a list of rows of 2 numbers"):
        load_results(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="c.json is not a JSON result file"):
        load_results(tmp_path / "c.json")


def test_paired_changes_are_chip_by_chip_on_the_same_chips():
    def result(seeds, rows, test_images=10_000):
        return {"times_s": [1.0, 2.0], "per_chip": rows, "meta": {"seeds": seeds, "test_images": test_images}}

    reference = result([0, 1, 2], [[90.0, 80.0], [88.0, 70.0], [86.0, 75.0]])
    other = result([0, 1, 2, 3], [[91.0, 84.0], [89.0, 76.0], [87.0, 78.0], [50.0, 50.0]])  # a 4th chip: not paired
    mean, se = paired_changes(other, reference, [2.0, 1.0])
    assert mean.tolist() == pytest.approx([13 / 3, 1.0]) and se[1] == pytest.approx(0.0)
    assert se[0] == pytest.approx(np.std([4.0, 6.0, 3.0], ddof=1) / np.sqrt(3))
    for bad in (result([1, 2, 3], other["per_chip"][:3]), result([0, 1, 2], other["per_chip"][:3], test_images=1000)):
        with pytest.raises(ValueError, match="same chips"):
            paired_changes(bad, reference, [1.0])
    with pytest.raises(ValueError, match="same chips"):  # one chip has no standard error
        paired_changes(result([0], [[1.0, 1.0]]), result([0], [[1.0, 1.0]]), [1.0])
