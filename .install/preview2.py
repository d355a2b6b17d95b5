"""Preview: aimc_lib/results of ROOT with runs/results-next laid over it; partial files made complete-looking (their chips so far) for preview only."""
import json, shutil, sys
from pathlib import Path
import numpy as np
ROOT = Path(sys.argv[1])
NEXT = Path("/work/main/runs/results-next")
prev = Path("/work/tmp/preview_results")
shutil.rmtree(prev, ignore_errors=True)
shutil.copytree(ROOT / "aimc_lib/results", prev)
for p in NEXT.rglob("*.json"):
    if p.name.endswith(".partial.json"):
        continue
    dst = prev / p.relative_to(NEXT)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(p, dst)
TEMPLATES = {"periphery/resnet32-fp32_gdc_out-noise-only.json": ("periphery/resnet32-fp32_gdc_adc-only.json", "out-noise-only"),
}
for name, (tmpl, variant) in TEMPLATES.items():
    part = NEXT / (name + ".partial.json")
    if not part.exists():
        continue
    d = json.load(open(NEXT / tmpl)); rows = json.load(open(part))["rows"]
    full = len(d["per_chip"]); rows = (rows * 3)[:full]  # PREVIEW ONLY: padded by repeating chips
    d["per_chip"] = rows; a = np.asarray(rows)
    d["mean"] = a.mean(0).tolist(); d["std"] = a.std(0, ddof=1).tolist()
    d["meta"]["n_chips"] = len(rows); d["meta"]["seeds"] = list(range(len(rows)))
    if variant: d["meta"]["variant"] = variant
    if "adabs" in name: d["meta"]["compensation"] = "adabs"
    json.dump(d, open(prev / name, "w"))
    print("preview partial:", name, len(rows), "chips")
if len(sys.argv) > 2:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[2], 4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(f"import aimc_lib.zoo as _z\nfrom pathlib import Path as _P\n_z.RESULTS_DIR = _P('{prev}')"))
    NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    nbformat.write(nb, sys.argv[3])
    for c in nb.cells:
        if c.cell_type != 'code': continue
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream': print('--', c.id); print(o['text'][:2000])
            elif o.get('output_type') == 'error': print('-- ERROR', c.id, o['ename'], o['evalue'][:800])
