"""The CPU allocator setting of ``aimc_lib.cpu_memory``: freed large tensors are reused, not re-faulted.

Each check runs in a fresh Python process, on its main thread (glibc's main arena), as a notebook
kernel or the CLI does: in a long-lived test worker, what earlier tests left on the heap decides
whether a freed block can be reused, and the count is not reproducible there."""
import os
import subprocess
import sys

import pytest

PAGES = 16_000  # one 1,000-image activation of ResNet-32's first stage: 65.5 MB, 16,000 pages of 4 KiB
# Ten allocations of it, each touched and freed: a page fault per page and allocation makes 160,000
TEN_ALLOCATIONS = """
import resource, sys, torch
import aimc_lib, aimc_lib.cli
from aimc_lib import cpu_memory
assert cpu_memory._applied is None, "importing aimc_lib changed the allocator"
if sys.argv[1] == "apply":
    cpu_memory.keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    x = torch.empty(1000 * 16 * 32 * 32)
    x.fill_(1.0)
    del x
print(cpu_memory.keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")


def _ten_allocations(apply: bool = True, **env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", TEN_ALLOCATIONS, "apply" if apply else "import"],
                         env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


@linux
def test_the_setting_applied_reuses_freed_tensors():
    applied, faults = _ten_allocations(AIMC_MALLOC_DEFAULTS="")
    assert applied == "True"
    # the heap grows once or twice, then the freed memory is reused
    assert faults < 3 * PAGES, f"{faults:,} page faults in ten 65 MB allocations"


@linux
def test_the_default_allocator_refaults_every_page_and_the_opt_out_keeps_it():
    applied, faults = _ten_allocations(AIMC_MALLOC_DEFAULTS="1")
    assert applied == "False"
    assert faults > 9 * PAGES  # glibc's default: mmap and munmap per tensor, a fault per page


@linux
def test_importing_the_library_leaves_the_allocator_alone():
    _, faults = _ten_allocations(apply=False, AIMC_MALLOC_DEFAULTS="")
    assert faults > 9 * PAGES  # only the CLI's and the notebooks' set-up change it, not an import
