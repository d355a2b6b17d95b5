"""Print a built HTML page (the single-page book of ``make pdf``) to a PDF with headless Chromium.

    python scripts/print_pdf.py _build_pdf/_build/singlehtml/index.html _build/aimc-book.pdf

The browser is the one the browser test uses (scripts/find_browser.py). Prints the number of
pages written.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from find_browser import find  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-pdf-header-footer",
        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=20000"]


def page_count(pdf: Path) -> int:
    """Number of pages of a PDF written by Chromium (its page objects are not compressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", Path(pdf).read_bytes()))


def print_pdf(html: Path, pdf: Path, browser: str | None = None, timeout_s: float = 600) -> int:
    """Print ``html`` to ``pdf``; return the number of pages."""
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"{html} not found: build the book first")
    browser = browser or find()
    if browser is None:
        raise FileNotFoundError("no Chromium or Chrome found: run `python scripts/find_browser.py --install`")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([browser, *ARGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf}",
                               html.as_uri()], capture_output=True, text=True, timeout=timeout_s)
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"{browser} wrote no PDF (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return page_count(pdf)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("pdf", type=Path)
    args = ap.parse_args(argv)
    try:
        n = print_pdf(args.html, args.pdf)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"print_pdf: {e}", file=sys.stderr)
        return 1
    print(f"{args.pdf}: {n} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
