"""The student edition (book_tools/student_edition.py): notebooks and site without solutions."""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
se = load_script("student_edition", folder="book_tools")

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def synthetic_notebook():
    return nbformat.v4.new_notebook(cells=[
        code("print('install')", metadata={"tags": ["remove-cell"]}),
        md("# Chapter\n\nSome text."),
        md("```{exercise}\n:label: ex-01-sum\n\nCompute 1 + 1.\n```"),
        code("from aimc_lib.exercises import check\nmy_sum = ...  # your answer"),
        md("```{solution-start} ex-01-sum\n:class: dropdown\n```"),
        code("my_sum = 1 + 1\nprint('SOLUTION-CODE', my_sum)"),
        md("SOLUTION-TEXT: the sum is 2."),
        md("```{solution-end}\n```"),
        md("Between the exercises."),
        md("````{exercise}\n:label: ex-01-short\nWhy?\n````\n\n````{solution} ex-01-short\n:class: dropdown\n"
           "SHORT-SOLUTION with a nested block\n```python\nx = 1\n```\n````\n\nText after the short solution."),
        md(":::{solution} ex-01-sum\nCOLON-SOLUTION\n:::"),
        md("After."),
    ])


def test_gated_and_short_solutions_are_removed_and_everything_else_is_kept():
    nb = synthetic_notebook()
    student = se.strip_solutions(nb, "synthetic.ipynb")
    sources = [c.source for c in student.cells]
    text = "\n".join(sources)
    for gone in ("solution-start", "solution-end", "SOLUTION-CODE", "SOLUTION-TEXT", "SHORT-SOLUTION",
                 "{solution}", "COLON-SOLUTION", "x = 1"):
        assert gone not in text, gone
    kept = [nb.cells[i].source for i in (0, 1, 2, 3, 8)]
    assert sources[:5] == kept
    assert sources[5] == "````{exercise}\n:label: ex-01-short\nWhy?\n````\n\nText after the short solution."
    assert sources[6:] == ["After."]
    assert student.cells[0].metadata["tags"] == ["remove-cell"]
    nbformat.validate(student)
    assert len(nb.cells) == 12  # the input is not modified


@pytest.mark.parametrize("cells,match", [
    ([md("```{solution-start} ex-01-a\n```"), code("x = 1")], "never closed"),
    ([md("```{solution-end}\n```")], "never opened"),
    ([md("```{solution-start} ex-01-a\n```"), md("```{solution-start} ex-01-b\n```")], "inside the one opened at cell 0"),
    ([md("```{solution} ex-01-a\nno end")], "never closed"),
])
def test_unbalanced_solutions_are_clear_errors(cells, match):
    with pytest.raises(ValueError, match=match):
        se.strip_solutions(nbformat.v4.new_notebook(cells=cells), "bad.ipynb")


def solution_cell_indices(nb):
    """Indices of the cells from each solution-start to its solution-end (inclusive)."""
    out, inside = set(), False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and se.START.match(cell.source):
            inside = True
        if inside:
            out.add(i)
        if cell.cell_type == "markdown" and se.END.match(cell.source):
            inside = False
    return out


def test_the_real_notebooks(tmp_path):
    notebooks = se.book_notebooks()
    assert len(notebooks) >= 8
    assert se.main([str(tmp_path)]) == 0
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / path.name, as_version=4)
        nbformat.validate(student)
        for cell in student.cells:
            assert not se.START.match(cell.source) and not se.END.match(cell.source), path.name
            assert not any(se.BLOCK.match(line) for line in cell.source.split("\n")), path.name
        removed = solution_cell_indices(nb)
        kept = [c for i, c in enumerate(nb.cells) if i not in removed]
        assert len(student.cells) <= len(kept)
        # every kept cell is there, in order (a markdown cell may only lose its {solution} blocks)
        it = iter(student.cells)
        for cell in kept:
            if cell.cell_type == "code" or not any(se.BLOCK.match(l) for l in cell.source.split("\n")):
                assert next(it).source == cell.source, path.name


def test_staged_site_has_the_switch_and_no_solutions(tmp_path):
    stage = se.stage_site(tmp_path / "src")
    config = yaml.safe_load((stage / "_config.yml").read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    assert config["repository"] == yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert (stage / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text()
    assert (stage / "aimc_lib").resolve() == (ROOT / "aimc_lib").resolve()
    assert (stage / "book" / "intro.md").exists() and (stage / "book" / "references.bib").exists()
    staged = sorted(p.name for p in (stage / "book").glob("*.ipynb"))
    assert staged == [p.name for p in se.book_notebooks()]
    for p in (stage / "book").glob("*.ipynb"):
        assert "solution-start" not in p.read_text()
    with pytest.raises(ValueError, match="must not be the repository"):
        se.stage_site(ROOT)


@pytest.mark.book
def test_student_site_builds_without_solutions(tmp_path):
    """A small book with an exercise and both kinds of solution, built like make book-student."""
    src = tmp_path / "repo"
    (src / "book").mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    small = {"title": "t", "only_build_toc_files": True, "exclude_patterns": config["exclude_patterns"],
             "execute": {"execute_notebooks": "force"},
             "sphinx": {"extra_extensions": config["sphinx"]["extra_extensions"],
                        "config": {"nb_execution_raise_on_error": True}}}
    (src / "_config.yml").write_text(yaml.safe_dump(small))
    (src / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/01_x\n")
    (src / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`ex-01-sum`.\n")
    nbformat.write(synthetic_notebook(), src / "book" / "01_x.ipynb")
    stage = se.stage_site(tmp_path / "out" / "src", root=src)
    jb = Path(sys.executable).with_name("jupyter-book")
    for source, out in ((src, tmp_path / "full"), (stage, tmp_path / "out")):
        proc = subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", "--path-output", str(out),
                               str(source)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    full = (tmp_path / "full" / "_build" / "html" / "book" / "01_x.html").read_text()
    student = (tmp_path / "out" / "_build" / "html" / "book" / "01_x.html").read_text()
    for html in (full, student):
        assert "Compute 1 + 1." in html and "Between the exercises." in html and "Text after the short" in html
    for marker in ("SOLUTION-CODE", "SOLUTION-TEXT", "SHORT-SOLUTION", "COLON-SOLUTION"):
        assert marker in full, marker
        assert marker not in student, marker
