"""Releases: one version everywhere, the changelog, the citation, the licence split, the program
`aimc` and the Python version that is tested."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
import yaml

import aimc_lib
from aimc_lib import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_comes_from_one_place():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aimc_lib._version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", aimc_lib.__version__)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == aimc_lib.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## (\d+\.\d+\.\d+) - (\d{4}-\d{2}-\d{2})$", changelog, re.M)
    assert released and released[0] == (aimc_lib.__version__, str(citation["date-released"]))
    assert changelog.index("## Unreleased") < changelog.index(f"## {aimc_lib.__version__}")
    assert f"@v{aimc_lib.__version__}" in (ROOT / "README.md").read_text()  # the README's pip command


def test_the_citation_names_the_paper_reproduced():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    assert citation["repository-code"] == yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    paper = citation["references"][0]
    assert paper["doi"] == "10.1038/s41467-020-16108-9"
    assert (paper["journal"], paper["volume"], paper["start"], paper["year"]) == ("Nature Communications", 11, 2473, 2020)
    assert paper["authors"][0] == {"family-names": "Joshi", "given-names": "Vinay"}


def test_code_is_mit_and_text_cc_by_4():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    text = (ROOT / "LICENSE-text").read_text()
    assert "Creative Commons Attribution 4.0 International Public License" in text
    for section in ("Section 1 – Definitions.", "Section 3 – License Conditions.", "Section 8 – Interpretation."):
        assert section in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    readme = (ROOT / "README.md").read_text()
    assert "MIT license ([LICENSE](LICENSE))" in readme and "CC-BY-4.0 ([LICENSE-text](LICENSE-text))" in readme


def test_the_program_is_aimc_with_a_version(capsys):
    parser = cli.build_parser()
    assert parser.prog == "aimc" and parser.format_usage().startswith("usage: aimc ")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"aimc {aimc_lib.__version__} (aimc_lib)"
    proc = subprocess.run([sys.executable, "-m", "aimc_lib", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"aimc {aimc_lib.__version__} (aimc_lib)"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"aimc": "aimc_lib.cli:main"}
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split()[1] for line in block.strip().splitlines()]
    assert all(line.startswith("aimc ") for line in block.strip().splitlines())
    assert {"--version", "train", "evaluate", "drift", "figure"} == set(commands)


def test_out_of_memory_is_one_line_on_every_supported_torch(monkeypatch, capsys):
    """torch.OutOfMemoryError exists from torch 2.5 on; the declared minimum is older, where only
    torch.cuda.OutOfMemoryError exists: the handler catches whichever this torch has."""
    assert cli._OUT_OF_MEMORY is getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    assert issubclass(torch.cuda.OutOfMemoryError, cli._OUT_OF_MEMORY)

    def out_of_memory(args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    parser = cli.build_parser()
    args = parser.parse_args(["evaluate", "model.pt"])
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: args})())
    args.func = out_of_memory
    assert cli.main(["evaluate", "model.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory on") and "--test-subset" in err and err.count("\n") == 1


def test_the_tested_python_is_declared_everywhere():
    """3.11: what constraints.txt pins, CI and the workflow run; requires-python says no older."""
    sys.path.insert(0, str(ROOT / "book_tools"))
    import doctor
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11"
    assert doctor.TESTED_PYTHON == (3, 11)
    assert "python=3.11" in (ROOT / "environment.yml").read_text()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    assert workflow["env"]["PYTHON_VERSION"] == "3.11"
    assert "sys.version_info < (3, 11)" in (ROOT / "Makefile").read_text()
    assert "make PYTHON=python3.11" in (ROOT / "README.md").read_text()
