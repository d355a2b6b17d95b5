"""The book: builds in fast mode with zero warnings, and works in a real browser (Chromium).

The site is built once per test session into ``_build_fast`` (``AIMC_FAST=1``), served from
127.0.0.1, and opened with Playwright driving the Chromium or Chrome that
``book_tools/find_browser.py`` finds (``make browser`` installs one if there is none). Every request
to another host is blocked, so the widgets can only work if their JavaScript is self-hosted.
The tests marked ``book`` build the site; the others check the book's sources (the book tooling's
own tests are in ``tests/test_book_tools.py``).
"""
import functools
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book_tools"))
import find_browser  # noqa: E402
import print_pdf  # noqa: E402

BUILD = ROOT / "_build_fast"
HTML = BUILD / "_build" / "html"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The theme loads its thebe config twice; that one message is harmless.
# The theme also logs "invalid theme mode" on a first visit with empty localStorage. Neither is ours.
ALLOWED_CONSOLE = [re.compile(r"Identifier '(thebe_config|THEBE_JS_URL)' has already been declared", re.I),
                   re.compile(r"Got invalid theme mode", re.I)]
book = pytest.mark.book


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def notebook_pages() -> list[str]:
    return [f for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def chapter_pages() -> list[str]:
    """Every chapter notebook (book/0*.ipynb): each must have a slider that works without a kernel."""
    return [f"book/{p.stem}" for p in sorted((ROOT / "book").glob("0*.ipynb"))]


@pytest.fixture(scope="session")
def built_site(data_path):
    """The fast-mode site, built once per session; AIMC_BUILT_SITE=<--path-output of a finished
    fast build> reuses that build instead (while working on the tests)."""
    if os.environ.get("AIMC_BUILT_SITE"):
        html = Path(os.environ["AIMC_BUILT_SITE"]) / "_build" / "html"
        assert (html / "index.html").exists(), f"no built site in {html}"
        return html
    if not (ROOT / "book" / "_static" / "jupyter-widgets" / "embed-amd.js").exists():
        pytest.fail("widget JavaScript missing: run `make widgets-js` (make test does it)")
    shutil.rmtree(BUILD, ignore_errors=True)
    env = {**os.environ, "AIMC_FAST": "1", "AIMC_DATA": data_path}
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", "--path-output", str(BUILD), "."],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    log = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, f"book build failed or warned:\n{log}"
    assert (HTML / "index.html").exists()
    return HTML


@pytest.fixture(scope="session")
def server(built_site):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(built_site))
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def chromium():
    path = find_browser.find()
    if path is None:
        pytest.fail("no Chromium or Chrome found: run `make browser` (book_tools/find_browser.py --install)")
    return path


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url):
    """Open ``url`` with every non-local request blocked; return (page, errors).

    A blocked request is recorded as an error: the site must work offline.
    """
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)

    def route(r):
        if urlparse(r.request.url).hostname == "127.0.0.1":
            return r.continue_()
        errors.append(f"blocked external request: {r.request.url}")
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")  # loaded, and no request for 500 ms: the widgets are in
    return page, errors


def ours(errors):
    return [e for e in errors if not any(p.search(e) for p in ALLOWED_CONSOLE)
            and "net::ERR_FAILED" not in e and "Failed to load resource" not in e]


@book
def test_book_builds_without_warnings(built_site):
    for f in toc_files():
        assert (built_site / f"{f}.html").exists(), f


@book
@pytest.mark.parametrize("page_name", toc_files())
def test_page_loads_without_js_errors(browser, server, page_name):
    page, errors = open_page(browser, urljoin(server, f"{page_name}.html"))
    assert page.locator("main h1").count() >= 1
    page.wait_for_timeout(1000)  # errors of scripts that run after the last request (widget rendering)
    assert ours(errors) == [], errors
    if page_name in notebook_pages():
        n_fig = page.locator("main img").count()
        assert n_fig >= 1, f"{page_name} shows no figure"
    page.close()


@book
@pytest.mark.parametrize("page_name", chapter_pages())
def test_static_slider_moves_the_plot(browser, server, page_name):
    """The first precomputed slider of every chapter page works without a kernel."""
    page, errors = open_page(browser, urljoin(server, f"{page_name}.html"))
    # a precomputed slider: an HBox with a Play button and a slider, above a Stack of images
    rows = page.locator(".widget-hbox").filter(has=page.locator(".widget-play")).filter(
        has=page.locator(".widget-slider"))
    if rows.count() == 0:
        page.wait_for_timeout(3000)
    assert rows.count() >= 1, f"{page_name} has no precomputed slider (aimc_lib.widgets.frame_slider)"
    row = rows.first
    row.wait_for(state="visible", timeout=20_000)
    slider = row.locator(".widget-slider")
    stack = row.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")

    def visible_image():
        imgs = stack.locator(".widget-image")
        return [imgs.nth(i).get_attribute("src") for i in range(imgs.count()) if imgs.nth(i).is_visible()]

    before = visible_image()
    readout_before = stack.locator(".widget-readout").first.inner_text()
    assert len(before) == 1
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    # moved faster than the frames swap (the race that widgets-config.js, item 4, guards), then 3 right
    for _ in range(6):
        handle.press("ArrowRight")
        handle.press("ArrowLeft")
    for _ in range(3):
        handle.press("ArrowRight")
    page.wait_for_timeout(500)
    after = visible_image()
    assert len(after) == 1 and after != before, "moving the slider did not change the plot"
    assert stack.locator(".widget-readout").first.inner_text() != readout_before
    # the Play button advances the frames on its own (within 5 s)
    stack.locator(".widget-play button").first.click()
    for _ in range(50):
        page.wait_for_timeout(100)
        if visible_image() != after:
            break
    assert visible_image() != after
    assert ours(errors) == [], errors
    page.close()


