"""Publishing the course: the Pages workflow, the widget JavaScript's pins, the PDF's page numbers
and bookmarks, and the downloads the site links to."""
import asyncio
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book_tools"))
import find_browser  # noqa: E402
import print_pdf  # noqa: E402

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_the_pages_workflow_builds_with_the_readme_command_and_publishes_the_site():
    workflow = _workflow()
    build = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "make book" for step in build)
    assert "make book " in (ROOT / "README.md").read_text()
    upload = next(s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and workflow["jobs"]["build"]["needs"] == "test"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert workflow["permissions"] == {"contents": "read"}
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_pull_requests_run_the_unit_tests_with_a_pip_cache_and_only_main_publishes():
    workflow = _workflow()
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    test = workflow["jobs"]["test"]
    assert "if" not in test and any(s.get("run") == "make test-unit" for s in test["steps"])
    for name in ("build", "deploy"):
        assert workflow["jobs"][name]["if"] == "github.event_name != 'pull_request'"
    for name in ("test", "build"):
        setup = next(s for s in workflow["jobs"][name]["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
        assert setup["with"]["cache"] == "pip" and "constraints.txt" in setup["with"]["cache-dependency-path"]
    assert workflow["env"]["PYTHON_VERSION"] == "3.11"


def test_current_action_majors_node_24_and_reports_kept_on_failure():
    workflow = _workflow()
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    minimum = {"actions/checkout": 6, "actions/setup-python": 6, "actions/setup-node": 6, "actions/cache": 5,
               "actions/upload-pages-artifact": 5, "actions/deploy-pages": 5, "actions/upload-artifact": 7}
    used = {}
    for s in steps:
        if "uses" in s:
            name, ref = s["uses"].split("@")
            used[name] = int(re.fullmatch(r"v(\d+)", ref).group(1))
    assert set(used) == set(minimum)
    assert all(used[n] >= minimum[n] for n in used), used
    assert int(workflow["env"]["NODE_VERSION"]) >= 24
    keep = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert keep["if"] == "failure()" and keep["with"]["path"] == "_build/html/reports/"


def test_requirejs_is_pinned_past_cve_2024_38999_everywhere():
    pkg = json.loads((ROOT / "widgets" / "package.json").read_text())
    lock = json.loads((ROOT / "widgets" / "package-lock.json").read_text())
    for version in (pkg["dependencies"]["requirejs"], lock["packages"][""]["dependencies"]["requirejs"],
                    lock["packages"]["node_modules/requirejs"]["version"]):
        assert _version(version) >= (2, 3, 7), version
    # Every dependency is an exact pin (the lock file is what `npm ci` installs).
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pkg["dependencies"].values())


def test_the_pdf_has_page_numbers_and_bookmarks(tmp_path):
    options = print_pdf.pdf_options(tmp_path / "x.pdf")
    assert options["display_header_footer"] and options["outline"] and options["tagged"]
    assert 'class="pageNumber"' in options["footer_template"] and 'class="totalPages"' in options["footer_template"]
    browser = _browser()
    page = tmp_path / "page.html"
    page.write_text('<html><body><h1>One</h1><p>a</p><h2>One, part two</h2>'
                    '<h1 style="break-before: page">Two</h1><p>b</p>'
                    '<h1 style="break-before: page">Three</h1></body></html>')
    pdf = tmp_path / "page.pdf"
    assert print_pdf.print_pdf(page, pdf, browser) == 3
    data = pdf.read_bytes()
    titles = re.findall(rb"/Title \(([^)]*)\)\s*/Dest", data)
    assert titles and set(titles) == {b"One", b"One, part two", b"Two", b"Three"}, titles
    assert print_pdf.bookmark_count(pdf) == 4 and print_pdf.bookmark_count(pdf, top_level=True) == 3

    async def inside_a_running_event_loop():  # as in a notebook, or a test session with a browser open
        return print_pdf.print_pdf(page, tmp_path / "again.pdf", browser)

    # asyncio.run in a thread of its own: this test's thread may already hold a running loop (a
    # Playwright session of another test in the same worker), which asyncio.run refuses
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, inside_a_running_event_loop()).result() == 3


def _browser() -> str:
    browser = find_browser.find()
    if browser is None:
        pytest.skip("no Chromium or Chrome here (make browser)")
    return browser


def _tiny_site(tmp_path, articles: dict[str, str], head: str = "") -> Path:
    """A built site of ``book/<name>.html`` pages, each with one ``bd-article`` of the given HTML."""
    site = tmp_path / "html"
    (site / "book").mkdir(parents=True)
    for name, article in articles.items():
        (site / "book" / f"{name}.html").write_text(
            f"<html><head>{head}</head><body><article class='bd-article'>{article}</article></body></html>")
    return site


def test_the_book_pdf_prints_every_page_title_that_the_theme_hides_in_print(tmp_path):
    """sphinx-book-theme's print style hides the article's h1; the combined book shows each again."""
    browser = _browser()
    site = _tiny_site(tmp_path, {
        name: f"<section><h1>{title}</h1><p>text</p><section><h2>{title}, a section</h2><p>more</p></section></section>"
        for name, title in (("intro", "The intro"), ("one", "Chapter one"))},
        head="<style>@media print { .bd-article h1 { display: none; } }</style>")
    pdf = tmp_path / "book.pdf"
    assert print_pdf.print_book(site, pdf, browser, pages=["book/intro", "book/one"]) == 2
    assert print_pdf.bookmark_count(pdf, top_level=True) == 2 and print_pdf.bookmark_count(pdf) == 4
    assert set(re.findall(rb"/Title \(([^)]*)\)\s*/Dest", pdf.read_bytes())) == {
        b"The intro", b"The intro, a section", b"Chapter one", b"Chapter one, a section"}


def test_the_site_links_the_downloads_that_make_downloads_writes():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    owner, repo = urlparse(config["repository"]["url"]).path.strip("/").split("/")
    site = f"https://{owner}.github.io/{repo}/"
    footer = config["html"]["extra_footer"]
    links = re.findall(r'href="([^"]+)"', footer)
    assert links == [site + "downloads/aimc-book.pdf", site + "downloads/aimc-book-notebooks.zip"]
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndownloads:", 1)[1].split("\n\n", 1)[0]
    assert "DOWNLOADS := _build/html/downloads" in makefile
    assert "$(DOWNLOADS)/aimc-book.pdf" in recipe and "$(DOWNLOADS))/aimc-book-notebooks.zip" in recipe
    assert "book_tools/student_edition.py" in recipe
    assert any(s.get("run") == "make downloads" for s in _workflow()["jobs"]["build"]["steps"])


def test_the_book_pdf_refuses_an_outline_without_every_page(tmp_path):
    """A page whose title did not become a bookmark is an error, not a handout without it."""
    browser = _browser()
    site = _tiny_site(tmp_path, {"intro": "<section><h1>The intro</h1><p>text</p></section>",
                                 "bare": "<p>no title at all</p>"})
    with pytest.raises(RuntimeError, match="1 top-level bookmarks for the 2 pages after 1 tries"):
        print_pdf.print_book(site, tmp_path / "book.pdf", browser, pages=["book/intro", "book/bare"], tries=1)
