"""Print the built book to one PDF with headless Chromium (``make pdf``), for a course handout.

The pages of the built website (``_build/html``), in the order of ``_toc.yml``, are put one after
the other into a single page (``book/_print.html``, each chapter starting on a new sheet; figures
and widget states come along), which the Chromium of the browser test (book_tools/find_browser.py)
prints through Playwright's ``page.pdf``: A4, page numbers in the footer ("3 / 120") and the
headings as the PDF's bookmarks (outline). Jupyter Book's own single-page builder cannot be used:
myst-nb's hidden-code cells do not render there.

    python book_tools/print_pdf.py _build/html _build/aimc-book.pdf     # the whole book
    python book_tools/print_pdf.py some/page.html out.pdf               # one page

Prints the number of pages written.
"""
from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from find_browser import find  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
FOOTER = ('<div style="width: 100%; font-family: sans-serif; font-size: 8px; color: #555; text-align: center;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
# MathJax typesets after the page has loaded: wait for it (and for nothing when a page has none).
MATHJAX_DONE = "() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? MathJax.startup.promise.then(() => true) : true"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-article, .prev-next-area,
.header-article, .bd-header-article, #jb-print-docs-body { display: none !important; }
pre { white-space: pre-wrap !important; word-break: break-word; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
/* The theme's print style hides the article's h1 (it prints its own title, hidden above): show each
   page's title again, so that it is printed and becomes a top-level bookmark. */
.aimc-print-page h1 { display: block !important; }
.aimc-print-page { break-before: page; }
.aimc-print-page:first-child { break-before: auto; }
"""


def toc_pages(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    toc = yaml.safe_load(Path(toc_path).read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part["chapters"]]
    pages += [c["file"] for c in toc.get("chapters", [])]
    return pages


def combine(html_dir: Path, pages: list[str]) -> Path:
    """Write the pages' articles, in order, into one HTML file next to the first page; return it."""
    html_dir = Path(html_dir)
    first = html_dir / f"{pages[0]}.html"
    folders = {(html_dir / p).parent.resolve() for p in pages}
    if len(folders) != 1:
        raise ValueError(f"all pages must be in one folder for their relative links to work, got {sorted(folders)}")
    missing = [p for p in pages if not (html_dir / f"{p}.html").exists()]
    if missing:
        raise FileNotFoundError(f"pages not built in {html_dir}: {missing} (run `make book` first)")
    out = BeautifulSoup(first.read_text(), "html.parser")
    body = out.select_one("article.bd-article")
    body.clear()
    states = []
    for page in pages:
        soup = BeautifulSoup((html_dir / f"{page}.html").read_text(), "html.parser")
        article = soup.select_one("article.bd-article")
        wrapper = out.new_tag("section", attrs={"class": "aimc-print-page"})
        for child in list(article.children):
            wrapper.append(child.extract())
        body.append(wrapper)
        states += [s for s in soup.find_all("script", attrs={"type": WIDGET_STATE}) if s not in article.descendants]
    for state in states:
        out.body.append(state.extract())
    for state in out.head.find_all("script", attrs={"type": WIDGET_STATE}):
        state.decompose()  # the first page's own state is among `states`, appended to the body
    style = out.new_tag("style")
    style.string = PRINT_CSS
    out.head.append(style)
    target = first.with_name("_print.html")
    target.write_text(str(out))
    return target


def page_count(pdf: Path) -> int:
    """Number of pages of a PDF written by Chromium (its page objects are not compressed)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", Path(pdf).read_bytes()))


def pdf_options(pdf: Path) -> dict:
    """Playwright's ``page.pdf`` options: A4, backgrounds, page numbers in the footer, bookmarks."""
    return {"path": str(pdf), "format": "A4", "print_background": True,
            "display_header_footer": True, "header_template": "<div></div>", "footer_template": FOOTER,
            "margin": {"top": "14mm", "bottom": "16mm", "left": "12mm", "right": "12mm"},
            "outline": True, "tagged": True}


def print_pdf(html: Path, pdf: Path, browser: str | None = None, timeout_s: float = 900) -> int:
    """Print the page ``html`` to ``pdf``; return the number of pages."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise FileNotFoundError(f"{html} not found: build the book first")
    browser = browser or find()
    if browser is None:
        raise FileNotFoundError("no Chromium or Chrome found: run `python book_tools/find_browser.py --install`")
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)

    def _print() -> None:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=browser, args=ARGS)
            try:
                page = chromium.new_page()
                page.goto(html.as_uri(), wait_until="networkidle", timeout=timeout_s * 1000)
                page.evaluate(MATHJAX_DONE)
                page.emulate_media(media="print")
                page.pdf(**pdf_options(pdf))
            finally:
                chromium.close()

    # In a thread of its own: Playwright's sync API refuses to run where an asyncio loop is running
    # (a notebook, or a test session that already drives a browser).
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(_print).result()
    except PlaywrightError as e:
        raise RuntimeError(f"{browser} could not print {html}: {e}") from e
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"{browser} wrote no PDF for {html}")
    return page_count(pdf)


_TITLE = rb"/Title\s*(?:\((?:[^)\\]|\\.)*\)|<[0-9A-Fa-f]*>)\s*/Dest\s*\[[^\]]*\]\s*/Parent\s+"


def bookmark_count(pdf: Path, top_level: bool = False) -> int:
    """Number of bookmarks (outline items) of a PDF written by Chromium; ``top_level``: only those
    directly under the outline's root (one per page of the book: its h1)."""
    data = Path(pdf).read_bytes()
    if not top_level:
        return len(re.findall(_TITLE + rb"\d+", data))
    root = re.search(rb"(\d+) 0 obj\s*<</Type /Outlines", data)
    return 0 if root is None else len(re.findall(_TITLE + root.group(1) + rb" 0 R", data))


def print_book(html_dir: Path, pdf: Path, browser: str | None = None, pages: list[str] | None = None,
               tries: int = 3) -> int:
    """Print the whole built book (pages in ``_toc.yml`` order) to one PDF; return its page count.

    Every page's title must be a top-level bookmark. Chromium builds the outline from an
    accessibility snapshot of the (very long) combined page, and on a loaded machine that snapshot
    has come back without some of the last headings (12 of 15 once in CI, never on a quiet
    machine); so the outline is checked, the book printed again (``tries`` in all) while it is
    short, and an error names what is missing rather than writing a handout without its bookmarks.
    """
    pages = pages or toc_pages()
    combined = combine(html_dir, pages)
    for _ in range(max(1, tries)):
        n_pages = print_pdf(combined, pdf, browser)
        found = bookmark_count(pdf, top_level=True)
        if found == len(pages):
            return n_pages
    raise RuntimeError(f"{pdf}: Chromium wrote {found} top-level bookmarks for the {len(pages)} pages "
                       f"after {max(1, tries)} tries")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", type=Path, help="the built site (_build/html) or one HTML page")
    ap.add_argument("pdf", type=Path)
    args = ap.parse_args(argv)
    try:
        n = print_book(args.html, args.pdf) if args.html.is_dir() else print_pdf(args.html, args.pdf)
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"print_pdf: {e}", file=sys.stderr)
        return 1
    print(f"{args.pdf}: {n} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
