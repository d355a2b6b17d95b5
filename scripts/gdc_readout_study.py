"""How well GDC's readout through the periphery measures drift: its bias, layer by layer, on real chips.

    python scripts/gdc_readout_study.py                       # both models, 5 chips (minutes on a CPU)
    python scripts/gdc_readout_study.py --chips 2 --out /tmp/gdc.json

GDC scales a layer by alpha(t) = readout(t_ref) / readout(t). With exact arithmetic the readout is
mean |G+ - G-| (``gdc_readout="exact"``). On the chip it is measured through the periphery: every
one-hot input vector, through the 8-bit DAC, output noise (std 0.04 of full scale) and the 8-bit ADC
over [-10, 10] (a step of 0.079), and the mean absolute output. As drift shrinks the weights, the
output noise and the ADC's step weigh more in |output|, whose mean is then too large: alpha comes
out too small, and the layer is under-corrected. This script measures that bias, ``alpha_estimated /
alpha_exact - 1`` for every analog layer, chip and time, for estimators the hardware can run:

* ``one-hot``: one read of every one-hot input (``Periphery.gdc_readout="periphery"``);
* ``one-hot, k reads averaged`` (``Periphery.gdc_reads=k``): the same k times, the outputs averaged
  before the absolute value (output noise shrinks as 1/sqrt(k); the ADC's step does not);
* ``all-ones``: a larger readout input, one read of the all-ones vector (every row driven; aihwkit's
  earlier GDC), the mean absolute output: each column sums all its weights, far above the noise;
* ``known-inputs`` (``Periphery.gdc_readout="known-inputs"``): calibration with known inputs, +-1
  Walsh patterns on blocks of 16 rows (as many patterns as rows: the reads of one one-hot readout;
  16 rows keep the outputs inside the ADC's range, where a pattern over all rows would saturate it),
  read at t_ref and at t; alpha = sum(y_ref^2) / sum(y_ref y_t), the inverse of the least-squares
  slope of the outputs at t on those at t_ref: no absolute value, and noise at t does not bias it.

The all-ones readout draws its output noise from its own stream (``sub=1`` of the readout noise);
the others from the chip's own (what a chip with that readout draws).

It writes a JSON file (default ``aimc_lib/results/studies/gdc_readout.json``) read by the book and
``results_tables.py``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch


from aimc_lib import rng
from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.converters import Periphery
from aimc_lib.mapping import AnalogChip, readout_stream
from aimc_lib.models import analog_layers, crossbar_matrix
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import analog_matmul, gdc_alpha, gdc_readout, one_hot_readout
from aimc_lib.result_files import chip_time_layer, save_results
from aimc_lib.times import DAY_S, HOUR_S, MONTH_S, YEAR_S
from aimc_lib.weight_noise import gain_and_rest
from aimc_lib.zoo import RESULTS_DIR, load_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("resnet32-fp32", "resnet32-custom")
TIMES_S = (60.0, HOUR_S, DAY_S, MONTH_S, YEAR_S)
READS = (1, 4, 16)
#: The readouts of a larger or known input (module docstring), after the one-hot ones.
OTHER_ESTIMATORS = ("all-ones", "known-inputs")


def all_ones_readout(w_norm: torch.Tensor, per: Periphery, seed: int, layer: int, read: int) -> torch.Tensor:
    """The outputs of one read of the all-ones input (noise: ``sub=1`` of the readout stream, apart
    from the chip's own GDC)."""
    ones = torch.ones(1, w_norm.shape[1], dtype=w_norm.dtype, device=w_norm.device)
    return analog_matmul(ones, w_norm, per, rng.Stream(seed, rng.READOUT_NOISE, layer, 1, read))


def chip_biases(model, seed: int, params: PCMParams, per: Periphery) -> dict:
    """``{"bias": {estimator: {t: [bias per layer]}}, "gain_exact": {t: [...]}}``, and each layer's
    mean |w| / max |w| at t_ref, for one chip. ``gain_exact``: the least-squares gain of the weights
    after exact GDC on the trained ones (:func:`aimc_lib.weight_noise.gain_and_rest`); an estimator
    with bias ``b`` leaves the weights at ``(1 + b)`` times that."""
    chip = AnalogChip(model, params, seed=seed)
    targets = [crossbar_matrix(layer).float() for layer in analog_layers(model).values()]
    pers = {k: dataclasses.replace(per, gdc_reads=k) for k in READS}
    g_max = params.g_max_us
    known = dataclasses.replace(per, gdc_readout="known-inputs")
    out = {key: {} for key in (*map(str, READS), *OTHER_ESTIMATORS)}
    ref, ref_ones, ref_known = {}, {}, {}
    for i, st in enumerate(chip.layers.values()):
        w0 = st.reference_diff_us / g_max
        ref[i] = {k: one_hot_readout(w0, pers[k], readout_stream(seed, i, 0)) for k in READS}
        ref_ones[i] = all_ones_readout(w0, per, seed, i, 0)
        ref_known[i] = gdc_readout(w0, known, readout_stream(seed, i, 0))
    gain = {}
    for t in TIMES_S:
        read = chip._next_read()
        for key in out:
            out[key][str(t)] = []
        gain[str(t)] = []
        for i, st in enumerate(chip.layers.values()):
            diff = chip._read_difference(st, t, i, read)
            alpha_exact = st.gdc_reference_us / float(diff.abs().mean())
            gain[str(t)].append(gain_and_rest(diff * (alpha_exact * st.w_max / g_max), targets[i].to(diff.device))[0])
            for k in READS:
                alpha = ref[i][k] / one_hot_readout(diff / g_max, pers[k], readout_stream(seed, i, read))
                out[str(k)][str(t)].append(alpha / alpha_exact - 1.0)
            ones = all_ones_readout(diff / g_max, per, seed, i, read)
            alpha = {"all-ones": float(ref_ones[i].abs().mean() / ones.abs().mean().clamp(min=1e-4)),
                     "known-inputs": gdc_alpha(ref_known[i], gdc_readout(diff / g_max, known, readout_stream(seed, i, read)))}
            for key in OTHER_ESTIMATORS:
                out[key][str(t)].append(alpha[key] / alpha_exact - 1.0)
    fill = [float(st.reference_diff_us.abs().mean() / g_max) for st in chip.layers.values()]
    return {"bias": out, "gain_exact": gain, "mean_abs_w_over_max": fill}


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "gdc_readout.json")
    ap.add_argument("--chips", type=int, default=5)
    ap.add_argument("--zero-target", type=int, default=1, help="1: programming noise on the zero-target device")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    params, per = PCMParams(noise_on_zero_target=bool(a.zero_target)), Periphery.aihwkit_like()
    res = {"meta": {"times_s": list(TIMES_S), "reads": list(READS), "estimators": list(OTHER_ESTIMATORS), "chips": a.chips,
                    "params": params.to_dict(), "periphery": per.to_dict(), "stream": rng.STREAM_NAME},
           "models": {}}
    for name in a.models:
        model = load_model(name, a.device)
        chips = [chip_biases(model, s, params, per) for s in range(a.chips)]
        res["models"][name] = chips
        for k in (*map(str, READS), *OTHER_ESTIMATORS):
            for t, b in zip(TIMES_S, chip_time_layer(chips, "bias", k, times_s=TIMES_S).transpose(1, 0, 2)):
                print(f"{name} {k:>12} t={t:>10.0f} s: bias mean {100 * b.mean():+.2f} %, "
                      f"layers {100 * b.mean(0).min():+.2f} .. {100 * b.mean(0).max():+.2f} %", flush=True)
    save_results(res, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
