import json
import subprocess
import sys

import pytest

from aimc_lib.cli import build_parser, main


@pytest.mark.parametrize("cmd", ["train", "evaluate", "drift", "figure"])
def test_help_explains_every_option(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[cmd]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{cmd} {action.option_strings} has no help"
            assert action.option_strings[-1] in out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "aimc_lib", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "drift" in out.stdout


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path / "m.pt"), "--data", str(tmp_path)])
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_train_evaluate_drift_figure_end_to_end(tmp_path, data_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(run), "--depth", "8", "--widths", "8", "8", "16", "--epochs", "1",
                 "--train-subset", "320", "--test-subset", "100", "--batch-size", "64", "--quiet",
                 "--data", data_path]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run / "model.pt"), "--test-subset", "200", "--data", data_path]) == 0
    acc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"]
    assert 0 <= acc <= 100
    out = tmp_path / "drift.json"
    assert main(["drift", str(run / "model.pt"), "--out", str(out), "--chips", "2", "--times", "1", "86400",
                 "--test-subset", "100", "--data", data_path]) == 0
    res = json.loads(out.read_text())
    assert len(res["per_chip"]) == 2 and res["meta"]["compensation"] == "gdc"
    png = tmp_path / "fig.png"
    assert main(["figure", "--direct", str(out), "--fp32-accuracy", str(acc), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    svg = tmp_path / "fig.svg"  # baseline taken from the results' metadata
    assert main(["figure", "--custom", str(out), "--out", str(svg)]) == 0
    assert f"{res['meta']['fp32_accuracy']:.1f} %" in svg.read_text()
    assert main(["figure", "--out", str(svg)]) == 2  # no results: one clear error


# ---------------------------------------------------------------- issue 10: outputs never lost, errors in one line

import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from aimc_lib.checkpoints import save_atomic  # noqa: E402
from aimc_lib.models import resnet  # noqa: E402
from aimc_lib.resume import partial_path  # noqa: E402
from aimc_lib.training import TrainConfig  # noqa: E402
from clear_errors import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "aimc_lib" / "results" / "resnet32-custom_gdc.json"


def test_drift_output_rules(tmp_path, tiny_pt, capsys):
    model_bytes = tiny_pt.read_bytes()
    no_data = tmp_path / "no-data"  # outputs are checked before the data is even looked for
    for out in (tiny_pt, tmp_path / "link.json"):
        if out.name == "link.json":
            out.symlink_to(tiny_pt)
        rc, _, err = run_cli(["drift", tiny_pt, "--out", out, "--force", "--data", no_data], capsys)
        assert rc == 2 and "is also an input" in err and "would destroy the input" in err
    assert tiny_pt.read_bytes() == model_bytes
    rc, _, err = run_cli(["drift", tiny_pt, "--out", tmp_path / "missing" / "r.json", "--data", no_data], capsys)
    assert rc == 2 and f"folder {tmp_path / 'missing'} does not exist" in err
    rc, _, err = run_cli(["drift", tiny_pt, "--out", tiny_pt / "r.json", "--data", no_data], capsys)
    assert rc == 2 and "is not a folder" in err
    rc, _, err = run_cli(["drift", tiny_pt, "--out", tmp_path, "--data", no_data], capsys)
    assert rc == 2 and "is a folder" in err
    if Path("/dev/null").exists():
        rc, _, err = run_cli(["drift", tiny_pt, "--out", "/dev/null", "--force", "--data", no_data], capsys)
        assert rc == 2 and "not a regular file" in err
    existing = tmp_path / "old.json"
    existing.write_text("keep me")
    rc, _, err = run_cli(["drift", tiny_pt, "--out", existing, "--data", no_data], capsys)
    assert rc == 2 and "exists; pass --force" in err and existing.read_text() == "keep me"
    assert err.count("\n") == 1  # one line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder_reported_up_front(tmp_path, tiny_pt, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc, _, err = run_cli(["drift", tiny_pt, "--out", ro / "r.json", "--data", tmp_path / "no-data"], capsys)
        assert rc == 2 and "cannot write in folder" in err
    finally:
        ro.chmod(0o700)


def test_drift_force_replaces_and_prints_the_path_written(tmp_path, tiny_pt, data_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("old")
    args = ["drift", tiny_pt, "--out", out, "--chips", "1", "--times", "1", "--test-subset", "50",
            "--data", data_path, "--force"]
    rc, stdout, _ = run_cli(args, capsys)
    assert rc == 0 and stdout.strip().splitlines()[-1] == f"wrote {out}"
    assert json.loads(out.read_text())["meta"]["test_images"] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "tiny.pt"]  # no temporary or partial file


def test_drift_refuses_to_overwrite_a_shipped_model_named_as_its_input(tmp_path, capsys):
    from aimc_lib import zoo
    shipped = zoo.WEIGHTS_DIR / zoo.manifest()["resnet32-fp32"]["file"]
    before = shipped.read_bytes()
    rc, _, err = run_cli(["drift", "resnet32-fp32", "--out", shipped, "--force", "--data", tmp_path], capsys)
    assert rc == 2 and "is also an input" in err
    assert shipped.read_bytes() == before


def test_figure_output_rules(tmp_path, capsys):
    res = tmp_path / "r.json"
    res.write_text(RESULT.read_text())
    for outs, msg in [([res], "is also an input"), ([tmp_path / "f"], "unknown image type '(no extension)'"),
                      ([tmp_path / "f.png", tmp_path / "f.png"], "names a file twice"),
                      ([tmp_path / "f.docx"], "unknown image type 'docx'"),
                      ([tmp_path / "nope" / "f.png"], "does not exist")]:
        rc, _, err = run_cli(["figure", "--custom", res, "--out", *outs, "--force"], capsys)
        assert rc == 2 and msg in err, err
    png = tmp_path / "f.png"
    rc, stdout, _ = run_cli(["figure", "--custom", res, "--out", png], capsys)
    assert rc == 0 and stdout.strip() == f"wrote {png}" and png.read_bytes()[:4] == b"\x89PNG"
    before = png.read_bytes()
    rc, _, err = run_cli(["figure", "--custom", res, "--out", png], capsys)
    assert rc == 2 and "exists; pass --force" in err and png.read_bytes() == before
    assert run_cli(["figure", "--custom", res, "--out", png, "--force"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "r.json"]


def test_figure_checks_its_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"times_s": [1.0], "mean": [1.0], "std": [0.0], "per_chip": [[1.0, 2.0]], "meta": {}}))
    rc, _, err = run_cli(["figure", "--custom", bad, "--out", tmp_path / "f.png"], capsys)
    assert rc == 2 and str(bad) in err and "per_chip" in err
    other = json.loads(RESULT.read_text())
    other["meta"]["test_images"] = 1000
    (tmp_path / "small.json").write_text(json.dumps(other))
    rc, _, err = run_cli(["figure", "--custom", RESULT, "--direct", tmp_path / "small.json",
                          "--out", tmp_path / "f.svg"], capsys)
    assert rc == 0 and "warning: the figure mixes test sizes: --custom has 10000, --direct 1000" in err
    assert "warning: --custom" in err and "hold the same model" in err


