"""Draft RESULTS.md: prose (/work/tmp/results_prose.md) with @@Tn@@ tables and ⟪key⟫ numbers computed from a results folder.

    python build_results.py RESULTS_DIR PRINTED_TABLES OUT
Keys whose file is missing stay ⟪key⟫ (and are listed)."""
import json, re, sys
from pathlib import Path
import numpy as np

RD, PRINTED, OUT = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
FIRST, DAY, MONTH, YEAR = 1e-5, 86400.0, 2592000.0, 31536000.0
man = json.load(open(RD.parent / "weights/manifest.json")) if (RD.parent / "weights/manifest.json").exists() else None
FP32, FPC = 92.30, 91.95


def load(name):
    p = RD / f"{name}.json"
    return json.load(open(p)) if p.exists() else None


def col(r, t):
    return np.asarray(r["per_chip"])[:, r["times_s"].index(t)]


def mean(r, t): return col(r, t).mean()
def std(r, t): return col(r, t).std(ddof=1)


def paired(a, b, t, tb=None):
    n = len(b["per_chip"]); d = col(a, t)[:n] - col(b, tb or t)
    assert a["meta"]["seeds"][:n] == b["meta"]["seeds"]
    return d.mean(), d.std(ddof=1) / np.sqrt(n)


def signed(ms): return f"{ms[0]:+.2f} +- {ms[1]:.2f}"
def cost(ms): return f"{-ms[0]:.2f} +- {ms[1]:.2f}"


K = {}
def put(key, f):
    try:
        v = f()
        if v is not None:
            K[key] = v
    except (TypeError, KeyError, ValueError, AssertionError, FileNotFoundError):
        pass

Rd, Rc = load("periphery/resnet32-fp32_gdc_aihwkit"), load("periphery/resnet32-custom_gdc_aihwkit")
Id, Ic = load("resnet32-fp32_gdc"), load("resnet32-custom_gdc")
Ad, Ac = load("periphery/resnet32-fp32_adabs_aihwkit"), load("periphery/resnet32-custom_adabs_aihwkit")
IAc = load("resnet32-custom_adabs")
P = {m: {v: load(f"periphery/resnet32-{m}_gdc_{v}") for v in ("ideal", "dac-only", "adc-only", "out-noise-only", "aihwkit",
      "aihwkit-exact-gdc", "aihwkit-zero-target-off", "ideal-zero-target-off")} for m in ("fp32", "custom")}
P["fp32"]["aihwkit"], P["custom"]["aihwkit"] = Rd, Rc
S = {m: {v: load(f"studies/resnet32-{m}_gdc_{v}") for v in ("programming-only", "no-read-noise", "zero-target-off")}
     for m in ("fp32", "custom")}

for tn, t in (("first", FIRST), ("day", DAY), ("year", YEAR)):
    put(f"c_{tn}", lambda t=t: f"{mean(Rc, t):.2f}")
    put(f"d_{tn}", lambda t=t: f"{mean(Rd, t):.2f}")
    put(f"ci_{tn}", lambda t=t: f"{mean(Ic, t):.2f}")
    put(f"di_{tn}", lambda t=t: f"{mean(Id, t):.2f}")
    put(f"c_loss_{tn}", lambda t=t: f"{FPC - mean(Rc, t):.1f}")
    put(f"c_base_{tn}", lambda t=t: f"{FP32 - mean(Rc, t):.1f}")
    put(f"gap_{tn}", lambda t=t: f"{mean(Rc, t) - mean(Rd, t):.1f}")
    put(f"p_{tn}", lambda t=t: cost(paired(Rd, Id, t)))
    put(f"pc_{tn}", lambda t=t: cost(paired(Rc, Ic, t)))
for tn, t in (("day", DAY), ("month", MONTH), ("year", YEAR), ("1e5", 1e5)):
    put(f"d_loss_{tn}", lambda t=t: f"{FP32 - mean(Rd, t):.1f}")
