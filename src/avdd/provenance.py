"""Provenance: what made a result, recorded beside it.

Every table the book shows is written with a JSON sidecar saying how it was made: the profile
(synthetic or real data), the backbones' weights (handcrafted, random or pretrained), the
configuration, the git commit, the package versions and a fingerprint of the code that
computed it (:func:`code_fingerprints`), so a cached result never outlives that code.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

#: Packages whose versions change numbers.
_PACKAGES = ("avdd", "torch", "numpy", "scipy", "scikit-learn", "av", "pandas", "transformers")


# -- code fingerprints ------------------------------------------------------------------------
def _top_level(root: str) -> Path | None:
    # find_spec of a top-level name searches sys.path without importing the package.
    spec = importlib.util.find_spec(root)
    return Path(spec.origin) if spec and spec.origin else None


def _source(module: str) -> Path | None:
    """The source file of a dotted module name, found without importing it (importing, e.g.
    ``find_spec`` of a submodule, would run the parent packages' imports: torch, numba...).
    A top-level module may be a single file (a plugin's ``conv_audio.py``), which has no
    submodules."""
    root, *rest = module.split(".")
    origin = _top_level(root)
    if origin is None:
        return None
    if origin.name != "__init__.py":
        return origin if not rest and origin.suffix == ".py" and origin.is_file() else None
    base = origin.parent
    path = base.joinpath(*rest)
    for candidate in (path.with_suffix(".py") if rest else None, path / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=1024)
def _parse(path: Path, mtime_ns: int) -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """(code hash, ``(module, names)`` of each import) of one source file; cached per
    modification time."""
    tree = ast.parse(path.read_text(), str(path))
    package = _package_of(path)
    imports: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        # Docstrings are prose: an edit of one must not invalidate what the code computed
        # (comments never reach the AST).
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.Import):
            imports += [(a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            imports.append((mod, tuple(a.name for a in node.names)))  # a name may be a submodule
    digest = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    return digest, tuple(dict.fromkeys(imports))


def _package_of(path: Path) -> str:
    """Dotted package a source file belongs to (walking up the ``__init__.py`` files)."""
    parts = [] if path.name == "__init__.py" else []
    d = path.parent
    while (d / "__init__.py").is_file():
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts)


def code_fingerprints(modules: Iterable[str], *, stop: Iterable[str] = ()) -> dict[str, str]:
    """``{module: hash of its code}`` for ``modules`` and every module of the same top-level
    package that they import, directly or not (imports inside functions count too).

    The hash is of the syntax tree without docstrings, so editing prose or comments changes
    nothing. The modules named in ``stop`` (exactly: a package's face, not its submodules)
    are neither hashed nor followed: the study's caches stop at the feature extractors, whose
    features are keyed by ``Backbone.version`` instead (recomputing them costs GPU days).
    """
    stop = frozenset(stop)
    stopped = stop.__contains__
    out: dict[str, str] = {}
    todo = [m for m in modules if not stopped(m)]
    roots = {m.split(".")[0] for m in todo}
    while todo:
        mod = todo.pop()
        if mod in out:
            continue
        path = _source(mod)
        if path is None:
            raise ValueError(f"code_fingerprints: no Python source for module {mod!r}")
        digest, imports = _parse(path, path.stat().st_mtime_ns)
        out[mod] = digest
        for dep, names in imports:
            if dep.split(".")[0] not in roots or stopped(dep):
                continue  # a stopped module's names (submodules included) are not followed
            for m in (dep, *(f"{dep}.{n}" for n in names)):
                if m not in out and not stopped(m) and _source(m) is not None:
                    todo.append(m)
    return dict(sorted(out.items()))


def fingerprint(prints: dict[str, str]) -> str:
    """One hash of :func:`code_fingerprints`' result."""
    return hashlib.sha256(json.dumps(prints, sort_keys=True).encode()).hexdigest()


def changed_modules(recorded: dict[str, str]) -> list[str]:
    """Modules whose code differs now from ``recorded`` (:func:`code_fingerprints` output),
    or that no longer exist."""
    out = []
    for mod, digest in recorded.items():
        path = _source(mod)
        if path is None or _parse(path, path.stat().st_mtime_ns)[0] != digest:
            out.append(mod)
    return out


def git_state() -> dict[str, Any]:
    """Commit and dirtiness of the source tree avdd is imported from (``unknown`` outside git)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True, timeout=10).stdout
        return {"git_sha": sha, "git_dirty": bool(dirty.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "git_dirty": None}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(**context: Any) -> dict[str, Any]:
    """A provenance record: ``context`` (profile, data, weights, config…) + git + versions."""
    return {
        **context,
        **git_state(),
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