def test_bad_arguments_are_one_line_errors(tmp_path, tiny_pt, capsys):
    no_data = tmp_path / "no-data"
    cases = [(["--threads", "100000"], "--threads must be an integer in 0.."),
             (["--device", "cuda:7"] if torch.cuda.is_available() else ["--device", "cuda"], "--device"),
             (["--device", "tpu"], "unknown device 'tpu'"),
             (["--times", "10", "1"], "--times must be strictly increasing"),
             (["--times", "nan"], "--times[0]"), (["--times", "-1"], "--times[0]"),
             (["--times", "1e300"], "beyond float32 range"),
             (["--chips", "0"], "--chips must be an integer in 1..1000000"), (["--seed", "-3"], "--seed must be"),
             (["--test-subset", "10001"], "--test-subset"), (["--drift-scale", "-1"], "--drift-scale must be"),
             (["--read-noise-scale", "inf"], "--read-noise-scale")]
    for extra, msg in cases:
        rc, _, err = run_cli(["drift", tiny_pt, "--out", tmp_path / "r.json", "--data", no_data, *extra], capsys)
        assert rc == 2 and msg in err and err.count("\n") == 1, (extra, err)
    rc, _, err = run_cli(["drift", tmp_path / "nope.pt", "--out", tmp_path / "r.json", "--data", no_data], capsys)
    assert rc == 2 and "neither a pretrained model" in err


def test_debug_shows_the_traceback(tmp_path, tiny_pt):
    from aimc_lib.checks import ArgumentError
    args = ["drift", str(tiny_pt), "--out", str(tmp_path / "r.json"), "--chips", "0"]
    assert main(args) == 2
    with pytest.raises(ArgumentError, match="--chips"):
        main(["--debug", *args])
    with pytest.raises(ArgumentError, match="--chips"):
        main([*args, "--debug"])


def _checkpoint(run, cfg, epoch, finished=False):
    run.mkdir(exist_ok=True)
    sd = resnet(cfg.depth, cfg.widths).state_dict()
    save_atomic({"model": sd, "optimizer": {}, "epoch": epoch, "config": dataclasses.asdict(cfg), "log": []},
                run / "checkpoint.pt")
    if finished:
        save_atomic({"model": sd, "meta": {"config": dataclasses.asdict(cfg)}}, run / "model.pt")


