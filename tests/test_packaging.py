"""Project-level checks: dependency lists agree, README commands are what CI runs."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = {_norm(r) for r in py["dependencies"]}
    for extra in py["optional-dependencies"].values():
        want |= {_norm(r) for r in extra}
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:", 1)[1]
    got = {_norm(line.strip()[2:]) for line in pip_section.splitlines()
           if line.strip().startswith("- ") and not line.strip().startswith("- -e")}
    assert got == want


def test_constraints_pin_torch_and_every_direct_dependency():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = py["dependencies"] + [r for extra in py["optional-dependencies"].values() for r in extra]
    for r in reqs:
        name = re.split(r"[<>=!\[ ]", r)[0].lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "AIMC_DATA" in ci


def test_readme_five_line_example_runs(data_path, monkeypatch):
    """The README's 'your own network' snippet, run as written on a small real test subset."""
    import aimc_lib
    from aimc_lib.models import resnet

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Your own network on PCM, in five lines", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert len([line for line in block.strip().splitlines() if line.strip()]) == 5
    monkeypatch.setenv("AIMC_DATA", data_path)
    real_load = aimc_lib.data.load_cifar10
    monkeypatch.setattr(aimc_lib.data, "load_cifar10", lambda split: real_load(split).subset(200))
    scope = {"my_trained_model": resnet(8, (8, 8, 16)).eval()}
    exec(block, scope)
    assert 0 <= scope["accuracy"] <= 100


def test_every_shipped_data_file_is_package_data():
    """Each committed model, result, answer key and C source is installed with the package (a folder
    of results added without its glob in pyproject.toml would be missing from a pip install)."""
    from pathlib import PurePosixPath
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["aimc_lib"]
    pkg = ROOT / "aimc_lib"
    files = [PurePosixPath(p.relative_to(pkg).as_posix()) for folder in ("weights", "results", "answers")
             for p in (pkg / folder).rglob("*") if p.is_file() and p.suffix in (".json", ".pt", ".png", ".svg")]
    files += [PurePosixPath(p.name) for p in pkg.glob("*.c")]  # C sources compiled at first use
    assert len(files) > 20 and PurePosixPath("periphery_cpu.c") in files
    missing = [str(f) for f in files if not any(f.match(g) and len(f.parts) == len(PurePosixPath(g).parts)
                                                for g in globs)]
    assert not missing, missing
