"""The CPU allocator setting of ``aimc_lib.cpu_memory``: freed large tensors are reused, not re-faulted."""
import os
import resource
import subprocess
import sys

import pytest
import torch

import aimc_lib  # noqa: F401  (importing applies the setting)
from aimc_lib import cpu_memory

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")


PAGES = 16_000  # one 1,000-image activation of ResNet-32's first stage: 65.5 MB, 16,000 pages of 4 KiB
# Ten allocations of it, each touched and freed: a page fault per page and allocation is 160,000
TEN_ALLOCATIONS = """
import resource, torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    x = torch.empty(1000 * 16 * 32 * 32)
    x.fill_(1.0)
    del x
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""


@linux
def test_import_applies_the_setting_and_freed_tensors_are_reused():
    assert cpu_memory.keep_freed_memory() is True
    scope = {}
    exec(TEN_ALLOCATIONS, scope)
    # the heap grows once or twice, then the freed memory is reused
    assert scope["faults"] < 3 * PAGES, f"{scope['faults']:,} page faults in ten 65 MB allocations"


@linux
def test_the_default_allocator_refaults_every_page_and_the_opt_out_keeps_it():
    code = "import aimc_lib\nfrom aimc_lib import cpu_memory\n" + TEN_ALLOCATIONS + \
        "print(cpu_memory.keep_freed_memory(), faults)\n"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "AIMC_MALLOC_DEFAULTS": "1"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    assert int(out[1]) > 9 * PAGES  # glibc's default: mmap and munmap per tensor, a fault per page