put("p_1e5", lambda: cost(paired(Rd, Id, 1e5)))
put("d_base_first", lambda: f"{FP32 - mean(Rd, FIRST):.1f}")
put("c_base_1e5", lambda: f"{FP32 - mean(Rc, 1e5):.1f}")
put("ci_base_1e5", lambda: f"{FP32 - mean(Ic, 1e5):.1f}")
put("di_loss_1e5", lambda: f"{FP32 - mean(Id, 1e5):.1f}")
put("spread_day", lambda: f"{std(Rd, DAY) / std(Rc, DAY):.1f}")
for m, r in (("d", Rd), ("c", Rc)):
    for tn, t in (("day", DAY), ("year", YEAR)):
        put(f"{m}_std_{tn}", lambda r=r, t=t: f"{std(r, t):.2f}")
for tn, t in (("month", MONTH), ("year", YEAR)):
    put(f"d_min_{tn}", lambda t=t: f"{col(Rd, t).min():.1f}")
    put(f"d_max_{tn}", lambda t=t: f"{col(Rd, t).max():.1f}")
put("d_adabs_year", lambda: f"{mean(Ad, YEAR):.2f}")
put("c_adabs_loss_year", lambda: f"{FPC - mean(Ac, YEAR):.1f}")
put("ci_adabs_loss_year", lambda: f"{FPC - mean(IAc, YEAR):.1f}")
def single():
    t = np.asarray(Rd["times_s"]); pc = np.asarray(Rd["per_chip"])
    c = pc[:, t <= 1e5]; w = pc[:, (t >= 10) & (t <= 100)]
    K["swing"] = f"{(c.max(1) - c.min(1)).max():.1f}"; K["lowest_1e5"] = f"{c.min():.1f}"; K["dip_lowest"] = f"{w.min():.1f}"
    K["d_10s"] = f"{mean(Rd, 10.0):.2f}"; K["d_60s"] = f"{mean(Rd, 60.0):.2f}"
put("single", single)
put("exact_year", lambda: f"{paired(P['fp32']['aihwkit-exact-gdc'], Rd, YEAR)[0]:.1f} +- {paired(P['fp32']['aihwkit-exact-gdc'], Rd, YEAR)[1]:.1f}")
put("zt_year", lambda: f"{paired(P['fp32']['aihwkit-zero-target-off'], Rd, YEAR)[0]:.1f} +- {paired(P['fp32']['aihwkit-zero-target-off'], Rd, YEAR)[1]:.1f}")
def parts(key, m, v, t, ref="ideal"):
    put(key, lambda: signed(paired(P[m][v], P[m][ref], t)))
for tn, t in (("day", DAY), ("year", YEAR)):
    parts(f"adc_{tn}", "fp32", "adc-only", t); parts(f"on_{tn}", "fp32", "out-noise-only", t)
    parts(f"exact_vs_ideal_{tn}", "fp32", "aihwkit-exact-gdc", t); parts(f"p_parts_{tn}", "fp32", "aihwkit", t)
    parts(f"zt_ideal_{tn}", "fp32", "ideal-zero-target-off", t)
parts("dac_year", "fp32", "dac-only", YEAR); parts("pc_parts_year", "custom", "aihwkit", YEAR)
parts("zt_ideal_c_year", "custom", "ideal-zero-target-off", YEAR)
put("pp_day", lambda: cost(paired(Rd, P["fp32"]["ideal"], DAY)))
put("pp_year", lambda: cost(paired(Rd, P["fp32"]["ideal"], YEAR)))
put("ppc_year", lambda: cost(paired(Rc, P["custom"]["ideal"], YEAR)))
def parts_sum(t):
    return sum(paired(P["fp32"][v], P["fp32"]["ideal"], t)[0] for v in ("dac-only", "adc-only", "out-noise-only"))
