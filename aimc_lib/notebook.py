"""What the book's notebooks need from the book build, made optional for the learner's machine.

The chapters paste computed numbers into their text with MyST-NB's ``glue``. MyST-NB belongs to the
book build (``pip install aimc_lib[book]``), not to Colab, Binder or a plain ``pip install
aimc_lib[notebooks]``, so the notebooks import ``glue`` from here: with MyST-NB installed it is
MyST-NB's own function (the website gets its glued values); without it, a value glued with
``display=False`` is only dropped (no text references it outside the website), and one glued with
``display=True`` is shown as usual.
"""
from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:text}`` roles, as ``myst_nb.glue`` does.

    ``display`` as in MyST-NB: also show the value in the cell's output. Without MyST-NB installed
    nothing is stored, and the value is shown only when ``display`` is true.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"glue: name must be a non-empty string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as ipython_display
            ipython_display(value)
        return
    myst_glue(name, value, display=display)
