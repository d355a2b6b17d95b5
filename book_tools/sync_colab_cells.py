"""Write the Colab/Binder install cell of every book notebook from ``_config.yml``.

The first code cell of each notebook installs ``aimc_lib`` when it is missing (Colab, Binder).
A notebook cannot import ``aimc_lib`` before installing it, so the cell holds the repository URL
and the release literally; this script is the one place that writes them, from ``repository.url``
in ``_config.yml`` and the package version in ``aimc_lib/_version.py``: the cell installs the
release tagged ``v<version>`` with the ``notebooks`` extra (what the chapters import beyond the
core dependencies), so a course's notebooks do not change under its students. The cell is tagged
``remove-cell``: it stays in the notebook, off the website. A release bumps the version, runs this
script and tags the commit (docs/developers.md, "Releases").

    python book_tools/sync_colab_cells.py           # rewrite the cells that differ
    python book_tools/sync_colab_cells.py --check   # exit 1 if a notebook is out of date
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
TAG = "remove-cell"
TEMPLATE = '''# In Colab or Binder, install aimc_lib first (a no-op when it is already installed).
try:
    import aimc_lib
except ImportError:
    %pip install -q "aimc_lib[notebooks] @ git+{url}@v{version}"
    import aimc_lib'''


def repository_url(config_path: Path = ROOT / "_config.yml") -> str:
    """``repository.url`` of the book's config, checked to be an https URL."""
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    url = str((config.get("repository") or {}).get("url", "")).rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"{config_path}: repository.url must be an https URL of the repository, got {url!r}")
    return url


def package_version(version_path: Path = ROOT / "aimc_lib" / "_version.py") -> str:
    """``__version__`` of ``aimc_lib/_version.py``, read without importing the package."""
    match = re.search(r'^__version__ = "([^"]+)"$', Path(version_path).read_text(), re.M)
    if match is None or not re.fullmatch(r"\d+\.\d+\.\d+", match.group(1)):
        raise ValueError(f'{version_path}: expected a line __version__ = "X.Y.Z"')
    return match.group(1)


def install_source(url: str, version: str) -> str:
    """The install cell's source: the release ``v<version>`` of the repository at ``url``."""
    return TEMPLATE.format(url=url, version=version)


def is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and "pip install" in cell.source and "aimc_lib" in cell.source


def sync(nb: nbformat.NotebookNode, url: str, version: str) -> bool:
    """Make the first code cell of ``nb`` the install cell (added if missing); True if ``nb`` changed."""
    source = install_source(url, version)
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
    if first is None or not is_install_cell(nb.cells[first]):
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
        nb.cells.insert(len(nb.cells) if first is None else first, cell)
        return True
    cell = nb.cells[first]
    tags = list(cell.metadata.get("tags", []))
    changed = cell.source != source or TAG not in tags or cell.outputs or cell.execution_count is not None
    cell.source = source
    cell.metadata["tags"] = tags if TAG in tags else tags + [TAG]
    cell.outputs, cell.execution_count = [], None
    return bool(changed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: book/*.ipynb")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook differs")
    args = ap.parse_args(argv)
    try:
        url, version = repository_url(), package_version()
    except ValueError as e:
        print(f"sync_colab_cells: {e}", file=sys.stderr)
        return 1
    stale = []
    for path in args.notebooks or sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if sync(nb, url, version):
            stale.append(path)
            if not args.check:
                nbformat.write(nb, path)
    verb = "out of date" if args.check else "updated"
    print(f"{len(stale)} notebook(s) {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
