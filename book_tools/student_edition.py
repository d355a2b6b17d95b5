"""The student edition: the book's notebooks and website without the solutions.

Solutions follow sphinx-exercise: a gated solution is a markdown cell that opens
```{solution-start} <label>``` , then any cells, then a markdown cell ```{solution-end}``` ; a
short solution is a ```{solution} <label>``` block inside a markdown cell. The student edition
drops every cell from solution-start to solution-end (inclusive) and every solution block;
everything else, the exercises included, is kept unchanged.

    python book_tools/student_edition.py OUT_DIR           # student notebooks OUT_DIR/<name>.ipynb
    python book_tools/student_edition.py --site STAGE_DIR  # a copy of the book to build without solutions

``make book-student`` stages the site with ``--site _build_student/src`` and builds it with
Jupyter Book into ``_build_student`` (sphinx-exercise's ``hide_solutions`` is set as well).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
FENCE = r"^\s*(`{3,}|:{3,})\s*\{%s\}"
START = re.compile(FENCE % "solution-start")
END = re.compile(FENCE % "solution-end")
BLOCK = re.compile(FENCE % "solution")
# What the staged site needs besides the notebooks (links are cheap; the book folder is rebuilt).
SITE_LINKS = ["aimc_lib", "book/_static"]


def _drop_solution_blocks(source: str) -> str:
    """``source`` without its ```{solution} ...``` blocks (fences of backticks or colons)."""
    lines, out, fence = source.split("\n"), [], None
    for line in lines:
        if fence is None:
            m = BLOCK.match(line)
            if m:
                fence = m.group(1)
                continue
            out.append(line)
        elif line.strip().startswith(fence[0] * len(fence)) and set(line.strip()) == {fence[0]} \
                and len(line.strip()) >= len(fence):
            fence = None
    if fence is not None:
        raise ValueError(f"a {{solution}} block opened with {fence} is never closed")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def strip_solutions(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` without solutions: gated solution cells and ```{solution}``` blocks removed."""
    out = nbformat.from_dict(nb)
    cells, inside = [], None
    for i, cell in enumerate(nb.cells):
        is_md = cell.cell_type == "markdown"
        if is_md and START.match(cell.source):
            if inside is not None:
                raise ValueError(f"{name}: cell {i} opens a solution inside the one opened at cell {inside}")
            inside = i
            continue
        if is_md and END.match(cell.source):
            if inside is None:
                raise ValueError(f"{name}: cell {i} closes a solution that was never opened")
            inside = None
            continue
        if inside is not None:
            continue
        if is_md and any(BLOCK.match(line) for line in cell.source.split("\n")):
            try:
                source = _drop_solution_blocks(cell.source)
            except ValueError as e:
                raise ValueError(f"{name}: cell {i}: {e}") from None
            if not source.strip():
                continue
            cell = nbformat.from_dict({**cell, "source": source})
        cells.append(cell)
    if inside is not None:
        raise ValueError(f"{name}: the solution opened at cell {inside} is never closed (solution-end)")
    out.cells = cells
    return out


def book_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("*.ipynb"))


def write_notebooks(out_dir: Path, notebooks: list[Path]) -> list[Path]:
    """Write the student version of each notebook into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        student = strip_solutions(nb, path.name)
        nbformat.validate(student)
        target = out_dir / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


def stage_site(stage: Path, root: Path = ROOT) -> Path:
    """Stage a copy of the book in ``stage`` (student notebooks, ``hide_solutions: true``); return it."""
    if stage.resolve() in (root.resolve(), *root.resolve().parents):
        raise ValueError("the staging folder must not be the repository itself")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "book").mkdir(parents=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    shutil.copy2(root / "_toc.yml", stage / "_toc.yml")
    for path in (root / "book").iterdir():
        if path.is_file() and path.suffix != ".ipynb":
            shutil.copy2(path, stage / "book" / path.name)
    for rel in SITE_LINKS:
        if (root / rel).exists():
            (stage / rel).symlink_to((root / rel).resolve(), target_is_directory=True)
    write_notebooks(stage / "book", book_notebooks(root))
    return stage


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="folder for the student notebooks (or the staged book with --site)")
    ap.add_argument("--site", action="store_true", help="stage a copy of the whole book to build without solutions")
    args = ap.parse_args(argv)
    try:
        if args.site:
            print(f"student site staged in {stage_site(args.out_dir)}")
        else:
            written = write_notebooks(args.out_dir, book_notebooks())
            print(f"{len(written)} student notebooks written to {args.out_dir}")
    except ValueError as e:
        print(f"student_edition: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
