"""The learner's route: aimc_lib as its wheel installs it, in a kernel without the book's tools.

``make test`` runs every chapter with nbval in the ``aimc-learner`` kernel that
``book_tools/learner_route.py`` sets up (the wheel unpacked first on the path, every module of the
book build and the tests unimportable). These tests check that set-up itself: the wheel holds
every file the library reads, the kernel really lacks MyST-NB, Sphinx, nbval, pytest and the other
packages a learner's install does not bring, its ``aimc_lib`` is the wheel's, and the notebooks'
``glue`` works there. Nothing is downloaded.
"""
import os
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book_tools"))
import learner_route  # noqa: E402


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    out = tmp_path_factory.mktemp("learner")
    return out, learner_route.setup(out)


def _package_files() -> set[str]:
    """Every file of the package folder that an install must carry (not caches or builds)."""
    pkg = ROOT / "aimc_lib"
    return {p.relative_to(ROOT).as_posix() for p in pkg.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".so")}


def test_the_wheel_holds_every_file_the_library_reads(route):
    """Weights, results, answer keys, the C source compiled at first use and every module."""
    out, _ = route
    wheel = next((out / "dist").glob("aimc_lib-*.whl"))
    import aimc_lib
    assert wheel.name == f"aimc_lib-{aimc_lib.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    files = _package_files()
    for needed in ("aimc_lib/periphery_cpu.c", "aimc_lib/notebook.py", "aimc_lib/weights/manifest.json"):
        assert needed in files
    assert any(f.startswith("aimc_lib/answers/") for f in files)
    assert any(f.startswith("aimc_lib/results/studies/") for f in files)
    assert any(f.startswith("aimc_lib/weights/") and f.endswith(".pt") for f in files)
    assert sorted(files - names) == []
    # The library's own folders are the ones it reads from.
    from aimc_lib import exercises, periphery_cpu, zoo
    for folder in (zoo.WEIGHTS_DIR, zoo.RESULTS_DIR, exercises.ANSWERS_DIR):
        assert any(n.startswith(f"aimc_lib/{folder.name}/") for n in names)
    assert f"aimc_lib/{periphery_cpu.SOURCE.name}" in names
    assert learner_route.wheel_requirements(wheel)  # its metadata names the core dependencies


def test_the_blocked_modules_are_the_book_build_and_the_tests():
    allowed = learner_route.allowed_distributions(["torch", "matplotlib", "tqdm", "ipywidgets", "ipykernel",
                                                    'pytest; extra == "test"'], {"notebooks"})
    assert {"torch", "numpy", "matplotlib", "ipywidgets", "ipykernel", "ipython", "tqdm"} <= allowed
    assert "pytest" not in allowed and "myst-nb" not in allowed
    assert "pytest" in learner_route.allowed_distributions(['pytest; extra == "test"'], {"test"})
    blocked = learner_route.blocked_modules(allowed)
    assert {"myst_nb", "sphinx", "jupyter_book", "nbval", "pytest", "sphinx_exercise"} <= blocked
    assert not {"torch", "numpy", "matplotlib", "ipywidgets", "IPython", "aimc_lib", "json"} & blocked


def _run_in_kernel(jupyter_path: Path, cells: list[str]) -> list:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env_before = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter_path)
    try:
        NotebookClient(nb, kernel_name=learner_route.KERNEL_NAME, timeout=120, allow_errors=True,
                       resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("JUPYTER_PATH")
        else:
            os.environ["JUPYTER_PATH"] = env_before
    return [c.outputs for c in nb.cells]


def _text(outputs) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") + o.get("ename", "") +
                   o.get("evalue", "") for o in outputs)


def test_the_learner_kernel_has_the_wheel_and_not_the_book_tools(route):
    """In the kernel nbval runs the chapters in: book-only imports fail, aimc_lib is the wheel's,
    what the notebooks need imports, and glue works without MyST-NB."""
    out, jupyter_path = route
    outputs = _run_in_kernel(jupyter_path, [
        "import aimc_lib; print(aimc_lib.__file__)",
        "import myst_nb",
        "import sphinx",
        "import nbval",
        "import yaml",
        "import ipywidgets, matplotlib, numpy, torch, tqdm.auto, IPython; print('ok')",
        "from aimc_lib.notebook import glue\nglue('hidden', 41, display=False)\nglue('shown', 42, display=True)",
        "from aimc_lib.exercises import check; from aimc_lib import zoo; print(len(zoo.results('resnet32-custom_gdc')['times_s']) > 0)",
        # Probing for an optional library finds nothing (PyTorch's compiler probes many), and works.
        "import importlib.util; print(importlib.util.find_spec('hypothesis'), importlib.util.find_spec('torch') is not None)",
        "import torch._dynamo; print('dynamo')",
    ])
    where = _text(outputs[0]).strip()
    assert Path(where).resolve().is_relative_to((out / "site").resolve()), where
    for cell, name in zip(outputs[1:5], ("myst_nb", "sphinx", "nbval", "yaml")):
        assert [o.ename for o in cell if o.output_type == "error"] == ["ModuleNotFoundError"], (name, cell)
        assert name in _text(cell)
    assert _text(outputs[5]).strip() == "ok"
    glued = outputs[6]
    assert [o.output_type for o in glued] == ["display_data"] and _text(glued) == "42", glued
    assert _text(outputs[7]).strip() == "True", outputs[7]
    assert _text(outputs[8]).strip() == "None True", outputs[8]
    assert _text(outputs[9]).strip() == "dynamo", outputs[9]


def test_glue_uses_myst_nb_when_it_is_there_and_shows_only_what_is_displayed(monkeypatch):
    from aimc_lib import notebook
    calls = []
    monkeypatch.setitem(sys.modules, "myst_nb", types.SimpleNamespace(glue=lambda *a, **k: calls.append((a, k))))
    notebook.glue("n_chips", 10, display=False)
    assert calls == [(("n_chips", 10), {"display": False})]
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda value: shown.append(value))
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # not installed
    notebook.glue("n_chips", 10, display=False)
    notebook.glue("n_times", 15)
    assert shown == [15] and len(calls) == 1
    with pytest.raises(ValueError, match="non-empty string"):
        notebook.glue("", 1)


def test_no_notebook_imports_a_book_only_package_and_make_test_uses_the_route():
    """The chapters import only what the learner's route has (nbval in that kernel proves it when
    `make test` runs them; this is the quick check of the sources), and `make test` runs them there."""
    book_only = {"myst_nb", "sphinx", "jupyter_book", "nbval", "sphinx_exercise", "pytest", "yaml", "scipy"}
    found = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", cell.source, re.M):
                    if m.group(1) in book_only:
                        found.append(f"{path.name}: {m.group(0).strip()}")
    assert found == []
    recipe = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MAKEFLAGS": ""}).stdout
    assert "book_tools/learner_route.py" in recipe and "--nbval-kernel-name aimc-learner" in recipe, recipe
