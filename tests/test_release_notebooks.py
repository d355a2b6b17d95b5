"""The release a notebook installs has what the notebook uses.

Colab and Binder open a notebook from the repository and install the release its first cell pins
(``aimc_lib[notebooks] @ git+<url>@v<version>``), not the library beside it. A notebook that uses
an ``aimc_lib`` name added after that release fails there with an ImportError or AttributeError,
while every test that runs the notebook against the checkout passes. These tests read each name a
notebook takes from ``aimc_lib`` and look for it in the pinned release's source (its git tag).
"""
from __future__ import annotations

import ast
import re
import subprocess

import nbformat
import pytest

from project_scripts import ROOT

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
PIN = re.compile(r"aimc_lib\[notebooks\] @ git\+\S+@(v\d+\.\d+\.\d+)")


def pinned_tag(nb) -> str:
    """The tag the notebook's install cell installs."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    found = PIN.search(first.source)
    assert found, "the first code cell does not pin a release (book_tools/sync_colab_cells.py writes it)"
    return found.group(1)


def python_source(nb) -> str:
    """The notebook's code cells as one Python text, IPython's magics and shell lines left out."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def used_names(code: str) -> set[tuple[str, str]]:
    """``(module, name)`` for every name the code takes from ``aimc_lib``: ``from aimc_lib.m import n``
    and, for a name bound to ``aimc_lib`` or one of its modules, every ``name.attr`` read.
    ``module`` is dotted under ``aimc_lib`` ("" for the package itself)."""
    tree = ast.parse(code)
    modules: dict[str, str] = {}  # local name -> the aimc_lib module it is
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "aimc_lib":
                    module = alias.name.removeprefix("aimc_lib").lstrip(".")
                    modules[alias.asname or "aimc_lib"] = module if alias.asname else ""
                    if module:
                        used.add(tuple(module.rsplit(".", 1)) if "." in module else ("", module))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "aimc_lib":
            module = node.module.removeprefix("aimc_lib").lstrip(".")
            for alias in node.names:
                used.add((module, alias.name))
                if (ROOT / "aimc_lib" / module.replace(".", "/") / f"{alias.name}.py").exists():
                    modules[alias.asname or alias.name] = f"{module}.{alias.name}".lstrip(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            used.add((modules[node.value.id], node.attr))
    return used


def module_source(tag: str, module: str) -> str | None:
    """The source of ``aimc_lib.<module>`` in release ``tag`` (None if the module is not there)."""
    base = "aimc_lib/" + module.replace(".", "/") if module else "aimc_lib"
    for path in (f"{base}.py", f"{base}/__init__.py"):
        proc = subprocess.run(["git", "-C", str(ROOT), "show", f"{tag}:{path}"], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout
    return None


def defined_names(source: str) -> set[str]:
    """The names a module's source binds at its top level (also inside top-level if/try blocks)."""
    names, todo = set(), list(ast.parse(source).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def missing_in_release(used: set[tuple[str, str]], tag: str) -> list[str]:
    """The used names that release ``tag`` does not have, as ``aimc_lib.<module>.<name>``."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}"],
                      capture_output=True).returncode != 0:
        raise AssertionError(f"the release tag {tag} is not in this repository: the notebooks pin a "
                             f"release that was never tagged (docs/developers.md, Releases)")
    missing = []
    for module, name in sorted(used):
        source = module_source(tag, module)
        submodule = module_source(tag, f"{module}.{name}".lstrip(".")) is not None
        if not submodule and (source is None or name not in defined_names(source)):
            missing.append(".".join(p for p in ("aimc_lib", module, name) if p))
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_pinned_release_has_every_name_the_notebook_uses(path):
    nb = nbformat.read(path, as_version=4)
    tag = pinned_tag(nb)
    used = used_names(python_source(nb))
    assert used, "no aimc_lib name found: the reader of the notebook is broken"
    missing = missing_in_release(used, tag)
    assert not missing, (f"{path.name} uses names that its install cell's release {tag} does not have: "
                         f"{missing}; release a new version (docs/developers.md, Releases)")


def test_the_reader_finds_names_and_misses():
    code = ("import aimc_lib\nfrom aimc_lib import pcm, zoo\nfrom aimc_lib.pcm import PCMParams as P\n"
            "import aimc_lib.mapping as M\n%matplotlib inline\n")
    used = used_names(python_source(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        code + "aimc_lib.pretrained('x'); pcm.program; zoo.not_in_zoo; M.AnalogChip; pcm.not_in_pcm\n")])))
    assert {("", "pretrained"), ("", "pcm"), ("pcm", "program"), ("zoo", "not_in_zoo"), ("pcm", "PCMParams"),
            ("", "mapping"), ("mapping", "AnalogChip"), ("pcm", "not_in_pcm")} <= used
    tag = subprocess.run(["git", "-C", str(ROOT), "describe", "--tags", "--abbrev=0"],
                         capture_output=True, text=True).stdout.strip()
    assert tag, "no release tag in this repository"
    assert missing_in_release(used, tag) == ["aimc_lib.pcm.not_in_pcm", "aimc_lib.zoo.not_in_zoo"]
    with pytest.raises(AssertionError, match="never tagged"):
        missing_in_release(used, "v999.0.0")
