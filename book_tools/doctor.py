"""Pre-flight check of ``make book`` and ``make test``: names every missing prerequisite at once,
before anything is downloaded or installed.

    python3 book_tools/doctor.py [--for book|test] [--venv .venv]

It checks the Python version (3.11 is the one the pins and CI test), that this Python can create
a virtual environment with pip in it (``venv`` and ``ensurepip``: Debian's ``python3-venv``), ``npm``
for the widget JavaScript, free disk space for what is still to be installed, and CIFAR-10 (a local
copy through ``AIMC_DATA`` or the download cache) or else a connection to its download site.
Steps that are already done (a finished ``.venv``, built widget JavaScript) skip their checks.
Only the standard library is used: it runs before the virtual environment exists. Exit code 1 and
one line per problem, with what to do, when something is missing.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import shutil
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTED_PYTHON = (3, 11)
WIDGETS_JS = ROOT / "book" / "_static" / "jupyter-widgets" / "embed-amd.js"
CIFAR_HOST = ("www.cs.toronto.edu", 443)  # torchvision's CIFAR-10 download
CIFAR_CACHE = Path("~/.cache/aimc_lib/cifar10").expanduser()
GIB = 1024 ** 3
# Free space needed for a new .venv (torch with its CUDA libraries on Linux: about 6 GB on disk,
# plus pip's downloads) and for the build and its outputs once the environment is there.
VENV_GIB = 10
BUILD_GIB = 2


@dataclasses.dataclass
class Facts:
    """What the checks look at, gathered from the machine (or made up by the tests)."""
    python: tuple[int, int]
    python_executable: str
    has_venv_module: bool
    has_ensurepip: bool
    venv_ready: bool
    has_npm: bool
    widgets_built: bool
    free_gib: float
    cifar_local: str | None          # where a local copy was found, else None
    aimc_data: str | None            # $AIMC_DATA as set
    network: bool | None             # None: not checked (not needed)
    ci: bool


def diagnose(f: Facts, target: str = "book") -> list[str]:
    """One line per missing prerequisite, each saying what to do; empty when all is there."""
    problems = []
    if f.python < (3, 11):
        problems.append(f"Python {f.python[0]}.{f.python[1]} ({f.python_executable}) is too old: the pinned "
                        f"dependencies need 3.11 (the version CI tests). Install python3.11 and run "
                        f"`make PYTHON=python3.11 {target}`.")
    if not f.venv_ready:
        if not f.has_venv_module or not f.has_ensurepip:
            problems.append(f"{f.python_executable} cannot create a virtual environment with pip "
                            f"(the module {'venv' if not f.has_venv_module else 'ensurepip'} is missing). On Debian "
                            f"or Ubuntu: `sudo apt install python3-venv` (or python{f.python[0]}.{f.python[1]}-venv).")
        if f.free_gib < VENV_GIB:
            problems.append(f"only {f.free_gib:.1f} GiB free here; the virtual environment needs about {VENV_GIB} GiB "
                            f"(PyTorch with CUDA libraries; see the README for CPU-only PyTorch, about 1 GiB).")
    elif f.free_gib < BUILD_GIB:
        problems.append(f"only {f.free_gib:.1f} GiB free here; the build needs about {BUILD_GIB} GiB.")
    if not f.widgets_built and not f.has_npm:
        problems.append("npm is missing (it installs the pinned widget JavaScript and MathJax for the site): "
                        "install Node.js with npm (e.g. `sudo apt install npm`, or from nodejs.org).")
    if f.aimc_data and not f.cifar_local:
        problems.append(f"AIMC_DATA={f.aimc_data} holds no CIFAR-10 (test_batch.npz and data_batch_1..5.npz, or "
                        f"torchvision's cifar-10-batches-py): fix the path, or unset AIMC_DATA to download it.")
    elif not f.cifar_local:
        if f.ci:
            problems.append("CIFAR-10 not found and CI never downloads: set AIMC_DATA to a local copy.")
        elif f.network is False:
            problems.append(f"CIFAR-10 not found (AIMC_DATA unset, nothing in {CIFAR_CACHE}) and "
                            f"{CIFAR_HOST[0]} cannot be reached to download it (about 170 MB): connect to the "
                            f"internet, or set AIMC_DATA to a folder with a copy.")
    return problems


def has_cifar10(folder: Path) -> bool:
    """A local CIFAR-10 in either layout aimc_lib.data reads (the .npz copy or torchvision's files)."""
    npz = ["test_batch.npz"] + [f"data_batch_{i}.npz" for i in range(1, 6)]
    tv = folder / "cifar-10-batches-py"
    return all((folder / n).is_file() for n in npz) or all(
        (tv / n).is_file() for n in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)])


def can_connect(host_port: tuple[str, int], timeout_s: float = 5.0) -> bool:
    """Whether a TCP connection to the host opens (nothing is sent or downloaded)."""
    try:
        with socket.create_connection(host_port, timeout=timeout_s):
            return True
    except OSError:
        return False


def gather(venv: Path, environ=os.environ, connect=can_connect) -> Facts:
    """The facts of this machine; ``connect`` is only called when no local CIFAR-10 is found."""
    aimc_data = environ.get("AIMC_DATA") or None
    candidates = [Path(aimc_data).expanduser()] if aimc_data else [CIFAR_CACHE]
    cifar_local = next((str(c) for c in candidates if has_cifar10(c)), None)
    ci = bool(environ.get("CI"))
    network = None if cifar_local or aimc_data or ci else connect(CIFAR_HOST)
    here = venv if venv.exists() else venv.resolve().parent
    return Facts(python=sys.version_info[:2], python_executable=sys.executable,
                 has_venv_module=importlib.util.find_spec("venv") is not None,
                 has_ensurepip=importlib.util.find_spec("ensurepip") is not None,
                 venv_ready=(venv / ".installed").exists(), has_npm=shutil.which("npm") is not None,
                 widgets_built=WIDGETS_JS.exists(), free_gib=shutil.disk_usage(here).free / GIB,
                 cifar_local=cifar_local, aimc_data=aimc_data, network=network, ci=ci)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--for", dest="target", choices=("book", "test"), default="book",
                    help="the make target about to run (for the hints)")
    ap.add_argument("--venv", type=Path, default=ROOT / ".venv", help="the virtual environment's folder")
    args = ap.parse_args(argv)
    facts = gather(args.venv)
    problems = diagnose(facts, args.target)
    for p in problems:
        print(f"doctor: {p}", file=sys.stderr)
    if problems:
        print(f"doctor: {len(problems)} problem(s); nothing was installed.", file=sys.stderr)
        return 1
    note = "" if facts.python == TESTED_PYTHON else f" (tested: {TESTED_PYTHON[0]}.{TESTED_PYTHON[1]})"
    data = facts.cifar_local or "to be downloaded on first use"
    print(f"doctor: ok: Python {facts.python[0]}.{facts.python[1]}{note}, {facts.free_gib:.0f} GiB free, "
          f"CIFAR-10 {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
