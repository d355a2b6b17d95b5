"""Binder: a pinned, CPU-only environment at the versions CI tests, in fast mode by default."""
import os
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_binder_installs_cpu_torch_and_the_tested_pins():
    lines = [line for line in (BINDER / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert ".[notebooks]" in lines  # aimc_lib from the repository, with the notebooks' extra
    binder = _pins(lines)
    tested = _pins((ROOT / "constraints.txt").read_text().splitlines())
    assert binder.pop("torch") == tested["torch"] + "+cpu"
    assert binder.pop("torchvision") == tested["torchvision"] + "+cpu"
    assert binder and all(tested[name] == version for name, version in binder.items()), binder
    # Every core dependency of aimc_lib and of the notebooks' extra is pinned.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    names = {re.split(r"[<>=!\[ ]", r)[0].lower() for r in wanted}
    assert names <= set(binder) | {"torch", "torchvision"}, names - set(binder)
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert not (BINDER / "postBuild").exists()


def test_binder_start_sets_fast_mode_unless_asked_otherwise(monkeypatch):
    start = BINDER / "start"
    assert os.access(start, os.X_OK)
    env = {k: v for k, v in os.environ.items() if k != "AIMC_FAST"}
    out = subprocess.run([str(start), "sh", "-c", 'echo "$AIMC_FAST"'], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "1"
    out = subprocess.run([str(start), "sh", "-c", 'echo "$AIMC_FAST"'], capture_output=True, text=True,
                         env={**env, "AIMC_FAST": "0"})
    assert out.stdout.strip() == "0"
    from aimc_lib.config import fast_mode, sizes
    for value, fast in (("1", True), ("0", False)):  # what start sets; what `%env AIMC_FAST=0` sets
        monkeypatch.setenv("AIMC_FAST", value)
        assert fast_mode() is fast
    assert sizes()["chips"] == 10
