"""Store the reference outputs that nbval compares, and nothing else, in the committed notebooks.

Notebooks are committed without outputs (the book executes them), except the cells tagged
``nbval-check-output``: their deterministic text outputs are what ``pytest --nbval-lax``
compares against. This script executes each notebook in fast mode (``AIMC_FAST=1``), keeps the
outputs of the tagged cells and strips all others.

    python book_tools/store_checked_outputs.py book/*.ipynb
"""
import os
import sys

import nbformat
from nbclient import NotebookClient

TAG = "nbval-check-output"


def store(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    os.environ["AIMC_FAST"] = "1"
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    kept = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if TAG in cell.metadata.get("tags", []):
            cell.outputs = [o for o in cell.outputs if o.output_type == "stream" or "text/plain" in o.get("data", {})]
            kept += 1
        else:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)  # run timestamps: noise in every diff
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return kept


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: kept outputs of {store(p)} checked cells")
