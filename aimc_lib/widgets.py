"""Sliders that also work on the static website, where no Python kernel runs.

:func:`frame_slider` renders one figure per slider position in advance and stacks the images in
a ``widgets.Stack``; the slider and a Play button are ``jslink``-ed to the stack in the browser,
so moving the slider swaps images without any Python. In a live kernel the same widget works
too; use ``ipywidgets.interact`` there for free-form exploration.
"""
from __future__ import annotations

import io
from typing import Callable, Sequence

import matplotlib.pyplot as plt


def fig_to_png(fig, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def frame_slider(render: Callable[[object], "plt.Figure"], values: Sequence, labels: Sequence[str] | None = None,
                 description: str = "value", initial: int = 0, interval_ms: int = 700, dpi: int = 90):
    """A slider over ``values`` that swaps precomputed figures, with a Play button.

    ``render(value)`` returns a matplotlib figure for one slider position; ``labels`` are the
    texts shown on the slider (default ``str(value)``). Returns an ``ipywidgets.VBox``.
    """
    import ipywidgets as w

    if len(values) < 2:
        raise ValueError("frame_slider needs at least two values")
    labels = [str(v) for v in values] if labels is None else list(labels)
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    images = [w.Image(value=fig_to_png(render(v), dpi), format="png", layout=w.Layout(width="auto"))
              for v in values]
    stack = w.Stack(images, selected_index=initial)
    slider = w.SelectionSlider(options=labels, index=initial, description=description, continuous_update=True,
                               style={"description_width": "initial"}, layout=w.Layout(width="420px"))
    play = w.Play(min=0, max=len(values) - 1, value=initial, interval=interval_ms, description="Play")
    w.jslink((slider, "index"), (stack, "selected_index"))
    w.jslink((play, "value"), (slider, "index"))
    return w.VBox([w.HBox([play, slider]), stack])


def live_explorer(render: Callable[..., "plt.Figure"], dpi: int = 90, **sliders):
    """Sliders that re-draw a figure on every move in a live kernel, like ``ipywidgets.interact``.

    ``render(**values)`` returns a matplotlib figure; ``sliders`` maps each keyword of ``render``
    to an ipywidgets slider. The figure is shown as an ``Image`` widget updated by a Python
    callback, not through an ``Output`` widget: headless notebook execution (the book build)
    can hang on ``interact``'s Output widget (jupyter/nbclient#312). On the static website the
    explorer shows its initial figure; use :func:`frame_slider` for sliders that work there.
    """
    import ipywidgets as w

    if not sliders:
        raise ValueError("live_explorer needs at least one slider")
    image = w.Image(format="png", layout=w.Layout(width="auto"))

    def update(_change=None):
        image.value = fig_to_png(render(**{name: s.value for name, s in sliders.items()}), dpi)

    for s in sliders.values():
        s.observe(update, names="value")
    update()
    return w.VBox([*sliders.values(), image])