def test_train_run_dir_rules(tmp_path, tiny_pt, capsys):
    base = ["--depth", "8", "--widths", "4", "4", "8", "--epochs", "2", "--train-subset", "200",
            "--test-subset", "100", "--batch-size", "50", "--quiet", "--data", tmp_path / "no-data"]
    cfg = TrainConfig(depth=8, widths=(4, 4, 8), epochs=2, train_subset=200, test_subset=100, batch_size=50)
    afile = tmp_path / "afile"
    afile.write_text("x")
    rc, _, err = run_cli(["train", afile, *base], capsys)
    assert rc == 2 and "is a file, not a folder" in err
    other = tmp_path / "home"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    rc, _, err = run_cli(["train", other, *base], capsys)
    assert rc == 2 and "thesis.tex" in err and (other / "thesis.tex").read_text() == "precious"
    run = tmp_path / "run"
    _checkpoint(run, cfg, 2, finished=True)
    rc, _, err = run_cli(["train", run, *base], capsys)
    assert rc == 2 and "is a finished run" in err and (run / "model.pt").exists()
    _checkpoint(run, dataclasses.replace(cfg, epochs=3), 1)
    rc, _, err = run_cli(["train", run, *base], capsys)
    assert rc == 2 and "different config (epochs 3 -> 2)" in err
    rc, _, err = run_cli(["train", run, *base, "--force"], capsys)
    assert rc == 2 and "CIFAR-10" in err  # accepted, then stopped by the missing data
    assert not (run / "checkpoint.pt").exists() and not (run / "model.pt").exists()  # --force: started over
    _checkpoint(run, cfg, 1)
    rc, out, err = run_cli(["train", run, *base], capsys)
    assert "resume after epoch 1 of 2" in out and "CIFAR-10" in err
    rc, _, err = run_cli(["train", run, "--recipe", "custom", *base], capsys)
    assert rc == 2 and "--recipe custom fine-tunes a trained model: give it with --init-from" in err
    save_atomic({"model": {}, "meta": {}}, run / "model.pt")
    rc, _, err = run_cli(["train", run, "--recipe", "custom", "--init-from", run / "model.pt", *base, "--force"],
                         capsys)
    assert rc == 2 and "lies in RUN_DIR" in err
    rc, _, err = run_cli(["train", tmp_path / "new", "--recipe", "custom", "--init-from", tiny_pt,
                          *base[:2], "--widths", "8", "8", "16", *base[6:]], capsys)  # tiny.pt is 4/4/8
    assert rc == 2 and "does not fit this network architecture" in err and "shape mismatches" in err
    assert not (tmp_path / "new").exists()
    for extra, msg in [(["--lr-max", "nan"], "TrainConfig.lr_max"), (["--weight-decay", "-1"], "weight_decay"),
                       (["--label-smoothing", "1"], "label_smoothing"), (["--batch-size", "500"], "batch_size"),
                       (["--threads", "0", "--device", "nope"], "unknown device")]:
        rc, _, err = run_cli(["train", tmp_path / "new", *base, *extra], capsys)
        assert rc == 2 and msg in err, (extra, err)


SLOW_AFTER_EACH_CHIP = """
import sys, time
import signal
from aimc_lib import resume
from aimc_lib.cli import main
# Ctrl-C as in a terminal, even when the tests run in a background job (which ignores SIGINT, and a
# Python started with SIGINT ignored installs no KeyboardInterrupt handler)
signal.signal(signal.SIGINT, signal.default_int_handler)
orig = resume.ChipLog.add
def add(self, *a, **k):
    orig(self, *a, **k)
    time.sleep(300)  # a long chip: the test interrupts the process here
resume.ChipLog.add = add
sys.exit(main(sys.argv[1:]))
"""


def _wait_for_rows(path, n, proc, timeout_s=180):
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        assert proc.poll() is None, proc.communicate()
        if path.exists() and len(json.loads(path.read_text())["rows"]) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never held {n} chips")


def test_drift_resumes_after_kill_and_ctrl_c(tmp_path, tiny_pt, data_path, capsys):
    args = ["drift", str(tiny_pt), "--chips", "3", "--times", "1", "3600", "--test-subset", "100",
            "--seed", "4", "--data", data_path, "--threads", "1"]
    whole = tmp_path / "whole.json"
    assert main([*args, "--out", str(whole)]) == 0
    out = tmp_path / "r.json"
    part = partial_path(out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", SLOW_AFTER_EACH_CHIP, *args, "--out", str(out)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rows(part, 1, p)
        p.kill()  # no chance to clean up: the saved chip must survive
        p.wait()
        assert not out.exists() and len(json.loads(part.read_text())["rows"]) == 1
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_rows(part, 2, p)  # resumed: chip 2 follows the saved chip 1
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "rerun the same command to resume" in stderr and "Traceback" not in stderr
    assert "resuming" in stdout
    rc, _, err = run_cli([*args, "--out", out, "--seed", "5"], capsys)  # other arguments: refused
    assert rc == 2 and "different arguments" in err and len(json.loads(part.read_text())["rows"]) == 2
    assert main([*args, "--out", str(out)]) == 0
    res, ref = json.loads(out.read_text()), json.loads(whole.read_text())
    assert res["per_chip"] == ref["per_chip"] and res["mean"] == ref["mean"] and res["std"] == ref["std"]
    assert not part.exists()
    skip = ("wall_seconds", "date")
    assert {k: v for k, v in res["meta"].items() if k not in skip} == \
        {k: v for k, v in ref["meta"].items() if k not in skip}
