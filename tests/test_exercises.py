"""Self-checking exercises: aimc_lib.exercises.check against keys in a temporary answers folder,
and the contract between the notebooks' check("...") calls and aimc_lib/answers/*.json."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from aimc_lib import exercises
from aimc_lib.exercises import check

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "ex-05-clipping": {"value": 20.3, "abs_tol": 1.0, "unit": "%", "fast_value": 18.0, "fast_abs_tol": 5.0,
                       "hint": "re-estimate the BatchNorm statistics first"},
    "ex-05-pair": {"value": [1.5, -2.0], "abs_tol": 0.1, "unit": "uS"},
}


@pytest.fixture
def answers(tmp_path, monkeypatch):
    (tmp_path / "05.json").write_text(json.dumps(KEYS))
    monkeypatch.setattr(exercises, "ANSWERS_DIR", tmp_path)
    monkeypatch.delenv("AIMC_FAST", raising=False)
    return tmp_path


def test_a_right_answer_is_correct_and_the_value_stays_hidden(answers, capsys):
    assert check("ex-05-clipping", 20.9) is True
    out = capsys.readouterr().out
    assert out.startswith("ex-05-clipping: correct")
    assert "20.3" not in out and "20.9" not in out


@pytest.mark.parametrize("answer,side", [(21.31, "too high"), (19.2, "too low"), (50, "too high")])
def test_a_wrong_answer_says_which_side_and_gives_the_hint(answers, capsys, answer, side):
    assert check("ex-05-clipping", answer) is False
    out = capsys.readouterr().out
    assert f"not yet: {side}" in out
    assert "Hint: re-estimate the BatchNorm statistics first" in out
    assert "20.3" not in out


def test_the_tolerance_edge_is_inclusive(answers):
    assert exercises.verdict("ex-05-clipping", 21.3)[0] is True
    assert exercises.verdict("ex-05-clipping", 19.3)[0] is True
    assert exercises.verdict("ex-05-clipping", 19.29)[0] is False


def test_fast_mode_uses_the_fast_value_and_tolerance(answers, monkeypatch):
    assert check("ex-05-clipping", 14.0) is False
    monkeypatch.setenv("AIMC_FAST", "1")
    assert check("ex-05-clipping", 14.0) is True        # 18 +- 5
    assert check("ex-05-clipping", 23.5) is False
    assert exercises.key("ex-05-clipping").value == 18.0
    assert exercises.key("ex-05-pair").value == (1.5, -2.0)  # no fast_* keys: the plain ones


@pytest.mark.parametrize("answer,correct", [(np.float32(20.5), True), (torch.tensor(20.5), True),
                                            (torch.tensor([20.5]), True), (np.array(20.5), True), (21, True),
                                            (np.float64(22.0), False), (torch.tensor(18.0), False)])
def test_numpy_and_torch_numbers_are_accepted(answers, answer, correct):
    assert exercises.verdict("ex-05-clipping", answer)[0] is correct


def test_a_list_key_checks_every_number(answers, capsys):
    assert check("ex-05-pair", [1.55, -1.95]) is True
    assert check("ex-05-pair", (1.5, -2.0)) is True
    assert check("ex-05-pair", torch.tensor([1.5, -2.0])) is True
    capsys.readouterr()
    assert check("ex-05-pair", np.array([1.5, -1.5])) is False
    out = capsys.readouterr().out
    assert "number 2 is too high" in out and "number 1" not in out and "-2" not in out


@pytest.mark.parametrize("label,answer,error,match", [
    ("ex-05-unknown", 1.0, KeyError, "no answer key for 'ex-05-unknown' in answers/05.json"),
    ("ex-07-anything", 1.0, KeyError, "answers/07.json"),
    ("clipping", 1.0, ValueError, "ex-<chapter two digits>-<slug>"),
    ("ex-5-clipping", 1.0, ValueError, "ex-<chapter two digits>-<slug>"),
    ("ex-05-clipping", "20.3", TypeError, "must be a number, got str"),
    ("ex-05-clipping", None, TypeError, "must be a number"),
    ("ex-05-clipping", True, TypeError, "must be a number, got bool"),
    ("ex-05-clipping", [20.3, 1.0], TypeError, "must be a number"),
    ("ex-05-clipping", torch.tensor([20.3, 1.0]), TypeError, "single number"),
    ("ex-05-clipping", float("nan"), ValueError, "finite"),
    ("ex-05-pair", 1.5, TypeError, "sequence of 2 numbers"),
    ("ex-05-pair", [1.5], ValueError, "must have 2 numbers, got 1"),
    ("ex-05-pair", [1.5, "x"], TypeError, r"your answer\[1\] must be a number"),
])
def test_clear_errors(answers, label, answer, error, match):
    with pytest.raises(error, match=match):
        check(label, answer)


def test_a_malformed_key_is_reported(tmp_path, monkeypatch):
    (tmp_path / "03.json").write_text(json.dumps({"ex-03-a": {"value": 1.0}, "ex-03-b": {"value": 1, "abs_tol": -1}}))
    (tmp_path / "04.json").write_text("{not json")
    monkeypatch.setattr(exercises, "ANSWERS_DIR", tmp_path)
    with pytest.raises(ValueError, match="needs at least 'value' and 'abs_tol'"):
        check("ex-03-a", 1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        check("ex-03-b", 1.0)
    with pytest.raises(ValueError, match="04.json: not valid JSON"):
        check("ex-04-a", 1.0)


def test_all_labels_lists_every_key(answers):
    (answers / "02.json").write_text(json.dumps({"ex-02-nu": {"value": 0.05, "abs_tol": 0.01}}))
    assert exercises.all_labels() == ["ex-02-nu", "ex-05-clipping", "ex-05-pair"]


# ---- the contract between the notebooks and the shipped answer keys ------------------------------

CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](ex-[^"']+)["']""")


def notebook_check_labels() -> dict[str, list[str]]:
    """{label: [notebooks]} for every check("...") call in a code cell of book/*.ipynb."""
    import nbformat
    found = {}
    for nb_path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                for label in CHECK_CALL.findall(cell.source):
                    found.setdefault(label, []).append(nb_path.name)
    return found


def test_every_checked_label_has_a_key_in_its_chapter():
    missing = []
    for label, notebooks in notebook_check_labels().items():
        chapter = exercises.chapter_of(label)
        if not any(nb.startswith(chapter) for nb in notebooks):
            missing.append(f"{label} checked in {notebooks}, not in chapter {chapter}")
        try:
            exercises.key(label, fast=False)
            exercises.key(label, fast=True)
        except (KeyError, ValueError) as e:
            missing.append(str(e))
    assert missing == []


def test_every_shipped_key_is_checked_in_a_notebook():
    used = notebook_check_labels()
    assert [label for label in exercises.all_labels() if label not in used] == []


def test_shipped_answer_files_are_well_formed():
    for path in sorted(exercises.ANSWERS_DIR.glob("*.json")):
        assert re.fullmatch(r"\d{2}[a-z]?\.json", path.name), path.name
        for label, raw in json.loads(path.read_text()).items():
            assert exercises.chapter_of(label) == path.stem, label
            assert set(raw) <= {"value", "abs_tol", "unit", "fast_value", "fast_abs_tol", "hint"}, label
            assert raw.get("hint", "x").strip(), f"{label}: empty hint"
