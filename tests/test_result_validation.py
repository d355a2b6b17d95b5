"""Issue 25, class 6: result files (figure inputs and resume partials) are validated like arguments; a
half-right file is named with what is wrong in it, never drawn or resumed."""
import json

import pytest

from aimc_lib.cli import main
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.result_files import check_result, load_results
from aimc_lib.resume import ResumeError, partial_path
from clear_errors import tiny_model, tiny_split

GOOD = {"times_s": [1.0, 10.0], "mean": [50.0, 40.0], "std": [0.0, 0.0], "per_chip": [[50.0, 40.0]],
        "meta": {"n_chips": 1, "fp32_accuracy": 60.0}}


@pytest.mark.parametrize("edit,match", [
    (dict(std=[float("nan"), 0.0]), "'std' must be a list of 2 numbers \\(finite"),
    (dict(std=[-1.0, 0.0]), "'std' at 1 s is -1.0 but its chips"),
    (dict(mean=[55.0, 40.0]), "'mean' at 1 s is 55.0 but its chips .* give 50.0"),
    (dict(mean=[121.0, 40.0], per_chip=[[121.0, 40.0]]), "accuracies must be percentages in \\[0, 100\\]"),
    (dict(times_s=[10.0, 1.0]), "'times_s' must be >= 0 and increasing"),
    (dict(per_chip=[[50.0, float("inf")]]), "'per_chip' must be a list of rows of 2 numbers \\(finite"),
    (dict(meta={"n_chips": 1, "fp32_accuracy": 150}), "meta.fp32_accuracy must be a percentage"),
])
def test_half_right_result_files_are_named_with_what_is_wrong(tmp_path, edit, match):
    path = tmp_path / "res.json"
    path.write_text(json.dumps({**GOOD, **edit}))
    with pytest.raises(ValueError, match=f"{path}: {match}"):
        load_results(path)
    check_result(GOOD)  # the unedited file is valid


def test_figure_refuses_a_time_of_zero_on_its_log_axis(tmp_path, capsys):
    path = tmp_path / "res.json"
    path.write_text(json.dumps({**GOOD, "times_s": [0.0, 10.0]}))
    assert main(["figure", "--custom", str(path), "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert "--custom" in err and "time of 0 s" in err and not (tmp_path / "f.png").exists()


def test_an_edited_partial_file_is_not_resumed(tmp_path):
    out = tmp_path / "r.json"
    kw = dict(times_s=[1.0, 10.0], n_chips=2, progress=False)
    res = accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    # a partial file as an interrupted run leaves it, then edited to 121 %
    first = {"fingerprint": None, "rows": [res["per_chip"][0]], "seconds": 1.0}
    out.unlink()

    class Stop(Exception):
        pass

    import aimc_lib.resume as resume
    orig = resume.ChipLog.add

    def add_then_stop(self, k, row, seconds=0.0):
        orig(self, k, row, seconds)
        raise Stop
    resume.ChipLog.add = add_then_stop
    try:
        with pytest.raises(Stop):
            accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    finally:
        resume.ChipLog.add = orig
    saved = json.loads(partial_path(out).read_text())
    assert saved["rows"] == first["rows"]
    saved["rows"][0][0] = 121.0
    partial_path(out).write_text(json.dumps(saved))
    with pytest.raises(ResumeError, match="not 2 accuracies in \\[0, 100\\] each"):
        accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    assert not out.exists()


def test_a_result_path_that_is_no_file_is_named_for_what_it_is(tmp_path):
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    for path, match in ((loop, "is a symbolic link loop"), (folder, "is a folder"),
                        (tmp_path / "none.json", "does not exist")):
        with pytest.raises(ValueError, match=f"result file {path} {match}"):
            load_results(path)
