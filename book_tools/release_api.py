"""Record the names each release of ``aimc_lib`` has, for the test that checks the notebooks' pin.

Colab and Binder install the release a notebook's first cell pins (``book_tools/sync_colab_cells.py``),
not the library beside the notebook. ``tests/test_release_notebooks.py`` checks that the pinned release
has every ``aimc_lib`` name the notebook uses. It reads the release's names from ``releases.json``
beside this script, not from the git tag: a clone without tags, or a copy without git, checks the same.

A release records itself from the checkout it is tagged from (docs/developers.md, "Releases"): for each
module of ``aimc_lib`` the names its source binds at top level, and the sha256 of that source. The
test compares the record with every module that has not changed since (same sha256), so a record that
does not describe its source fails there.

    python book_tools/release_api.py                 # record the checkout as release v<version>
    python book_tools/release_api.py --ref v0.2.0    # compare the record of v0.2.0 with its git tag
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).resolve().parent / "releases.json"


def defined_names(source: str) -> set[str]:
    """The names a module's source binds at its top level (also inside top-level if/try blocks)."""
    names, todo = set(), list(ast.parse(source).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def module_name(path: str) -> str:
    """``aimc_lib/a/b.py`` -> ``"a.b"``; a package's ``__init__.py`` is the package (``""`` for aimc_lib)."""
    parts = Path(path).with_suffix("").parts
    if parts[0] != "aimc_lib":
        raise ValueError(f"{path} is not in aimc_lib/")
    parts = parts[1:-1] if parts[-1] == "__init__" else parts[1:]
    return ".".join(parts)


def module_api(source: str) -> dict:
    """One module's entry: the sha256 of its source and the names it binds, sorted."""
    return {"sha256": hashlib.sha256(source.encode()).hexdigest(), "names": sorted(defined_names(source))}


def checkout_sources(root: Path = ROOT) -> dict[str, str]:
    """Module name -> source, for every ``.py`` file of the checkout's ``aimc_lib``."""
    return {module_name(p.relative_to(root).as_posix()): p.read_text()
            for p in sorted((root / "aimc_lib").rglob("*.py"))}


def git_sources(ref: str, root: Path = ROOT) -> dict[str, str]:
    """Module name -> source, for every ``.py`` file of ``aimc_lib`` at git ``ref``."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ValueError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
        return proc.stdout
    paths = [p for p in git("ls-tree", "-r", "--name-only", ref, "aimc_lib").splitlines() if p.endswith(".py")]
    if not paths:
        raise ValueError(f"{ref} has no aimc_lib/*.py")
    return {module_name(p): git("show", f"{ref}:{p}") for p in paths}


def api(sources: dict[str, str]) -> dict[str, dict]:
    """The release entry of a set of module sources: module name -> ``module_api``."""
    return {module: module_api(source) for module, source in sorted(sources.items())}


def read_record(path: Path = RECORD) -> dict[str, dict]:
    """Release tag (``vX.Y.Z``) -> its entry; ``{}`` when nothing is recorded yet."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def write_record(tag: str, entry: dict[str, dict], path: Path = RECORD) -> None:
    """Add or replace release ``tag``'s entry, keeping the others."""
    record = read_record(path)
    record[tag] = entry
    Path(path).write_text(json.dumps(dict(sorted(record.items())), indent=1, sort_keys=True) + "\n")


def has_name(entry: dict[str, dict], module: str, name: str) -> bool:
    """Whether ``aimc_lib.<module>.<name>`` exists in the release: a name the module binds, or a submodule."""
    submodule = f"{module}.{name}".lstrip(".")
    return submodule in entry or (module in entry and name in entry[module]["names"])


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sync_colab_cells import package_version

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", help="compare the record of this tag with the tag's git tree; change nothing")
    args = ap.parse_args(argv)
    if args.ref:
        recorded = read_record(RECORD).get(args.ref)
        if recorded is None:
            print(f"release_api: {RECORD.name} has no record of {args.ref}", file=sys.stderr)
            return 1
        try:
            tagged = api(git_sources(args.ref))
        except ValueError as e:
            print(f"release_api: {e}", file=sys.stderr)
            return 1
        differ = sorted(m for m in recorded.keys() | tagged.keys() if recorded.get(m) != tagged.get(m))
        print(f"{args.ref}: the record and the tag " + ("agree" if not differ else f"differ in {differ}"))
        return 1 if differ else 0
    tag = f"v{package_version()}"
    entry = api(checkout_sources())
    write_record(tag, entry, RECORD)
    print(f"recorded {tag}: {len(entry)} modules, {sum(len(m['names']) for m in entry.values())} names "
          f"-> {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
