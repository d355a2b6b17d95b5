"""Facts the book states, pinned: sources that render, numbers recomputed from the model, one
definition of t = 0, and one exercise style (each numbered exercise checks its answer or is a
discussion question listed on the instructors' page)."""
import json
import re
from pathlib import Path

import pytest
import torch

from aimc_lib import exercises, pcm
from aimc_lib.times import DAY_S, DEFAULT_TIMES_S, HOUR_S, MONTH_S, YEAR_S

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
PAGES = sorted(BOOK.glob("*.md"))


def cells(path, kind):
    """The sources of the cells of one kind ("markdown" or "code") of a notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def prose():
    """{name: text} of every markdown page and every notebook's markdown."""
    out = {p.name: p.read_text(encoding="utf-8") for p in PAGES}
    out |= {p.name: "\n".join(cells(p, "markdown")) for p in NOTEBOOKS}
    return out


def flat(text):
    return " ".join(text.split())


def test_no_tab_in_any_markdown_or_latex_source():
    # a "\t" in a notebook's JSON decodes to a TAB: "\text" loses its "\t" and the equation breaks
    sources = prose() | {"references.bib": (BOOK / "references.bib").read_text(encoding="utf-8")}
    assert [name for name, text in sources.items() if "\t" in text] == []


def test_latex_text_commands_are_intact():
    for name, text in prose().items():
        assert not re.search(r"(?<![\\\w])ext\{", text), name  # "\text{" with its "\t" eaten


# ---- the PCM model's numbers, recomputed -----------------------------------------------------

def test_science_page_read_noise_table_is_the_formula():
    text = (BOOK / "science.md").read_text(encoding="utf-8")
    table = text.split("(read-noise-table)=", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| ([\d.]+) µS[^|]*\| ([\d.]+) % \| ([\d.]+) % \|$", table, re.M)
    assert len(rows) >= 3, table
    params = pcm.PCMParams()
    for g_us, at_0, at_day in rows:
        q_s = pcm.read_noise_q_s(torch.tensor(float(g_us)), params).item()
        for stated, t in ((at_0, 0.0), (at_day, DAY_S)):
            assert float(stated) == pytest.approx(100 * q_s * pcm.read_noise_time_factor(t, params), abs=0.05), \
                (g_us, t)


def test_science_page_time_grid_is_the_library_grid():
    decades = [10.0 ** k for k in range(-5, 6)]
    assert sorted(DEFAULT_TIMES_S) == sorted(decades + [HOUR_S, DAY_S, MONTH_S, YEAR_S])
    assert f"{len(DEFAULT_TIMES_S)} times" in flat((BOOK / "science.md").read_text(encoding="utf-8"))


def test_the_earliest_read_has_not_drifted():
    # "the drift factor (1 + 1e-5 s / t0)^-nu differs from 1 by less than 1e-6", for any nu up to 1
    for nu in (0.049, 0.1, 0.3, 1.0):
        assert 0 < 1 - pcm.mean_drift_factor(1e-5, nu) < 1e-6


def test_t0_is_defined_once_and_stated_identically():
    science = (BOOK / "science.md").read_text(encoding="utf-8")
    start = science.index("**What $t = 0$ means.**")
    definition = flat(science[start:science.index("$10^{-6}$.", start) + len("$10^{-6}$.")])
    assert "the conductance at the end of programming" in definition and "$t_0$ = 20 s" in definition
    for name in ("02_pcm_device.ipynb", "06_drift_compensation.ipynb", "07_reproducing_the_figure.ipynb"):
        assert definition in flat("\n".join(cells(BOOK / name, "markdown"))), name
    # and no page contradicts it by calling G_P a value measured at t0
    assert [n for n, t in prose().items() if "measured about $t_0$" in t] == []


def test_model_is_not_said_to_be_calibrated_on_a_million_devices():
    # characterised on more than 10,000 devices; one million is the prototype array's size
    wrong = re.compile(r"(calibrated|measured|characteri[sz]ed)\s+(on|over)\s+(IBM's\s+array\s+of\s+)?"
                       r"(a|one)\s+million", re.I)
    sources = prose() | {"pcm.py": pcm.__doc__}
    assert [name for name, text in sources.items() if wrong.search(flat(text))] == []
    assert "10,000 devices" in pcm.__doc__


def test_energy_answer_compares_like_with_like():
    # one 32-bit word holds four 8-bit weights: 5 pJ / 4 against an 8-bit multiply of 0.2 pJ
    fetch, multiply = 5.0 / 4, 0.2
    assert exercises.key("ex-01-energy", fast=False).value == pytest.approx(100 * fetch / (fetch + multiply), abs=0.01)
    ch1 = flat("\n".join(cells(BOOK / "01_crossbars.ipynb", "markdown")))
    assert "25 times" not in ch1 and "96.2 %" not in ch1


# ---- exercises: one style, each one checked or a discussion question ---------------------------

EXERCISE = re.compile(r"```\{exercise\}(?P<title>[^\n]*)\n:label: (?P<label>\S+)\n(?P<body>.*?)\n```", re.S)


def exercises_in(path):
    return [m for text in cells(path, "markdown") for m in EXERCISE.finditer(text)]


def test_every_exercise_has_a_title_in_the_directive():
    found = [(p.name, m["label"]) for p in NOTEBOOKS for m in exercises_in(p)]
    assert len(found) >= 29
    for p in NOTEBOOKS:
        for m in exercises_in(p):
            assert m["title"].strip(), f"{p.name} {m['label']}: give the title as {{exercise}} Title"
            assert not m["body"].lstrip().startswith("**"), f"{p.name} {m['label']}: bold title in the body"


def test_every_exercise_checks_its_answer_or_is_a_listed_discussion_question():
    instructors = (BOOK / "instructors.md").read_text(encoding="utf-8")
    for p in NOTEBOOKS:
        code = "\n".join(cells(p, "code"))
        for m in exercises_in(p):
            label = m["label"]
            checked = f'check("{label}"' in code
            discussion = "discussion question" in m["body"]
            assert checked != discussion, f"{label}: either a check or a discussion question"
            if discussion:
                assert f"{{numref}}`{label}`" in instructors, f"{label}: list it on the instructors' page"


def test_learner_cells_use_one_placeholder_and_solutions_assert_their_check():
    for p in NOTEBOOKS:
        for src in cells(p, "code"):
            assert not re.search(r"^\w+ = \.\.\.", src, re.M), f"{p.name}: use None as the placeholder"
            for line in src.splitlines():
                if re.match(r"\s*(assert )?check\(", line) and not line.startswith("    "):
                    # a solution (not the learner's guarded call) re-derives its key when the notebook runs
                    assert line.startswith("assert check("), f"{p.name}: {line.strip()}"


def test_exercises_are_referenced_by_label_not_by_a_typed_number():
    typed = re.compile(r"\bexercises? \d", re.I)
    assert [name for name, text in prose().items() if typed.search(text)] == []