# Code lines longer than the text column (about 76 characters at 1280 px) wrap (book/_static/code-wrap.css).
@book
@pytest.mark.parametrize("page_name", notebook_pages())
def test_code_cells_fit_the_page_width(browser, server, page_name):
    """No code cell's input is cut off at the right edge of the page (no horizontal scrolling)."""
    page, _ = open_page(browser, urljoin(server, f"{page_name}.html"))
    wide = page.evaluate("""() => [...document.querySelectorAll('div.cell_input pre')]
        .filter(pre => pre.getClientRects().length > 0 && pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => pre.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b))""")
    page.close()
    assert wide == [], f"{page_name}: {len(wide)} code cells wider than the page, e.g. {wide[:3]}"


@book
def test_a_disposed_widget_ignores_a_late_message(browser, server):
    """The race behind a rare console error, made deterministic: a Stack disposes the frame it showed
    before the frame's queued resize message runs. widgets-config.js (item 4) drops such messages."""
    page, errors = open_page(browser, urljoin(server, "book/01_crossbars.html"))
    outcome = page.evaluate("""() => new Promise(resolve => window.require(["@jupyter-widgets/base"], base => {
        const frames = [new base.JupyterLuminoWidget({view: {processLuminoMessage() {}, remove() {}}}),
                        new base.JupyterLuminoPanelWidget({view: {processLuminoMessage() {}, remove() {}}})];
        try {
            for (const frame of frames) { frame.dispose(); frame.processMessage({type: "resize", width: -1, height: -1}); }
            resolve("ok");
        } catch (e) { resolve(String(e)); }
    }))""")
    assert outcome == "ok", outcome
    assert ours(errors) == [], errors
    page.close()


@book
def test_the_race_is_still_there_without_the_guard(browser, server):
    """What the guard is for, with the pinned @jupyter-widgets/html-manager (1.0.15): a disposed
    frame's own processMessage still throws. If this fails, upstream fixed it: drop item 4."""
    page, errors = open_page(browser, urljoin(server, "book/01_crossbars.html"))
    outcome = page.evaluate("""() => new Promise(resolve => window.require(["@jupyter-widgets/base"], base => {
        const frame = new base.JupyterLuminoWidget({view: {processLuminoMessage() {}, remove() {}}});
        frame.dispose();
        try { frame.__aimcUnguardedProcessMessage({type: "resize", width: -1, height: -1}); resolve("no error"); }
        catch (e) { resolve(String(e)); }
    }))""")
    assert "processLuminoMessage" in outcome, outcome
    page.close()


@book
@pytest.mark.parametrize("page_name", ["book/02_pcm_device"])
def test_launch_links_point_at_the_notebook(built_site, page_name):
    html = (built_site / f"{page_name}.html").read_text()
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = urlparse(cfg["repository"]["url"]).path.strip("/")
    branch = cfg["repository"]["branch"]
    assert f"https://colab.research.google.com/github/{repo}/blob/{branch}/{page_name}.ipynb" in html
    assert re.search(rf"https://mybinder.org/v2/gh/{re.escape(repo)}/{branch}\?urlpath=\S*{re.escape(page_name)}.ipynb",
                     html)
    assert (ROOT / f"{page_name}.ipynb").exists()


@book
def test_internal_links_resolve(built_site):
    broken = []
    pages = [p for p in built_site.rglob("*.html") if p.relative_to(built_site).parts[0] not in ("_static", "_sources")]
    assert len(pages) >= len(toc_files())
    for page in pages:
        for href in re.findall(r'href="([^"#]+)(?:#[^"]*)?"', page.read_text()):
            if re.match(r"^[a-z]+:", href) or href.startswith("//"):
                continue
            target = (page.parent / href.split("?")[0]).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(built_site)} -> {href}")
    assert broken == []


# ---- the PDF of the built book ---------------------------------------------------------------

@book
def test_make_pdf_prints_the_whole_book(built_site, chromium, tmp_path):
    """make pdf's step on the fast build: every page of _toc.yml, in order, in one PDF."""
    n_pages = print_pdf.print_book(built_site, tmp_path / "book.pdf", chromium)
    assert (tmp_path / "book.pdf").read_bytes().startswith(b"%PDF")
    assert n_pages >= 60, n_pages
    # Every page's title is printed and is a top-level bookmark (the theme's print style hides h1s).
    assert print_pdf.bookmark_count(tmp_path / "book.pdf", top_level=True) == len(toc_files())
    from bs4 import BeautifulSoup

    def title(soup):
        return soup.select_one("h1").get_text(" ", strip=True).rstrip("#").strip()

    combined = BeautifulSoup((built_site / "book" / "_print.html").read_text(), "html.parser")
    printed = [title(section) for section in combined.select("section.aimc-print-page")]
    pages = [title(BeautifulSoup((built_site / f"{f}.html").read_text(), "html.parser").select_one("article"))
             for f in toc_files()]
    assert printed == pages
