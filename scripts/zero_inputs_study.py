"""How often an analog layer sees an all-zero input vector (a conv patch or FC input of zeros).

    python scripts/zero_inputs_study.py             # both shipped models, all 10,000 test images

With abs-max input scaling an all-zero vector has scale 0. aihwkit's compiled tiles then return
exact zeros (the MVM is skipped); its PyTorch tile and ``aimc_lib.periphery`` read it like any
other vector, output noise included (scale 1). Whether the choice can matter depends on how often
such vectors occur; this script counts them per layer and writes
``aimc_lib/results/studies/zero_inputs.json`` (read by ``results_tables.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.data import load_cifar10, normalize
from aimc_lib.models import analog_layers
from aimc_lib.periphery import patch_abs_max
from aimc_lib.zoo import RESULTS_DIR, load_model

MODELS = ("resnet32-fp32", "resnet32-custom")


def zero_input_counts(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> dict:
    """``{layer: [all-zero input vectors, input vectors]}`` over ``images`` (normalised, NCHW)."""
    counts = {name: [0, 0] for name in analog_layers(model)}

    def hook(name):
        def count(mod, inputs, _out):
            x = inputs[0]
            s = patch_abs_max(x, mod) if isinstance(mod, torch.nn.Conv2d) else x.abs().amax(dim=-1)
            counts[name][0] += int((s == 0).sum())
            counts[name][1] += s.numel()
        return count

    handles = [m.register_forward_hook(hook(n)) for n, m in analog_layers(model).items()]
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                model(images[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return counts


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "zero_inputs.json")
    a = ap.parse_args(argv)
    setup_machine(a)
    test = load_cifar10("test")
    images = normalize(test.x).to(a.device)
    res = {"test_images": len(test), "models": {}}
    for name in MODELS:
        counts = zero_input_counts(load_model(name, a.device).eval(), images)
        res["models"][name] = counts
        zeros, total = (sum(c[i] for c in counts.values()) for i in (0, 1))
        worst = max(counts, key=lambda k: counts[k][0] / counts[k][1])
        print(f"{name}: {100 * zeros / total:.3f} % of all input vectors are all zero; most in {worst} "
              f"({100 * counts[worst][0] / counts[worst][1]:.2f} %)", flush=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
