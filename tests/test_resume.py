"""Long accuracy-vs-time runs keep their work: an interrupted run resumes bit-identically, a run with
other arguments is refused, the results path is checked before the first chip, and a long run warns."""
import json

import pytest

from aimc_lib import resume
from aimc_lib.checks import ArgumentError
from aimc_lib.experiments import accuracy_vs_time
from aimc_lib.mapping import AnalogChip
from aimc_lib.pcm import PCMParams
from aimc_lib.result_files import load_results
from clear_errors import tiny_model, tiny_split

MODEL, TEST = tiny_model(), tiny_split()


def _interrupt_after(monkeypatch, n_chips_done):
    calls = {"n": 0}
    orig = resume.ChipLog.add

    def add(self, k, row, seconds=0.0):
        orig(self, k, row, seconds)
        calls["n"] += 1
        if calls["n"] == n_chips_done:
            raise KeyboardInterrupt
    monkeypatch.setattr(resume.ChipLog, "add", add)


@pytest.mark.parametrize("compensation", ["gdc", "adabs"])
def test_resume_after_interrupt_is_bit_identical(tmp_path, monkeypatch, compensation):
    kw = dict(times_s=[1.0, 3600.0, 1e5], n_chips=3, compensation=compensation, seed=5, progress=False,
              calibration_split=tiny_split(20, seed=2), calibration_images=20)
    whole = accuracy_vs_time(MODEL, TEST, **kw)
    out = tmp_path / "r.json"
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 2)
        with pytest.raises(KeyboardInterrupt):
            accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    saved = json.loads(resume.partial_path(out).read_text())
    assert len(saved["rows"]) == 2 and not out.exists()
    assert saved["rows"] == whole["per_chip"][:2]
    computed = []
    orig = AnalogChip.__init__

    def spy(self, model, params=PCMParams(), seed=0, **kw):
        computed.append(seed)
        orig(self, model, params, seed, **kw)
    monkeypatch.setattr(AnalogChip, "__init__", spy)
    res = accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    assert computed == [7]  # only the chip that was missing
    assert res["per_chip"] == whole["per_chip"] and res["mean"] == whole["mean"] and res["std"] == whole["std"]
    skip = ("wall_seconds", "date")
    assert {k: v for k, v in res["meta"].items() if k not in skip} == \
        {k: v for k, v in whole["meta"].items() if k not in skip}
    assert load_results(out) == res and not resume.partial_path(out).exists()


def test_resume_refuses_other_arguments(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    kw = dict(times_s=[1.0, 10.0], n_chips=2, seed=0, progress=False)
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 1)
        with pytest.raises(KeyboardInterrupt):
            accuracy_vs_time(MODEL, TEST, results_path=out, **kw)
    from aimc_lib.periphery import Periphery
    for change in (dict(seed=1), dict(times_s=[1.0, 20.0]), dict(compensation="none"),
                   dict(params=PCMParams(drift_scale=0.5)), dict(periphery=Periphery.aihwkit_like())):
        with pytest.raises(resume.ResumeError, match="different arguments"):
            accuracy_vs_time(MODEL, TEST, results_path=out, **{**kw, **change})
    with pytest.raises(resume.ResumeError, match="different arguments"):
        accuracy_vs_time(tiny_model(seed=1), TEST, results_path=out, **kw)
    with pytest.raises(resume.ResumeError, match="different arguments"):
        accuracy_vs_time(MODEL, tiny_split(seed=9), results_path=out, **kw)
    with pytest.raises(ArgumentError, match="periphery must be"):
        accuracy_vs_time(MODEL, TEST, results_path=out, periphery="aihwkit", **kw)
    resume.partial_path(out).write_text("{not json")
    with pytest.raises(resume.ResumeError, match="unreadable"):
        accuracy_vs_time(MODEL, TEST, results_path=out, **kw)


def test_results_path_checked_before_the_first_chip(tmp_path, monkeypatch):
    def no_chips(*a, **k):
        raise AssertionError("a chip was programmed before the results path was checked")
    monkeypatch.setattr(AnalogChip, "__init__", no_chips)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ArgumentError, match="results_path: .*afile is not a folder"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=afile / "r.json")
    with pytest.raises(ArgumentError, match="is a folder"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=tmp_path)
    with pytest.raises(ArgumentError, match="results_path must be a file path"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=3)
    monkeypatch.undo()
    out = tmp_path / "new" / "deeper" / "r.json"  # missing folders are created, as save_results does
    accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False, results_path=out)
    assert load_results(out)["per_chip"]


def test_long_run_warning(monkeypatch):
    from aimc_lib import experiments
    monkeypatch.setattr(experiments, "estimate_seconds", lambda *a: 5 * 3600.0)
    with pytest.warns(UserWarning, match="about 5.0 hours"):
        accuracy_vs_time(MODEL, TEST, [1.0], n_chips=1, progress=False)
