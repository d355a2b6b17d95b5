"""Exercises that check themselves: is an answer right, within tolerance, without revealing it?

Every numbered exercise of the book has a label ``ex-<chapter two digits>-<slug>`` and a key in
``aimc_lib/answers/<chapter two digits>.json``::

    {"ex-05-clipping": {"value": 20.3, "abs_tol": 1.0, "unit": "%",
                        "fast_value": 18.0, "fast_abs_tol": 5.0,
                        "hint": "one sentence that helps without giving the number"}}

``value`` is one number or a list of numbers (then the answer must be a sequence of as many
numbers, each compared with its own value). ``fast_value`` and ``fast_abs_tol`` (optional) are
used in fast mode (``AIMC_FAST=1``, :func:`aimc_lib.config.fast_mode`), where the notebooks
evaluate on fewer images. In a notebook::

    from aimc_lib.exercises import check
    check("ex-05-clipping", my_accuracy)   # prints "ex-05-clipping: correct" or a hint, returns a bool
"""
from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

from .checks import shown
from .config import fast_mode

ANSWERS_DIR = Path(__file__).with_name("answers")
LABEL_RE = re.compile(r"^ex-(\d{2}[a-z]?)-[a-z0-9]+(?:-[a-z0-9]+)*$")  # chapter "06" or "06b"


@dataclass(frozen=True)
class Key:
    """The answer to one exercise, as used now (fast-mode value and tolerance already chosen)."""

    label: str
    value: float | tuple[float, ...]
    abs_tol: float
    unit: str = ""
    hint: str = ""


def _number(x, what: str) -> float:
    """``x`` as a finite float, accepting Python/NumPy numbers and one-element tensors/arrays."""
    if isinstance(x, (bool, str, bytes)) or x is None:
        raise TypeError(f"{what} must be a number, got {type(x).__name__} {shown(x)}")
    if not isinstance(x, numbers.Real) and hasattr(x, "item"):
        try:  # NumPy scalars/arrays and torch tensors of exactly one element
            x = x.item()
        except (ValueError, RuntimeError):
            raise TypeError(f"{what} must be a single number, got {type(x).__name__} {shown(x)}") from None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {type(x).__name__} {shown(x)}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {v}")
    return v


def _numbers(x, n: int, what: str) -> tuple[float, ...]:
    """``x`` as ``n`` finite floats (a list, tuple, array or tensor of numbers)."""
    if isinstance(x, (str, bytes, numbers.Number)) or x is None:
        raise TypeError(f"{what} must be a sequence of {n} numbers, got {type(x).__name__} {shown(x)}")
    if hasattr(x, "tolist"):
        x = x.tolist()
    try:
        items = list(x)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of {n} numbers, got {type(x).__name__} {shown(x)}") from None
    if len(items) != n:
        raise ValueError(f"{what} must have {n} numbers, got {len(items)}")
    return tuple(_number(v, f"{what}[{i}]") for i, v in enumerate(items))


def chapter_of(label: str) -> str:
    """The chapter of an exercise label (``"ex-05-clipping"`` -> ``"05"``, ``"ex-06b-adc-step"`` -> ``"06b"``)."""
    m = LABEL_RE.match(label) if isinstance(label, str) else None
    if m is None:
        raise ValueError(f"exercise labels look like 'ex-05-clipping' (ex-<chapter two digits>-<slug>), "
                         f"got {shown(label)}")
    return m.group(1)


def load_answers(chapter: str, answers_dir: Path | None = None) -> dict:
    """The raw answer keys of one chapter (``{}`` if the chapter has no answer file)."""
    path = Path(answers_dir or ANSWERS_DIR) / f"{chapter}.json"
    if not path.exists():
        return {}
    try:
        keys = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(keys, dict):
        raise ValueError(f"{path}: expected an object of exercise labels, got {type(keys).__name__}")
    return keys


def all_labels(answers_dir: Path | None = None) -> list[str]:
    """Every exercise label that has an answer key, sorted."""
    labels = []
    for path in sorted(Path(answers_dir or ANSWERS_DIR).glob("[0-9][0-9]*.json")):
        labels += list(load_answers(path.stem, answers_dir))
    return sorted(labels)


def key(label: str, answers_dir: Path | None = None, fast: bool | None = None) -> Key:
    """The answer key of ``label``, validated; in fast mode its ``fast_value``/``fast_abs_tol``."""
    chapter = chapter_of(label)
    keys = load_answers(chapter, answers_dir)
    if label not in keys:
        known = ", ".join(sorted(keys)) or "none"
        raise KeyError(f"no answer key for {label!r} in answers/{chapter}.json (known: {known})")
    raw = keys[label]
    if not isinstance(raw, dict) or "value" not in raw or "abs_tol" not in raw:
        raise ValueError(f"answer key {label!r} needs at least 'value' and 'abs_tol'")
    fast = fast_mode() if fast is None else fast
    value = raw.get("fast_value", raw["value"]) if fast else raw["value"]
    abs_tol = raw.get("fast_abs_tol", raw["abs_tol"]) if fast else raw["abs_tol"]
    abs_tol = _number(abs_tol, f"abs_tol of {label!r}")
    if abs_tol < 0:
        raise ValueError(f"abs_tol of {label!r} must be >= 0, got {abs_tol}")
    if isinstance(value, list):
        value = _numbers(value, len(value), f"value of {label!r}")
    else:
        value = _number(value, f"value of {label!r}")
    return Key(label, value, abs_tol, str(raw.get("unit", "")), str(raw.get("hint", "")))


def _side(answer: float, value: float, abs_tol: float) -> str:
    """``""`` when within tolerance, else ``"too high"`` or ``"too low"``."""
    if abs(answer - value) <= abs_tol * (1 + 1e-12) + 1e-12:
        return ""
    return "too high" if answer > value else "too low"


def verdict(label: str, answer, answers_dir: Path | None = None, fast: bool | None = None) -> tuple[bool, str]:
    """``(correct, message)`` for ``answer`` to exercise ``label``; the message never shows the value."""
    k = key(label, answers_dir, fast)
    unit = f" {k.unit}" if k.unit and k.unit != "%" else k.unit
    hint = f" Hint: {k.hint}" if k.hint else ""
    if isinstance(k.value, tuple):
        got = _numbers(answer, len(k.value), "your answer")
        sides = [_side(a, v, k.abs_tol) for a, v in zip(got, k.value)]
        wrong = [f"number {i + 1} is {s}" for i, s in enumerate(sides) if s]
        if not wrong:
            return True, f"{label}: correct (all {len(got)} numbers within ±{k.abs_tol:g}{unit})"
        return False, f"{label}: not yet: {', '.join(wrong)}.{hint}"
    side = _side(_number(answer, "your answer"), k.value, k.abs_tol)
    if not side:
        return True, f"{label}: correct (within ±{k.abs_tol:g}{unit})"
    return False, f"{label}: not yet: {side}.{hint}"


def check(label: str, answer) -> bool:
    """Print whether ``answer`` to exercise ``label`` is right within tolerance, without revealing it.

    Args:
        label: the exercise label, e.g. ``"ex-05-clipping"``.
        answer: a number (Python, NumPy or a one-element tensor), or a sequence of numbers when the
            exercise asks for several.

    Returns:
        True if the answer is within tolerance. A malformed label, a label without a key, or an
        answer that is not a finite number (or not as many numbers as asked for) raises a
        ValueError, KeyError or TypeError that says what is wrong.
    """
    ok, message = verdict(label, answer)
    print(message)
    return ok
