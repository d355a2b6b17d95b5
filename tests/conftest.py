"""Shared fixtures. Data-dependent tests need CIFAR-10: under CI (CI set) missing data fails."""
import os
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels (the periphery's fused DAC conv) run in Triton's interpreter, so CI
# checks the kernel's code on the CPU; this must be set before anything imports Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "cifar10"


def _data_path():
    return os.environ.get("AIMC_DATA") or (str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None)


@pytest.fixture(scope="session")
def data_path():
    path = _data_path()
    if path is None or not Path(path).exists():
        msg = f"CIFAR-10 not found (AIMC_DATA={os.environ.get('AIMC_DATA')!r}, default {DEFAULT_DATA})"
        if os.environ.get("CI"):
            pytest.fail(msg + ": CI must not skip the data-dependent tests")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def cifar_train(data_path):
    from aimc_lib.data import load_cifar10
    return load_cifar10("train", data_path)


@pytest.fixture(scope="session")
def cifar_test(data_path):
    from aimc_lib.data import load_cifar10
    return load_cifar10("test", data_path)


# Under pytest-xdist (`make test`: two workers on two cores) every worker, and every process it
# starts (notebook kernels, the book build, the CLI), uses one torch thread: two 2-thread jobs on
# two cores slow each other down several times.
XDIST_WORKER = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST_WORKER:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(int(os.environ.get("AIMC_TEST_THREADS", "1" if XDIST_WORKER else "2")))


def resnet_with_statistics(depth: int, widths: tuple[int, int, int]):
    """A small CIFAR ResNet in eval mode with non-trivial BatchNorm statistics and FC bias (seed 0)."""
    from aimc_lib.models import resnet
    torch.manual_seed(0)
    m = resnet(depth, widths)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        m.fc.bias.uniform_(-0.5, 0.5)
    return m.eval()


# Longest first, so that `make test`'s two workers finish together: the fast book build with its
# browser tests (one file), then the notebooks, then the full-test-set checks, then the rest.
# A stable sort by file: nbval still runs each notebook's cells in order.
RUN_FIRST = ["tests/test_book.py", "book/", "tests/test_shipped_models.py", "tests/test_reproduce.py"]


def _schedule_rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((i for i, prefix in enumerate(RUN_FIRST) if path.startswith(prefix)), len(RUN_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_schedule_rank)


@pytest.fixture
def tiny_pt(tmp_path):
    """A checkpoint of a tiny untrained ResNet-8 (widths 4, 4, 8): a model file for CLI tests."""
    from aimc_lib.checkpoints import save_atomic
    from aimc_lib.models import resnet
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_atomic({"model": resnet(8, (4, 4, 8)).state_dict(), "meta": {"config": {"depth": 8, "widths": [4, 4, 8]}}},
                path)
    return path
