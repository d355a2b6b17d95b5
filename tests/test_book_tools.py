"""The book tooling in ``book_tools/`` without a build: the browser choice and the Colab install cells.

(The PDF of a built book and the student edition are tested in ``tests/test_book.py`` and
``tests/test_student_edition.py``.)
"""
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book_tools"))
import find_browser  # noqa: E402
import sync_colab_cells  # noqa: E402


def _fake_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_browser_prefers_the_path_then_playwright_cache(tmp_path):
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    bin_dir.mkdir()
    env = {"PATH": str(bin_dir)}
    assert find_browser.find(env, home, "linux") is None
    old = _fake_executable(home / ".cache/ms-playwright/chromium-1100/chrome-linux/chrome")
    new = _fake_executable(home / ".cache/ms-playwright/chromium-1200/chrome-linux/chrome")
    (home / ".cache/ms-playwright/chromium-1300/chrome-linux").mkdir(parents=True)  # an unfinished download
    assert find_browser.find(env, home, "linux") == str(new) != str(old)
    other = _fake_executable(tmp_path / "pw" / "chromium-9/chrome-linux/chrome")
    assert find_browser.find({**env, "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "pw")}, home, "linux") == str(other)
    (bin_dir / "google-chrome").write_text("not executable")
    assert find_browser.find(env, home, "linux") == str(new)
    chrome = _fake_executable(bin_dir / "chromium-browser")
    assert find_browser.find(env, home, "linux") == str(chrome)
    chromium = _fake_executable(bin_dir / "chromium")
    assert find_browser.find(env, home, "linux") == str(chromium)
    explicit = _fake_executable(tmp_path / "my" / "chrome")
    assert find_browser.find({**env, "AIMC_BROWSER": str(explicit)}, home, "linux") == str(explicit)
    with pytest.raises(FileNotFoundError, match="AIMC_BROWSER"):
        find_browser.find({**env, "AIMC_BROWSER": str(tmp_path / "missing")}, home, "linux")


def test_find_browser_on_macos(tmp_path):
    home, env = tmp_path / "home", {"PATH": ""}
    app = _fake_executable(tmp_path / "Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
    pw = _fake_executable(home / "Library/Caches/ms-playwright/chromium-1/chrome-mac/Chromium.app/Contents/MacOS/Chromium")
    assert find_browser.find(env, home, "darwin", mac_apps=[str(app)]) == str(app)
    assert find_browser.find(env, home, "darwin", mac_apps=[]) == str(pw)
    assert find_browser.find(env, home, "linux", mac_apps=[str(app)]) is None


def test_without_a_browser_root_uses_apt_and_others_playwright():
    assert find_browser.install_command(True, True, "py") == [["apt-get", "update", "-q"],
                                                             ["apt-get", "install", "-y", "-q", "chromium"]]
    for is_root, has_apt in ((False, True), (True, False), (False, False)):
        assert find_browser.install_command(is_root, has_apt, "py") == [["py", "-m", "playwright", "install", "chromium"]]


def test_every_notebook_starts_with_the_colab_install_cell():
    """The first code cell installs this release of aimc_lib (the tag of the package version) from
    _config.yml's repository.url, with the notebooks' extra, off the website."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    import aimc_lib
    version = sync_colab_cells.package_version()
    assert version == aimc_lib.__version__
    expected = sync_colab_cells.install_source(sync_colab_cells.repository_url(), version)
    assert f'"aimc_lib[notebooks] @ git+{url.rstrip("/")}@v{aimc_lib.__version__}"' in expected
    wrong = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        if first.source != expected or "remove-cell" not in first.metadata.get("tags", []):
            wrong.append(path.name)
    assert wrong == [], f"run `python book_tools/sync_colab_cells.py`: {wrong}"


def test_sync_colab_cells_rewrites_adds_and_tags(tmp_path, monkeypatch):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/me/fork/\n")
    url = sync_colab_cells.repository_url(config)
    assert url == "https://example.org/me/fork"
    version_file = tmp_path / "_version.py"
    version_file.write_text('"""doc"""\n__version__ = "1.2.3"\n')
    assert sync_colab_cells.package_version(version_file) == "1.2.3"
    stale = nbformat.v4.new_code_cell('%pip install -q "aimc_lib @ git+https://old/url"', metadata={"tags": ["x"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T"), stale, nbformat.v4.new_code_cell("1")])
    assert sync_colab_cells.sync(nb, url, "1.2.3") is True
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert '"aimc_lib[notebooks] @ git+https://example.org/me/fork@v1.2.3"' in nb.cells[1].source and nb.cells[1].metadata["tags"] == ["x", "remove-cell"]
    assert sync_colab_cells.sync(nb, url, "1.2.3") is False
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import aimc_lib")])
    assert sync_colab_cells.sync(bare, url, "1.2.3") is True and len(bare.cells) == 2
    assert sync_colab_cells.is_install_cell(bare.cells[0]) and bare.cells[1].source == "import aimc_lib"
    config.write_text("repository:\n  url: git@github.com:me/fork\n")
    with pytest.raises(ValueError, match="https URL"):
        sync_colab_cells.repository_url(config)
    assert sync_colab_cells.sync(nb, url, "1.2.4") is True and "@v1.2.4" in nb.cells[1].source
    for bad in ('__version__ = "1.2"\n', '__version__ = get_version()\n', ""):
        version_file.write_text(bad)
        with pytest.raises(ValueError, match="X.Y.Z"):
            sync_colab_cells.package_version(version_file)
