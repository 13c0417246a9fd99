"""The layout shows the pipeline (DESIGN.md): each folder is one stage, imports run down it,
no module reaches into another's private names, and backbone families stand alone.

Read from the source with ``ast`` (nothing is imported), so these hold for every import,
also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "avdd"

#: The stages, lowest first: a module may import its own stage or a lower one, never a higher.
STAGES: tuple[tuple[str, ...], ...] = (
    ("avdd", "config", "provenance", "progress", "processes"),  # "avdd": the package's __init__ (its version only)
    ("media",),
    ("synth", "datasets"),
    ("roi",),
    ("backbones",),
    ("features",),
    ("heads",),
    ("analysis",),
    ("report",),
    ("score", "cli", "__main__", "__init__"),
)
MAX_TOP_LEVEL = 10
LONG = 400  # lines; a longer module says in its docstring why it is one piece


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of every avdd import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "avdd" or mod.startswith("avdd."):
                names = [a.name for a in node.names]
                # "from avdd.x import y" may name the submodule avdd.x.y
                subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
                for s in subs:
                    out.append((s, [], node.lineno))
                out.append((mod, [n for n in names if f"{mod}.{n}" not in MODULES], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("avdd.")]
    return out


def stage(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for i, names in enumerate(STAGES):
        if top in names:
            return i
    raise AssertionError(f"{module} belongs to no stage of the layout: add it to STAGES")


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        g[mod] = {m for m, _, _ in imports(path) if m in MODULES and m != mod}
    return g


def test_few_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


def test_imports_run_down_the_pipeline():
    bad = [f"{mod} (stage {stage(mod)}) imports {dep} (stage {stage(dep)})"
           for mod, deps in graph().items() for dep in deps
           if stage(dep) > stage(mod) and not dep.endswith("__init__")]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    g = graph()
    # A package's __init__ importing its own modules is how it registers them, not a cycle.
    g = {m: {d for d in deps if not (m == d.rpartition(".")[0])} for m, deps in g.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.slow
def test_no_private_name_leaves_its_module():
    bad = []
    for mod, path in MODULES.items():
        for dep, names, line in imports(path):
            bad += [f"{mod}:{line} imports {dep}.{n}" for n in names
                    if n.startswith("_") and not n.startswith("__") and dep != mod]
        # module._name on a module imported under some name
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{mod}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def private_members(tree: ast.AST) -> set[str]:
    """Private names a module defines on its classes: methods and ``self._x = ...``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_"):
            names.add(node.name)
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name) and node.value.id == "self"):
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_object_is_reached_into_from_another_module():
    """``obj._x`` outside ``self``/``cls``, where ``_x`` is a private member that only other
    avdd modules define (e.g. ``fs._shards`` of a FeatureSet, ``backbone._forward``)."""
    trees = {m: ast.parse(p.read_text()) for m, p in MODULES.items()}
    defined = {m: private_members(t) for m, t in trees.items()}
    bad = []
    for mod, tree in trees.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and node.attr not in defined[mod]
                    and any(node.attr in d for m, d in defined.items() if m != mod)):
                owners = sorted(m for m, d in defined.items() if node.attr in d)
                bad.append(f"{mod}:{node.lineno} uses {node.attr} of {', '.join(owners)}")
    assert not bad, "\n".join(bad)


SHARED_BACKBONE_MODULES = {"base", "hub", "checkpoints", "layers", "__init__"}


@pytest.mark.slow
def test_backbone_families_stand_alone():
    families = {m for m in MODULES if m.startswith("avdd.backbones.")
                and m.split(".")[2] not in SHARED_BACKBONE_MODULES}
    assert len(families) >= 8
    g = graph()  # parses every module: once, not once per family
    bad = [f"{m} imports {d}" for m in families for d in g[m] if d in families]
    assert not bad, "\n".join(bad)
    # the shared pieces never import a family either
    shared = {m for m in MODULES if m.startswith("avdd.backbones.") and m not in families
              and not m.endswith("backbones")}
    bad = [f"{m} imports {d}" for m in shared for d in g[m] if d in families]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_long_module_says_why_it_is_one_piece(module):
    path = MODULES[module]
    n = len(path.read_text().splitlines())
    if n <= LONG:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "why one module" in doc.lower(), (
        f"{module} has {n} lines: split it, or say in its docstring 'Why one module: ...'")


def test_the_checker_sees_a_private_import(tmp_path, monkeypatch):
    """The checks above can fail: a planted private import and an upward import are found."""
    fake = tmp_path / "avdd" / "media.py"
    fake.parent.mkdir()
    fake.write_text("from avdd.analysis.cache import _secret\n")
    found = imports(fake.resolve()) if False else None  # module_name needs PACKAGE's parent
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "avdd")
    deps = imports(fake)
    assert deps == [("avdd.analysis.cache", ["_secret"], 1)] and found is None
    assert stage("avdd.analysis.cache") > stage("avdd.media")
