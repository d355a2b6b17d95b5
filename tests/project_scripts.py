"""The project's scripts (``scripts/*.py``, ``book_tools/*.py``) as modules, for tests: they run nothing on import."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str, folder: str = "scripts"):
    """``folder/name.py`` as a module, registered under ``name`` (a dataclass in it looks itself up there)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
