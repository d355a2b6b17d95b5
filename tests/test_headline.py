"""The headline: the realistic chip's results, the ideal chip beside them, and the figure drawn from them."""
import shutil

import matplotlib
import pytest

from aimc_lib import headline, zoo
from aimc_lib.periphery import Periphery

matplotlib.use("Agg")


def _legend(fig):
    return [t.get_text() for t in fig.axes[1].get_legend().get_texts()]


def _copy(names, folder):
    for name in names.values():
        dst = folder / f"{name}.json"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(zoo.RESULTS_DIR / f"{name}.json", dst)


def test_headline_figure_draws_the_realistic_chip_beside_the_ideal_one(tmp_path):
    assert headline.headline_figure(tmp_path) is None and headline.save_headline_figure(tmp_path) is None
    assert not (tmp_path / "figure.png").exists()
    _copy(headline.IDEAL, tmp_path)  # a fast reproduce run: the ideal chip only
    labels = _legend(headline.headline_figure(tmp_path))
    assert len(labels) == 3 and all("realistic" not in x for x in labels)
    assert "Custom training, ideal chip (GDC)" in labels
    _copy(headline.REALISTIC, tmp_path)
    labels = _legend(headline.headline_figure(tmp_path))
    assert "Direct mapping of FP32 weights, realistic chip (GDC)" in labels
    assert "Direct mapping of FP32 weights, ideal chip (GDC)" in labels and len(labels) == 5
    assert headline.save_headline_figure(tmp_path) == tmp_path / "figure.png"
    assert (tmp_path / "figure.png").stat().st_size > 20_000 and (tmp_path / "figure.svg").exists()


@pytest.mark.parametrize("kind", ["custom", "direct"])
def test_the_realistic_chip_is_the_ideal_chip_read_through_the_aihwkit_like_periphery(kind):
    realistic, ideal = zoo.results(headline.REALISTIC[kind]), zoo.results(headline.IDEAL[kind])
    m, i = realistic["meta"], ideal["meta"]
    assert Periphery(**m["periphery"]) == Periphery.aihwkit_like(gdc_readout="periphery")
    assert "periphery" not in i or Periphery(**i["periphery"]).is_ideal
    assert (m["model"], m["compensation"], m["pcm_params"]) == (i["model"], "gdc", i["pcm_params"])
    assert m["seeds"][:i["n_chips"]] == i["seeds"]  # the same chips


def test_the_committed_figure_is_what_the_committed_results_draw(tmp_path):
    """``aimc_lib/results/figure.png`` is drawn again from the committed results, byte for byte
    (``save_headline_figure``, as ``scripts/reproduce.py`` and the results installer call it)."""
    _copy(headline.IDEAL, tmp_path)
    _copy(headline.REALISTIC, tmp_path)
    headline.save_headline_figure(tmp_path)
    assert (tmp_path / "figure.png").read_bytes() == (zoo.RESULTS_DIR / "figure.png").read_bytes()
