import pytest
import torch

from aimc_lib.models import analog_layers, count_analog_weights, resnet, resnet32
from aimc_lib.plotting import network_blocks


def test_resnet32_has_exactly_the_papers_weight_count():
    m = resnet32()
    assert count_analog_weights(m) == 361_722
    assert m.depth == 32
    # 1 stem + 30 block convs + 2 projections + 1 FC
    assert len(analog_layers(m)) == 34
    per_part = {"conv1": 432, "fc": 570}
    for name, n in per_part.items():
        layer = analog_layers(m)[name]
        assert layer.weight.numel() + (layer.bias.numel() if layer.bias is not None else 0) == n
    shortcuts = sum(l.weight.numel() for n, l in analog_layers(m).items() if "shortcut" in n)
    assert shortcuts == 2016


def test_standard_widths_give_about_046m():
    # 432 + 23,040 + 87,552 + 350,208 + 2,560 (1x1) + 650 (FC)
    assert count_analog_weights(resnet(32, (16, 32, 64))) == 464_442


@pytest.mark.parametrize("depth", [20, 32, 44])
def test_depths_and_output_shape(depth):
    m = resnet(depth).eval()
    assert m.depth == depth
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bad_depth_raises():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet(33)


def test_diagram_is_read_from_the_model():
    blocks = network_blocks(resnet(20, (8, 12, 24)))
    text = " ".join(b["title"] + " " + b["body"] for b in blocks)
    assert "3 blocks" in text and "1x1 8->12" in text and "24 x 10" in text


def test_paper_figure_crops_at_tmax():
    import matplotlib
    matplotlib.use("Agg")
    from aimc_lib.plotting import paper_figure
    res = {"times_s": [1.0, 1e5, 3.15e7], "mean": [90.0, 89.0, 80.0], "std": [0.1, 0.1, 0.1],
           "meta": {"compensation": "gdc"}}
    fig = paper_figure(res, None, fp32_accuracy=92.0, tmax=1e5)
    line = [l for l in fig.axes[1].get_lines() if l.get_marker() == "s"][0]
    assert list(line.get_xdata()) == [1.0, 1e5]


def test_paper_figure_names_both_chips():
    """The headline chip's curves and, faintly, a reference chip's, each named in the legend."""
    import matplotlib
    matplotlib.use("Agg")
    from aimc_lib.plotting import paper_figure
    res = {"times_s": [1.0, 1e5], "mean": [90.0, 89.0], "std": [0.1, 0.1], "meta": {"compensation": "gdc"}}
    ideal = {**res, "mean": [91.0, 90.5]}
    fig = paper_figure(res, res, 92.0, chip="realistic chip", reference=(ideal, ideal))
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "Custom training, realistic chip (GDC)" in labels and "Direct mapping of FP32 weights, ideal chip (GDC)" in labels
    assert len(labels) == 5  # FP32, two reference curves, two headline curves
    faint = [l for l in fig.axes[1].get_lines() if l.get_alpha() == 0.45 and l.get_marker() in ("s", "D")]
    assert len(faint) == 2 and all(l.get_markerfacecolor() == "none" for l in faint)
