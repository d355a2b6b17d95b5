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
