"""Issue 25, class 1: an output is never an input of another kind. Every file a run writes is compared,
by resolved identity (links and hard links followed), with every input of the run: model file, data
folder and its files, partial file, calibration, and every file the process has read."""
import hashlib
import os
import shutil

import pytest

from aimc_lib import checks
from aimc_lib.checkpoints import load_state, save_atomic
from aimc_lib.checks import ArgumentError
from aimc_lib.experiments import accuracy_vs_time
from clear_errors import run_cli, tiny_model, tiny_split


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def own_data(tmp_path, data_path):
    """A writable copy of the CIFAR-10 test batch (so that a failed check would really destroy it)."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(os.path.join(data_path, "test_batch.npz"), folder / "test_batch.npz")
    return folder


def test_drift_refuses_to_write_its_own_test_batch(tmp_path, tiny_pt, own_data, capsys, monkeypatch):
    data_file = own_data / "test_batch.npz"
    before = sha(data_file)
    link = tmp_path / "link.json"
    link.symlink_to(data_file)
    hard = tmp_path / "hard.json"
    os.link(data_file, hard)
    base = ["drift", tiny_pt, "--chips", "1", "--times", "1", "--test-subset", "20", "--force"]
    for out in (data_file, link, hard, own_data / ".." / "data" / "test_batch.npz"):
        rc, _, err = run_cli([*base, "--out", out, "--data", own_data], capsys)
        assert rc == 2 and "is also an input" in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("AIMC_DATA", str(own_data))  # the data folder from the environment, not --data
    rc, _, err = run_cli([*base, "--out", data_file], capsys)
    assert rc == 2 and "is also an input" in err
    assert sha(data_file) == before and link.is_symlink() and sorted(p.name for p in own_data.iterdir()) == [
        "test_batch.npz"]


def test_drift_refuses_an_out_whose_partial_file_is_an_input(tmp_path, tiny_pt, own_data, capsys):
    model = tmp_path / "r.json.partial.json"
    shutil.copy(tiny_pt, model)
    before = sha(model)
    rc, _, err = run_cli(["drift", model, "--out", tmp_path / "r.json", "--chips", "1", "--times", "1",
                          "--test-subset", "20", "--data", own_data, "--force"], capsys)
    assert rc == 2 and "partial file" in err and sha(model) == before


def test_train_refuses_the_data_folder_as_run_dir(tmp_path, own_data, capsys):
    before = sha(own_data / "test_batch.npz")
    rc, _, err = run_cli(["train", own_data, "--depth", "8", "--epochs", "1", "--force", "--quiet",
                          "--data", own_data], capsys)
    assert rc == 2 and "input folder" in err
    assert sorted(p.name for p in own_data.iterdir()) == ["test_batch.npz"] and sha(own_data / "test_batch.npz") == before


def test_figure_refuses_an_out_that_is_its_result_through_a_link(tmp_path, capsys):
    res = tmp_path / "r.json"
    res.write_text("{}")
    link = tmp_path / "r.png"
    link.symlink_to(res)
    rc, _, err = run_cli(["figure", "--custom", res, "--out", link, "--force"], capsys)
    assert rc == 2 and "is also an input" in err and res.read_text() == "{}"


def test_accuracy_vs_time_refuses_a_results_path_that_is_a_checkpoint(tmp_path):
    ckpt = tmp_path / "model.pt"
    save_atomic({"model": tiny_model().state_dict()}, ckpt)
    before = sha(ckpt)
    kw = dict(times_s=[1.0], n_chips=1, progress=False)
    with pytest.raises(ArgumentError, match="not an accuracy-vs-time result"):
        accuracy_vs_time(tiny_model(), tiny_split(), results_path=ckpt, **kw)
    load_state(ckpt)  # now also an input this process read: refused by identity, even through a link
    link = tmp_path / "link.json"
    link.symlink_to(ckpt)
    with pytest.raises(ArgumentError, match="is also an input"):
        accuracy_vs_time(tiny_model(), tiny_split(), results_path=link, **kw)
    assert sha(ckpt) == before
    # a result file may be replaced by a run (the valid outcome), and nothing is left beside it
    out = tmp_path / "r.json"
    accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    res = accuracy_vs_time(tiny_model(), tiny_split(), results_path=out, **kw)
    assert res["per_chip"][0][0] >= 0 and sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "model.pt",
                                                                                         "r.json"]


def test_same_file_follows_links_and_missing_files(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    (tmp_path / "l").symlink_to(a)
    assert checks.same_file(tmp_path / "l", a) and checks.same_file(tmp_path / "sub" / ".." / "b", tmp_path / "b")
    assert not checks.same_file(a, tmp_path / "b")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ArgumentError, match="cannot be resolved|is a folder|not a regular|exists"):
        checks.output_file(tmp_path / "loop", "--out", force=True)


def test_a_training_run_may_replace_its_own_files_read_before(tmp_path, data_path):
    """Its own checkpoint, read by an earlier call in this process, is the run's to replace; a data file is not."""
    from aimc_lib.training import TrainConfig, check_run_outputs
    run = tmp_path / "run"
    run.mkdir()
    save_atomic({"model": tiny_model().state_dict()}, run / "checkpoint.pt")
    load_state(run / "checkpoint.pt")
    cfg = TrainConfig(depth=8, widths=(4, 4, 8), epochs=1)
    check_run_outputs(run, cfg)
    (run / "model.pt").symlink_to(os.path.join(data_path, "test_batch.npz"))
    checks.note_input(os.path.join(data_path, "test_batch.npz"))
    with pytest.raises(ArgumentError, match="model.pt.*is also an input"):
        check_run_outputs(run, cfg)
