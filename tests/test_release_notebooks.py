"""The release a notebook installs has what the notebook uses.

Colab and Binder open a notebook from the repository and install the release its first cell pins
(``aimc_lib[notebooks] @ git+<url>@v<version>``), not the library beside it. A notebook that uses
an ``aimc_lib`` name added after that release fails there with an ImportError or AttributeError,
while every test that runs the notebook against the checkout passes. These tests read each name a
notebook takes from ``aimc_lib`` and look for it in the names the pinned release recorded
(``book_tools/releases.json``, written from the release's checkout by ``book_tools/release_api.py``):
a clone without tags checks the same as one with them.
"""
from __future__ import annotations

import ast
import re

import nbformat
import pytest

import aimc_lib

from project_scripts import ROOT, load_script

release_api = load_script("release_api", "book_tools")

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


def missing_in_release(used: set[tuple[str, str]], tag: str) -> list[str]:
    """The used names that release ``tag`` does not have, as ``aimc_lib.<module>.<name>``."""
    entry = release_api.read_record().get(tag)
    if entry is None:
        raise AssertionError(f"book_tools/releases.json has no record of release {tag}: run "
                             f"`python book_tools/release_api.py` when releasing (docs/developers.md, Releases)")
    return [".".join(p for p in ("aimc_lib", module, name) if p)
            for module, name in sorted(used) if not release_api.has_name(entry, module, name)]


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
    tag = f"v{aimc_lib.__version__}"
    assert missing_in_release(used, tag) == ["aimc_lib.pcm.not_in_pcm", "aimc_lib.zoo.not_in_zoo"]
    with pytest.raises(AssertionError, match="no record of release v999.0.0"):
        missing_in_release(used, "v999.0.0")


def test_this_version_is_recorded():
    assert f"v{aimc_lib.__version__}" in release_api.read_record(), \
        "run `python book_tools/release_api.py` when releasing (docs/developers.md, Releases)"


@pytest.mark.parametrize("tag", sorted(release_api.read_record()))
def test_a_release_record_describes_every_module_unchanged_since(tag):
    """The record of each module whose source is byte-identical to the release's (same sha256) is that
    source's names; the record holds the package and its pcm module at least."""
    entry, now = release_api.read_record()[tag], release_api.api(release_api.checkout_sources())
    assert "" in entry and "pcm" in entry, f"{tag}'s record lacks the package or its pcm module"
    unchanged = [m for m in now if m in entry and now[m]["sha256"] == entry[m]["sha256"]]
    wrong = [m for m in unchanged if now[m] != entry[m]]
    assert not wrong, f"{tag}'s record does not describe these unchanged modules: {wrong}"
    if tag == f"v{aimc_lib.__version__}":
        assert unchanged, f"no module is unchanged since {tag}: its record cannot be checked"


def test_the_record_is_made_of_each_modules_names(tmp_path):
    package = tmp_path / "aimc_lib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import pcm\n__version__ = '9.9.9'\n")
    (package / "pcm.py").write_text("import torch\nclass P: pass\ndef program(): pass\nif True:\n    X = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("Y: int = 2\ntry:\n    Z = 3\nexcept ImportError:\n    W = 4\n")
    entry = release_api.api(release_api.checkout_sources(tmp_path))
    assert {m: e["names"] for m, e in entry.items()} == {
        "": ["__version__", "pcm"], "pcm": ["P", "X", "program", "torch"], "sub": [], "sub.deep": ["W", "Y", "Z"]}
    assert release_api.has_name(entry, "", "pcm") and release_api.has_name(entry, "sub", "deep")
    assert release_api.has_name(entry, "pcm", "program") and not release_api.has_name(entry, "pcm", "missing")
    assert not release_api.has_name(entry, "nowhere", "x")
    record = tmp_path / "releases.json"
    release_api.write_record("v9.9.9", entry, record)
    release_api.write_record("v1.0.0", {}, record)
    assert release_api.read_record(record) == {"v1.0.0": {}, "v9.9.9": entry}
    with pytest.raises(ValueError, match="not in aimc_lib"):
        release_api.module_name("other/x.py")


def test_recording_writes_the_checkout_under_this_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(release_api, "RECORD", tmp_path / "releases.json")
    assert release_api.main([]) == 0
    tag = f"v{aimc_lib.__version__}"
    assert release_api.read_record(tmp_path / "releases.json") == {tag: release_api.api(release_api.checkout_sources())}
    assert f"recorded {tag}: " in capsys.readouterr().out
    assert release_api.main(["--ref", "v999.0.0"]) == 1
    assert "has no record of v999.0.0" in capsys.readouterr().err
