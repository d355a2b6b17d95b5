"""The learner's route for the notebook tests: a Jupyter kernel that has what Colab, Binder or
``pip install aimc_lib[notebooks]`` gives a learner, and nothing of the book build.

    python book_tools/learner_route.py OUT_DIR    # prints the JUPYTER_PATH that holds the kernel

It builds ``aimc_lib``'s wheel offline (no build isolation, from a copy of the package's sources),
unpacks it into ``OUT_DIR/site`` (the package as ``pip install`` lays it out, not the repository),
and writes the Jupyter kernel ``aimc-learner`` (``OUT_DIR/share/jupyter/kernels``) of this
interpreter with ``OUT_DIR/site`` first on its path and a ``sitecustomize`` in ``OUT_DIR/blocker``
that makes every module unimportable whose distribution a learner's install would not bring:
everything but the wheel's core requirements, its ``notebooks`` extra and ``ipykernel``, with their
own requirements (read from the installed distributions' metadata). MyST-NB, Sphinx, Jupyter Book,
nbval, pytest, SciPy, PyYAML, ... then fail to import in that kernel, as on a fresh machine, and an
editable install of the repository is taken off the import path. ``make test`` runs the notebooks
with nbval in this kernel (``--nbval-kernel-name aimc-learner``), and tests/test_learner_route.py
checks the blocker and the wheel's contents. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import email
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
KERNEL_NAME = "aimc-learner"
EXTRA = "notebooks"
KERNEL_REQUIREMENTS = ["ipykernel"]  # what runs a notebook at all (Colab and Binder have it)
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "LICENSE-text", "aimc_lib"]

BLOCKER = '''"""The learner's route (book_tools/learner_route.py): the modules a learner's install lacks
(pip install aimc_lib[{extra}] does not bring them) cannot be imported here.

A module set to None in sys.modules behaves as absent for both kinds of question a program asks:
`import x` raises ModuleNotFoundError and importlib.util.find_spec("x") returns None (PyTorch, for
one, probes optional libraries that way).
"""
import sys

BLOCKED = {blocked!r}

for _name in BLOCKED:
    sys.modules.setdefault(_name, None)
# The repository's editable install (a finder that .pth files appended) must not serve aimc_lib.
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
'''


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_wheel(dest: Path, root: Path = ROOT) -> Path:
    """Build aimc_lib's wheel into ``dest`` from a copy of its sources (the repository stays clean)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in SOURCES:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
            elif path.exists():
                shutil.copy2(path, src / name)
        before = set(dest.glob("*.whl"))
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--no-index", "-q", "-w", str(dest), str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(set(dest.glob("aimc_lib-*.whl")) - before) or sorted(dest.glob("aimc_lib-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel wrote no aimc_lib wheel into {dest}")
    return wheels[-1]


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of the wheel's metadata."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(meta)).get_all("Requires-Dist") or []


def allowed_distributions(requirements: list[str], extras: set[str] = frozenset()) -> set[str]:
    """Canonical names of the distributions these requirements pull in, transitively, as installed
    here (markers evaluated for this interpreter; requirements not installed here are skipped)."""
    allowed: set[str] = set()
    todo = [(r, set(extras)) for r in requirements]
    while todo:
        text, active = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (active or {""})):
            continue
        name = _canonical(req.name)
        if name in allowed:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        allowed.add(name)
        todo += [(r, set(req.extras)) for r in (dist.requires or [])]
    return allowed


def blocked_modules(allowed: set[str]) -> set[str]:
    """Top-level modules installed here whose every providing distribution is outside ``allowed``."""
    blocked = set()
    for module, dists in md.packages_distributions().items():
        if module in sys.stdlib_module_names or module == "aimc_lib":
            continue
        if not any(_canonical(d) in allowed for d in dists):
            blocked.add(module)
    return blocked


def setup(out: Path, root: Path = ROOT) -> Path:
    """Build the route into ``out``; return the folder to put on ``JUPYTER_PATH``."""
    out = Path(out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    wheel = build_wheel(out / "dist", root)
    site = out / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    allowed = allowed_distributions(wheel_requirements(wheel) + KERNEL_REQUIREMENTS, {EXTRA}) | {"pip"}
    blocker = out / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(blocked_modules(allowed)), extra=EXTRA))
    kernel_dir = out / "share" / "jupyter" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (aimc_lib from its wheel, no book tools)",
            "language": "python",
            "env": {"PYTHONPATH": f"{blocker}:{site}"}}
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return out / "share" / "jupyter"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to build the route into (replaced)")
    args = ap.parse_args(argv)
    try:
        print(setup(args.out))
    except (RuntimeError, OSError) as e:
        print(f"learner_route: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
