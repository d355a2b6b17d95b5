"""The pre-flight check of `make book` / `make test` (book_tools/doctor.py): its logic on made-up
machines (most problems cannot be produced for real here), and one real run. Nothing is downloaded."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book_tools"))
import doctor  # noqa: E402

GOOD = doctor.Facts(python=(3, 11), python_executable="/usr/bin/python3", has_venv_module=True, has_ensurepip=True,
                    venv_ready=False, has_npm=True, widgets_built=False, free_gib=50.0, cifar_local="/data/cifar10",
                    aimc_data="/data/cifar10", network=None, ci=False)


def _diagnose(target="book", **changes):
    return doctor.diagnose(dataclasses.replace(GOOD, **changes), target)


def test_a_ready_machine_has_no_problems():
    assert _diagnose() == []
    assert _diagnose(python=(3, 12)) == []
    assert _diagnose(cifar_local=None, aimc_data=None, network=True) == []


@pytest.mark.parametrize("changes, words", [
    ({"python": (3, 10)}, ["Python 3.10", "make PYTHON=python3.11 book"]),
    ({"has_ensurepip": False}, ["ensurepip", "python3-venv"]),
    ({"has_venv_module": False}, ["venv", "python3-venv"]),
    ({"has_npm": False}, ["npm is missing"]),
    ({"free_gib": 3.0}, ["3.0 GiB free", "CPU-only"]),
    ({"venv_ready": True, "free_gib": 1.0}, ["1.0 GiB free", "build needs"]),
    ({"cifar_local": None, "aimc_data": None, "network": False}, ["cannot be reached", "AIMC_DATA"]),
    ({"cifar_local": None, "aimc_data": "/nowhere"}, ["AIMC_DATA=/nowhere holds no CIFAR-10"]),
    ({"cifar_local": None, "aimc_data": None, "ci": True}, ["CI never downloads"]),
])
def test_each_missing_prerequisite_is_named_with_what_to_do(changes, words):
    problems = _diagnose(**changes)
    assert len(problems) == 1, problems
    for w in words:
        assert w in problems[0]


def test_every_problem_at_once_and_done_steps_skip_their_checks():
    problems = _diagnose("test", python=(3, 10), has_ensurepip=False, has_npm=False, free_gib=1.0, cifar_local=None,
                         aimc_data=None, network=False)
    assert len(problems) == 5 and "make PYTHON=python3.11 test" in problems[0]
    # A finished .venv needs no venv module or room for it; built widget JavaScript needs no npm.
    assert _diagnose(venv_ready=True, has_venv_module=False, has_ensurepip=False, free_gib=5.0,
                     has_npm=False, widgets_built=True) == []


def test_gather_looks_for_the_data_before_the_network(tmp_path):
    data = tmp_path / "cifar10"
    data.mkdir()
    for name in ["test_batch.npz"] + [f"data_batch_{i}.npz" for i in range(1, 6)]:
        (data / name).write_bytes(b"")
    calls = []

    def connect(host_port):
        calls.append(host_port)
        return False

    facts = doctor.gather(tmp_path / ".venv", {"AIMC_DATA": str(data)}, connect)
    assert facts.cifar_local == str(data) and facts.network is None and calls == []
    assert facts.python == sys.version_info[:2] and not facts.venv_ready and facts.free_gib > 0
    (data / "data_batch_5.npz").unlink()
    facts = doctor.gather(tmp_path / ".venv", {"AIMC_DATA": str(data)}, connect)
    assert facts.cifar_local is None and calls == []  # a wrong AIMC_DATA is reported, not worked around
    tv = tmp_path / "tv" / "cifar-10-batches-py"
    tv.mkdir(parents=True)
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (tv / name).write_bytes(b"")
    assert doctor.has_cifar10(tmp_path / "tv")
    facts = doctor.gather(tmp_path / ".venv", {}, connect)
    if facts.cifar_local is None:  # nothing in the download cache of this machine: the network is asked
        assert calls == [doctor.CIFAR_HOST] and facts.network is False
    assert doctor.gather(tmp_path / ".venv", {"CI": "true"}, connect).network is None


def test_doctor_runs_here_with_the_system_python(data_path):
    """As `make doctor` runs it: before the virtual environment, standard library only."""
    proc = subprocess.run([sys.executable, "-I", str(ROOT / "book_tools" / "doctor.py"), "--for", "test"],
                          capture_output=True, text=True, env={"AIMC_DATA": data_path, "PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("doctor: ok: Python 3.") and data_path in proc.stdout
    proc = subprocess.run([sys.executable, "-I", str(ROOT / "book_tools" / "doctor.py")], capture_output=True,
                          text=True, env={"AIMC_DATA": "/nonexistent", "PATH": os.environ["PATH"]})
    assert proc.returncode == 1 and "AIMC_DATA=/nonexistent holds no CIFAR-10" in proc.stderr
