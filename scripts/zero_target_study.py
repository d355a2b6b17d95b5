"""Why the zero-target device costs direct mapping accuracy: the weights each chip holds, measured.

    python scripts/zero_target_study.py                        # both models, 5 chips (minutes on a CPU)
    python scripts/zero_target_study.py --chips 2 --out /tmp/zero_target.json

Every weight of a differential pair has one device whose target is 0 (G- for a positive weight,
G+ for a negative one). The calibrated model programs it with noise (sigma_P(0) = 0.26 uS, clipped
at 0: a RESET device is not at 0 uS); ``PCMParams(noise_on_zero_target=False)`` leaves it at 0.
The two settings draw the same numbers for every other device (the counter-based stream names each
draw), so the same chip read both ways differs only in its zero-target devices.

For every analog layer, chip and time this script reads the weights the chip holds after GDC,
``w_read``, against the trained weights ``w``, both ways GDC can measure its readout:

* ``exact``: alpha from mean |G+ - G-| (the ideal chip);
* ``periphery``: alpha from the one-hot readout through the aihwkit-like periphery (the realistic
  chip; its bias is ``scripts/gdc_readout_study.py``'s).

and records ``scale``, the least-squares gain of ``w_read`` on ``w`` (1: GDC restored the weights'
size; below 1: under-corrected), and ``noise``, the rest: rms(w_read - scale w) / max|w|, in the
units of the weight noise eta of chapter 5 (``weight_noise.json``: accuracy against eta).

It writes a JSON file (default ``aimc_lib/results/studies/zero_target.json``).
"""
from __future__ import annotations



from aimc_lib import rng
from aimc_lib.cli import script_parser, setup_machine
from aimc_lib.converters import Periphery
from aimc_lib.mapping import AnalogChip, readout_stream
from aimc_lib.models import analog_layers, crossbar_matrix
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import gdc_alpha, gdc_readout
from aimc_lib.result_files import chip_time_layer, save_results
from aimc_lib.times import DAY_S, MONTH_S, YEAR_S
from aimc_lib.weight_noise import gain_and_rest
from aimc_lib.zoo import RESULTS_DIR, load_model

MODELS = ("resnet32-fp32", "resnet32-custom")
TIMES_S = (60.0, DAY_S, MONTH_S, YEAR_S)
SETTINGS = {"on": PCMParams(), "off": PCMParams(noise_on_zero_target=False)}
READOUTS = ("exact", "periphery")


def chip_errors(model, seed: int, params: PCMParams, per: Periphery) -> dict:
    """``{readout: {"scale" | "noise": {t: [per layer]}}}`` for one chip read at ``TIMES_S`` in order."""
    chip = AnalogChip(model, params, seed=seed)
    targets = [crossbar_matrix(layer).float() for layer in analog_layers(model).values()]
    reference = chip._periphery_reference(per)
    g_max = params.g_max_us
    out = {r: {"scale": {}, "noise": {}} for r in READOUTS}
    for t in TIMES_S:
        read = chip._next_read()
        rows = {r: ([], []) for r in READOUTS}
        for i, ((name, st), w) in enumerate(zip(chip.layers.items(), targets)):
            diff = chip._read_difference(st, t, i, read)
            alpha = {"exact": st.gdc_reference_us / float(diff.abs().mean()),
                     "periphery": gdc_alpha(reference[name], gdc_readout(diff / g_max, per, readout_stream(seed, i, read)))}
            for r in READOUTS:
                scale, noise = gain_and_rest(diff * (alpha[r] * st.w_max / g_max), w.to(diff.device))
                rows[r][0].append(scale)
                rows[r][1].append(noise)
        for r in READOUTS:
            out[r]["scale"][str(t)], out[r]["noise"][str(t)] = rows[r]
    return out


def main(argv=None) -> int:
    ap = script_parser(__doc__, out=RESULTS_DIR / "studies" / "zero_target.json")
    ap.add_argument("--chips", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    a = ap.parse_args(argv)
    setup_machine(a, strict_fp32=True)
    per = Periphery.aihwkit_like(gdc_readout="periphery")
    res = {"meta": {"times_s": list(TIMES_S), "chips": a.chips, "readouts": list(READOUTS),
                    "params": {k: p.to_dict() for k, p in SETTINGS.items()}, "periphery": per.to_dict(),
                    "stream": rng.STREAM_NAME},
           "models": {}}
    for name in a.models:
        model = load_model(name, a.device)
        res["models"][name] = {k: [chip_errors(model, s, p, per) for s in range(a.chips)] for k, p in SETTINGS.items()}
        for r in READOUTS:
            for k in SETTINGS:
                chips = res["models"][name][k]
                scale, noise = (chip_time_layer(chips, r, what, times_s=TIMES_S) for what in ("scale", "noise"))
                for t, s, n in zip(TIMES_S, scale.transpose(1, 0, 2), noise.transpose(1, 0, 2)):
                    print(f"{name} {r:>9} zero-target {k:>3} t={t:>10.0f} s: scale {s.mean():.4f} "
                          f"(layers {s.mean(0).min():.3f}..{s.mean(0).max():.3f}), noise {100 * n.mean():.2f} % "
                          f"of max|w|", flush=True)
    save_results(res, a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
