"""Every periphery backend present here computes the reference's numbers, noise included.

The PyTorch reference (``backend="torch"``) and each other backend this machine has (the compiled
CPU pass; the Triton kernel on a GPU) read the same chip of the shipped network through the
aihwkit-like periphery. Their output noise is the same stream, so they differ only by the order of
float additions in the products: an output within rounding of an ADC level's edge may land one
level apart. Such outputs are counted, layer by layer, and the predictions compared image by image.
"""
import pytest
import torch

import aimc_lib
from aimc_lib import backends
from aimc_lib.backends import AnalogLayer
from aimc_lib.evaluation import predict
from aimc_lib.mapping import AnalogChip
from aimc_lib.periphery import Periphery
from aimc_lib.times import DAY_S

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
OTHERS = [b for b in ("c", "triton") if backends.available(b, DEVICE)]
IMAGES = 1000


def test_backends_resolve_and_refuse_clearly():
    assert backends.resolve("torch") == "torch"
    assert backends.resolve("auto", DEVICE) == (OTHERS[-1] if OTHERS else "torch")
    with pytest.raises(ValueError, match="unknown periphery backend"):
        backends.resolve("fortran")
    if not backends.available("triton", "cpu"):
        with pytest.raises(ValueError, match="not available"):
            backends.resolve("triton", "cpu")


def test_this_machine_has_a_compiled_backend():
    """CI's machine (x86-64 with AVX2 and a C compiler) must run the compiled pass, not fall back silently."""
    import platform
    if DEVICE == "cpu" and platform.machine() in ("x86_64", "AMD64"):
        assert "c" in OTHERS


def _adc_level(layer: AnalogLayer, x: torch.Tensor) -> torch.Tensor:
    """One ADC level of each output in digital units: input scale s times the ADC step times W_max alpha."""
    from aimc_lib import periphery
    from aimc_lib.converters import out_step
    step = out_step(layer.periphery) * layer.digital_scale
    if isinstance(layer.layer, torch.nn.Conv2d):
        return periphery._nonzero_scale(periphery.patch_abs_max(x, layer.layer)).unsqueeze(1) * step
    x = torch.cat([x, torch.ones_like(x[:, :1])], 1) if layer.has_bias else x
    return periphery._nonzero_scale(x.abs().amax(1, keepdim=True)) * step


@pytest.fixture(scope="module")
def reads(cifar_test):
    model = aimc_lib.pretrained("resnet32-fp32").to(DEVICE)
    per = Periphery.aihwkit_like()
    out = {}
    for b in ["torch", *OTHERS]:
        chip = AnalogChip(model, seed=3)
        out[b] = chip.read(DAY_S, "gdc", periphery=per, backend=b)
    return out, cifar_test.subset(IMAGES, seed=0)


@pytest.mark.parametrize("backend", OTHERS)
def test_each_layer_agrees_with_the_reference_but_at_adc_edges(reads, backend):
    models, test = reads
    ref_layers = {n: m for n, m in models["torch"].named_modules() if isinstance(m, AnalogLayer)}
    other_layers = {n: m for n, m in models[backend].named_modules() if isinstance(m, AnalogLayer)}
    assert set(ref_layers) == set(other_layers) and all(m.backend == backend for m in other_layers.values())
    inputs = {}
    def keep_input(name):
        def hook(mod, inp, out):
            inputs.setdefault(name, inp[0].clone())  # returns None: the layer's output is kept
        return hook
    hooks = [m.register_forward_hook(keep_input(n)) for n, m in ref_layers.items()]
    x = aimc_lib.data.normalize(test.x[:50], DEVICE).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        models["torch"](x)
    for h in hooks:
        h.remove()
    total = apart = 0
    for name, ref in ref_layers.items():
        for layer in (ref, other_layers[name]):
            layer.images_seen = 0  # both compute images 0..49 of the read: the same noise rows
        y_ref, y = ref(inputs[name]), other_layers[name](inputs[name])
        level = _adc_level(ref, inputs[name]).expand_as(y_ref)
        d = (y - y_ref).abs()
        differ = d > 1e-4 * level
        # where they differ, exactly one ADC level apart
        torch.testing.assert_close(d[differ], level[differ], rtol=1e-4, atol=0)
        total += y.numel()
        apart += int(differ.sum())
    # outputs at an edge are rare: a last-bit difference decides them
    assert apart <= 1e-4 * total, (apart, total)


@pytest.mark.skipif("c" not in OTHERS, reason="needs the compiled CPU library")
def test_cpus_without_avx2_run_compiled_loops_around_the_product(reads, monkeypatch):
    """On a CPU without the one-pass conv (e.g. ARM), backend "c" is the reference's patch matrix with its
    abs-max, DAC and output stage compiled: the same numbers (noise within float rounding)."""
    from aimc_lib import periphery_cpu
    models, test = reads
    x = aimc_lib.data.normalize(test.x[:20], DEVICE).contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(periphery_cpu, "has_dac_conv", lambda: False)
    monkeypatch.setattr(periphery_cpu, "dac_conv", None)  # never called
    with torch.no_grad():
        for layer in (models["c"].conv1, models["torch"].conv1):
            layer.images_seen = 0  # both compute images 0..19 of the read: the same noise rows
        y_c, y_ref = models["c"].conv1(x), models["torch"].conv1(x)
        level = _adc_level(models["torch"].conv1, x).expand_as(y_ref)
    differ = (y_c - y_ref).abs() > 1e-4 * level
    assert int(differ.sum()) <= 1e-4 * y_ref.numel()
    torch.testing.assert_close((y_c - y_ref).abs()[differ], level[differ], rtol=1e-4, atol=0)


@pytest.mark.parametrize("backend", OTHERS)
def test_a_chip_predicts_the_same_on_every_backend(reads, backend):
    models, test = reads
    p_ref = predict(models["torch"], test, batch_size=250)
    p = predict(models[backend], test, batch_size=500)  # other batching: the noise is keyed by image
    differ = int((p != p_ref).sum())
    # a chip's accuracy agrees within 5 test images of 10,000 (here: of IMAGES)
    assert differ <= max(1, 5 * IMAGES // 10_000), differ


def test_the_command_line_reads_through_the_periphery_on_a_chosen_backend(tmp_path, data_path):
    import json

    from aimc_lib.cli import main
    out = tmp_path / "per.json"
    rc = main(["drift", "resnet32-fp32", "--out", str(out), "--chips", "1", "--times", "60", "--test-subset", "20",
               "--periphery", "aihwkit", "--backend", "torch", "--data", data_path, "--threads", "1"])
    meta = json.loads(out.read_text())["meta"]
    assert rc == 0 and meta["periphery_backend"] == "torch" and meta["stream"] == "philox4x32-10"
    assert meta["periphery"]["out_noise"] == 0.04
