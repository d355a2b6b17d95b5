"""Issue 25, class 2: a run owns its output (and the output's partial file) for its whole life, by an OS
lock: a second run on the same output is refused at once, and a killed run's stale lock is taken over."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from aimc_lib.checkpoints import save_atomic
from aimc_lib.checks import OutputBusy, OutputLock, lock_path
from aimc_lib.models import resnet

HOLD = ("import sys, time; from aimc_lib.checks import OutputLock; l = OutputLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(60)")


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [os.getcwd(), os.environ.get("PYTHONPATH", "")])}


def test_a_lock_held_by_another_process_refuses_at_once_and_dies_with_it(tmp_path):
    out = tmp_path / "r.json"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with pytest.raises(OutputBusy, match=f"being written by another run \\(pid {holder.pid}"):
            OutputLock(out).acquire()
        assert time.perf_counter() - t0 < 1.0  # refused at once, not after a wait
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(out).exists()  # the killed run left its lock file: stale, recognised as such
    with OutputLock(out):
        with OutputLock(out):  # reentrant within one process (the command line, then the run it calls)
            pass
        assert lock_path(out).exists()
    assert not lock_path(out).exists()  # released: nothing left beside the output


def test_two_drift_runs_started_together_on_one_out(tmp_path, data_path):
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"
    save_atomic({"model": resnet(8, (4, 4, 8)).state_dict(), "meta": {"config": {"depth": 8, "widths": [4, 4, 8]}}},
                model)
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "aimc_lib", "drift", str(model), "--out", str(out), "--chips", "3", "--times",
           "1", "10", "100", "1000", "--test-subset", "500", "--data", data_path, "--threads", "1"]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
            for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    err = next(e for rc, _, e in results if rc == 2)
    assert ("being written by another run" in err or "exists; pass --force" in err) and len(err.strip().splitlines()) == 1
    res = json.loads(out.read_text())  # the winner's result is intact
    assert len(res["per_chip"]) == 3 and res["meta"]["test_images"] == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "tiny.pt"]  # no partial or lock file left


def test_studies_skip_a_result_another_run_is_writing(tmp_path, data_path, capsys):
    """Two `scripts/studies.py` runs share the list: a result whose lock another run holds is skipped."""
    from project_scripts import load_script
    studies = load_script("studies")
    names = ["weight_noise.json", "resnet32-custom_adabs_unaugmented-calibration.json"] + [
        f"{m}_gdc_{v}.json" for v in studies.VARIANTS for m in studies.MODELS]
    busy = tmp_path / names.pop()  # the last grid: another run is writing it
    for n in names:
        (tmp_path / n).write_text("{}")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(busy)], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert studies.main(["--out", str(tmp_path), "--threads", "1"]) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    out = capsys.readouterr().out
    assert "busy, skipped: results_path" in out and f"{busy} is being written by another run (pid {holder.pid}" in out
    assert out.count("exists, skipped") == len(names) and not busy.exists()