put("sum_day", lambda: f"{parts_sum(DAY):+.2f}")
put("sum_year", lambda: f"{parts_sum(YEAR):+.2f}")
put("zt_ideal_day_pos", lambda: f"{-paired(P['fp32']['ideal-zero-target-off'], P['fp32']['ideal'], DAY)[0]:+.1f}")
for m, pre, fp, full in (("fp32", "s", FP32, Id), ("custom", "sc", FPC, Ic)):
    put(f"{pre}_prog", lambda s=S[m], fp=fp: f"{fp - mean(s['programming-only'], DAY):.1f}")
    put(f"{pre}_drift", lambda s=S[m]: f"{mean(s['programming-only'], DAY) - mean(s['no-read-noise'], DAY):.1f}")
    put(f"{pre}_read", lambda s=S[m], full=full: f"{mean(s['no-read-noise'], DAY) - mean(full, DAY):.1f}")
put("zt_ideal_grid", lambda: signed(paired(S["fp32"]["zero-target-off"], Id, DAY)))

def recipe():
    rec = json.load(open(RD / "studies/fp32_recipe.json"))
    for key, ref in (("ideal", Id), ("aih", Rd)):
        res = rec[f"pcm_gdc_{'ideal' if key == 'ideal' else 'aihwkit'}"]
        n = res["meta"]["n_chips"]; assert ref["meta"]["seeds"][:n] == res["meta"]["seeds"]
        plain = np.asarray(res["per_chip"]); shipped = np.asarray(ref["per_chip"])[:n][:, [ref["times_s"].index(t) for t in res["times_s"]]]
        more = (rec["fp32_accuracy"] - plain) - (ref["meta"]["fp32_accuracy"] - shipped)  # chip x time
        m, se = more.mean(0), more.std(0, ddof=1) / np.sqrt(n)
        K[f"r_{key}_min"], K[f"r_{key}_max"] = f"{m.min():+.2f}", f"{m.max():+.2f}"
        K[f"r_{key}_z"] = f"{np.abs(m / se).max():.1f}"
put("recipe", recipe)
def ablation():
    ab = json.load(open(RD / "studies/clip_noise_ablation.json")); eta = ab["eta_inf"]; arms = ab["arms"]
    wn = {k: np.asarray(a["weight_noise"]["mean"]) for k, a in arms.items()}
    pcm = {k: np.asarray(a["pcm_day"]["per_chip"]) for k, a in arms.items()}
    i4 = eta.index(0.04); mid = [eta.index(e) for e in (0.02, 0.04, 0.06, 0.08)]
    for k, short in (("clip-only", "clip"), ("both", "both"), ("noise-only", "noise")):
        K[f"ab_{short}_wn4"] = f"{wn[k][i4]:.2f}"; K[f"ab_{short}_pcm"] = f"{pcm[k].mean():.2f}"
    adds = wn["both"][mid] - wn["clip-only"][mid]
    K["ab_noise_adds_lo"], K["ab_noise_adds_hi"] = f"{adds.min():.1f}", f"{adds.max():.1f}"
    K["ab_noise_adds_10"] = f"{wn['both'][eta.index(0.1)] - wn['clip-only'][eta.index(0.1)]:.1f}"
    for k, key in (("clip-only", "ab_clip_change"), ("noise-only", "ab_noise_change")):
        d = pcm[k] - pcm["both"]; K[key] = f"{d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f}"
put("ablation", ablation)
text = Path(__file__).with_name("results_prose.md").read_text()
blocks, cur = [], []
for line in PRINTED.read_text().splitlines() + [""]:
    if line.startswith("|"): cur.append(line)
    elif cur: blocks.append(cur); cur = []
for i, b in enumerate(blocks):
    text = text.replace(f"@@T{i}@@", "\n".join(b))
studies = blocks[2]
if not any("zero-target-off" in r for r in studies):  # the draft's rows, values to come
    rows = []
    for r in studies:
        rows.append(r)
        if "no-read-noise" in r:
            rows.append(r.split("|")[0] + "| " + r.split("|")[1].strip().replace("no-read-noise", "zero-target-off") + " | ⟪pending⟫ |")
    studies = rows
text = text.replace("@@STUDIES@@", "\n".join(studies))
for k, v in K.items():
    text = text.replace(f"⟪{k}⟫", v)
OUT.write_text(text)
left = sorted(set(re.findall(r"⟪[^⟫]*⟫", text)))
print("left:", left)
