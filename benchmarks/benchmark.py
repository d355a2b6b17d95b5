"""Speed of simulated PCM vs plain FP32, measured in one run on one machine.

* FP32 inference throughput of ResNet-32 on the CIFAR-10 test set (images/s);
* simulated-PCM evaluation (program a chip + read at one time + GDC + the same inference),
  as a ratio to FP32 inference (goal: <= 1.1x);
* the same evaluation read through the aihwkit-like periphery (8-bit DAC and ADC, output noise,
  GDC read through the periphery), on the backend ``"auto"`` picks (:mod:`aimc_lib.backends`: the
  fused Triton kernel on a GPU, the compiled one-pass DAC conv on an x86-64 CPU with AVX2), as a
  ratio to FP32 inference (goal: <= 1.5x), and the test-set inference of that read chip alone
  (its programming and GDC readouts excluded), also on the ``"torch"`` backend (the reference,
  timed on the first 1,000 test images against FP32 inference of the same images);
* the output noise of that evaluation alone (one draw per output of every analog layer from the
  counter-based stream of :mod:`aimc_lib.rng` in PyTorch ops, on the same 1,000 images): what the
  reference pays for its noise (the compiled backends draw the same stream inside their kernels);
* one noise-aware training step as a ratio to one FP32 training step (goal: <= 1.05x);
* peak resident memory.

Each variant is timed several times, interleaved, and the median is reported: compare the
ratios, not absolute numbers across machines. On a GPU every variant runs in strict float32 (no
TF32, as the library's GPU results), so the ratios compare the same arithmetic. Usage:
``python benchmarks/benchmark.py [--quick] [--threads N] [--device cuda] [--step-images test] [--out FILE]``
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from aimc_lib import backends, rng
from aimc_lib.config import eval_batch_size, provenance, strict_fp32
from aimc_lib.cpu_memory import keep_freed_memory
from aimc_lib.data import batches, load_cifar10
from aimc_lib.evaluation import accuracy
from aimc_lib.mapping import AnalogChip
from aimc_lib.models import analog_layers, resnet32
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from aimc_lib.zoo import available, pretrained
from aimc_lib.training import TrainConfig, clip_weights, make_optimizer, noisy_weights


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
        out.append(time.perf_counter() - t0)
    return out


def analog_outputs_per_image(model: torch.nn.Module, device) -> list[int]:
    """Outputs of each analog layer for one image (each one gets its own output-noise draw)."""
    sizes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: sizes.append(out[0].numel()))
             for m in analog_layers(model).values()]
    with torch.inference_mode():
        model(torch.zeros(1, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last))
    for h in hooks:
        h.remove()
    return sizes


def triton_config() -> dict:
    """The fused GPU kernel's launch settings, as run."""
    from aimc_lib import periphery_triton as t
    return {"block_m": t.BLOCK_M, "num_warps": t.NUM_WARPS, "input_precision": t.INPUT_PRECISION,
            "triton": t.triton.__version__}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 test images and few steps (a smoke run)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per variant (median reported)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the ratios are what to compare)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    ap.add_argument("--step-images", choices=["train", "test"], default="train",
                    help="split whose first images feed the training-step timings (test: where only the "
                         "test set is at hand, e.g. a machine the training set cannot be copied to)")
    a = ap.parse_args(argv)
    keep_freed_memory()  # as the CLI and the notebooks do (aimc_lib.cpu_memory)
    if a.threads:
        torch.set_num_threads(a.threads)
    test = load_cifar10("test")
    train = load_cifar10("train") if a.step_images == "train" else test
    if a.quick:
        test = test.subset(1000)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        strict_fp32()
    model = pretrained("resnet32-fp32") if "resnet32-fp32" in available() else resnet32().eval()
    model = model.to(dev, memory_format=torch.channels_last)
    bs = eval_batch_size(dev)

    # 1 and 2: FP32 inference vs program + read + GDC + inference, interleaved
    fp32_t, pcm_t, per_t, per_inf_t, seeds = [], [], [], [], iter(range(1000))
    fp32_small_t, per_torch_t, noise_t = [], [], []
    aihwkit = Periphery.aihwkit_like()
    backend = backends.resolve("auto", dev)
    outputs = analog_outputs_per_image(model, dev)
    small = test.subset(1000) if len(test) > 1000 else test

    def noise_draws_only():  # what the periphery eval draws on 1,000 images, batch by batch and layer by layer
        for i in range(0, len(small), bs):
            n = min(bs, len(small) - i)
            for layer, size in enumerate(outputs):
                rng.Stream(0, rng.OUTPUT_NOISE, layer, 0, 1).normal(n, size, row0=i, device=dev)
    per_chip = AnalogChip(model, PCMParams(), seed=999).read(3600.0, "gdc", periphery=aihwkit)
    per_chip_torch = AnalogChip(model, PCMParams(), seed=999).read(3600.0, "gdc", periphery=aihwkit, backend="torch")
    accuracy(model, small, bs)  # warm-up
    accuracy(per_chip, small, bs)  # warm-up (compiles the GPU kernel)
    for _ in range(a.repeats):
        fp32_t += timed(lambda: accuracy(model, test, bs), 1)
        pcm_t += timed(lambda: accuracy(AnalogChip(model, PCMParams(), seed=next(seeds)).read(3600.0, "gdc"), test, bs), 1)
        per_t += timed(lambda: accuracy(AnalogChip(model, PCMParams(), seed=next(seeds)).read(
            3600.0, "gdc", periphery=aihwkit), test, bs), 1)
        per_inf_t += timed(lambda: accuracy(per_chip, test, bs), 1)
        fp32_small_t += timed(lambda: accuracy(model, small, bs), 1)
        per_torch_t += timed(lambda: accuracy(per_chip_torch, small, bs), 1)
        noise_t += timed(noise_draws_only, 1)
    # the simulation overhead alone (program + read + GDC), no inference
    sim_t = timed(lambda: AnalogChip(model, PCMParams(), seed=next(seeds)).read(3600.0, "gdc"), a.repeats)

    # 3: one training step, FP32 vs noise-aware (eta 3.8 %, clipping), interleaved
    cfg = TrainConfig()
    net = resnet32().to(dev, memory_format=torch.channels_last).train()
    opt = make_optimizer(net, cfg)
    gen = torch.Generator(dev).manual_seed(0)
    steps = 3 if a.quick else 10
    xb, yb = next(batches(train.subset(128 * steps), 128 * steps))
    xs, ys = xb.to(dev).split(128), yb.to(dev).split(128)

    def step(noisy: bool):
        for x, y in zip(xs, ys):
            if noisy:
                out = torch.func.functional_call(net, noisy_weights(net, 0.038, gen), (x,), strict=False)
            else:
                out = net(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if noisy:
                clip_weights(net, 2.0)

    step(False)  # warm-up
    fp32_step, noisy_step = [], []
    for _ in range(a.repeats):
        fp32_step += timed(lambda: step(False), 1)
        noisy_step += timed(lambda: step(True), 1)

    med = statistics.median
    periphery_path = {"triton": "fused Triton kernel", "c": "one-pass compiled DAC conv (AVX2)",
                      "torch": "PyTorch reference"}[backend]
    res = {
        "fp32_inference_images_per_s": len(test) / med(fp32_t),
        "pcm_eval_over_fp32": med(pcm_t) / med(fp32_t),
        "pcm_simulation_seconds": med(sim_t),
        "periphery_eval_over_fp32": med(per_t) / med(fp32_t),
        "periphery_inference_over_fp32": med(per_inf_t) / med(fp32_t),
        "periphery_backend": backend, "periphery_path": periphery_path, "stream": rng.STREAM_NAME,
        "periphery_inference_torch_path_over_fp32": med(per_torch_t) / med(fp32_small_t),
        **({"triton_kernel": triton_config()} if backend == "triton" else {}),
        "output_noise_draws_over_fp32": med(noise_t) / med(fp32_small_t),
        "output_noise_draws_per_image": sum(outputs),
        "noise_aware_step_over_fp32": med(noisy_step) / med(fp32_step),
        "fp32_train_images_per_s": 128 * steps / med(fp32_step),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "test_images": len(test), "step_images": a.step_images, "repeats": a.repeats, "threads": torch.get_num_threads(),
        **provenance(dev), "processor": platform.processor(),
        "raw_seconds": {"fp32_inference": fp32_t, "pcm_eval": pcm_t, "periphery_eval": per_t,
                        "periphery_inference": per_inf_t, "fp32_inference_1000": fp32_small_t,
                        "periphery_inference_torch_path_1000": per_torch_t,
                        "output_noise_draws": noise_t, "fp32_step": fp32_step, "noisy_step": noisy_step},
    }
    rows = [("FP32 inference", f"{res['fp32_inference_images_per_s']:.0f} images/s", ""),
            ("PCM eval (program+read+GDC+inference)", f"{res['pcm_eval_over_fp32']:.3f} x FP32", "goal <= 1.1"),
            ("  of which simulation only", f"{res['pcm_simulation_seconds'] * 1000:.0f} ms", ""),
            ("PCM eval with aihwkit-like periphery", f"{res['periphery_eval_over_fp32']:.3f} x FP32", "goal <= 1.5"),
            ("  inference of the read chip alone", f"{res['periphery_inference_over_fp32']:.3f} x FP32",
             periphery_path),
            ("  the same on the torch backend", f"{res['periphery_inference_torch_path_over_fp32']:.3f} x FP32",
             "1,000 images"),
            ("  its output noise in PyTorch ops", f"{res['output_noise_draws_over_fp32']:.3f} x FP32",
             f"{res['output_noise_draws_per_image']:,} per image"),
            ("noise-aware training step", f"{res['noise_aware_step_over_fp32']:.3f} x FP32", "goal <= 1.05"),
            ("FP32 training", f"{res['fp32_train_images_per_s']:.0f} images/s", ""),
            ("peak memory", f"{res['peak_rss_mib']:.0f} MiB", "")]
    print(f"{'measure':40s} {'value':>20s}  note")
    for r in rows:
        print(f"{r[0]:40s} {r[1]:>20s}  {r[2]}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
