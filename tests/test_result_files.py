"""Result files: written atomically, read back with their structure checked, a bad file named."""
import json

import pytest
from hypothesis import strategies as st

from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.result_files import load_results, save_results
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
