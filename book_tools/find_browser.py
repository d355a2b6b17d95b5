"""Find a Chromium or Chrome for the browser test and the PDF, installing one only if none is there.

Order: ``$AIMC_BROWSER`` (an explicit path), then ``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable`` or ``chrome`` on the PATH, then the macOS
applications, then a Chromium that Playwright already downloaded (``$PLAYWRIGHT_BROWSERS_PATH``
or its default cache). Prints the executable's path.

    python book_tools/find_browser.py            # print the path, exit 1 if there is none
    python book_tools/find_browser.py --install  # if none: Debian's chromium (root with apt-get),
                                              # else Playwright's user-level download
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"]
MAC_APPS = ["/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
            "/Applications/Chromium.app/Contents/MacOS/Chromium"]
# Inside a Playwright browsers folder: chromium-<rev>/chrome-<platform>/... (Linux, macOS)
PLAYWRIGHT_GLOBS = ["chromium-*/chrome-linux*/chrome",
                    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
                    "chromium-*/chrome-mac*/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing"]


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def playwright_dirs(env=None, home: Path | None = None, platform: str = sys.platform) -> list[Path]:
    """Where Playwright keeps its browsers: ``$PLAYWRIGHT_BROWSERS_PATH``, else its default cache."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    if env.get("PLAYWRIGHT_BROWSERS_PATH") not in (None, "", "0"):
        return [Path(env["PLAYWRIGHT_BROWSERS_PATH"])]
    if platform == "darwin":
        return [home / "Library" / "Caches" / "ms-playwright"]
    return [home / ".cache" / "ms-playwright"]


def find(env=None, home: Path | None = None, platform: str = sys.platform, mac_apps=MAC_APPS) -> str | None:
    """The path of a Chromium/Chrome executable already on this machine, or None."""
    env = os.environ if env is None else env
    explicit = env.get("AIMC_BROWSER")
    if explicit:
        if not _executable(Path(explicit)):
            raise FileNotFoundError(f"AIMC_BROWSER={explicit!r} is not an executable file")
        return explicit
    for name in NAMES:
        path = shutil.which(name, path=env.get("PATH", ""))
        if path:
            return path
    if platform == "darwin":
        for app in mac_apps:
            if _executable(Path(app)):
                return app
    for folder in playwright_dirs(env, home, platform):
        for pattern in PLAYWRIGHT_GLOBS:
            found = sorted((p for p in folder.glob(pattern) if _executable(p)), reverse=True)
            if found:
                return str(found[0])  # the newest revision
    return None


def install_command(is_root: bool, has_apt: bool, python: str = sys.executable) -> list[list[str]]:
    """How to get a browser when none is found: Debian's chromium as root, else Playwright's download."""
    if is_root and has_apt:
        return [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]]
    return [[python, "-m", "playwright", "install", "chromium"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--install", action="store_true", help="install a browser if none is found")
    args = ap.parse_args(argv)
    path = find()
    if path is None and args.install:
        is_root = hasattr(os, "geteuid") and os.geteuid() == 0
        for cmd in install_command(is_root, shutil.which("apt-get") is not None):
            print("+ " + " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True)
        path = find()
    if path is None:
        print("no Chromium or Chrome found: install one (e.g. `python -m playwright install chromium`), "
              "or set AIMC_BROWSER to its executable", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
