"""Every notebook is a synced jupytext pair with an output-free .ipynb and a parameters cell,
whose demo backbones all come from the one demo list."""

import ast
import json
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_in_sync_and_output_free(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb} missing: run `make sync`"
    raw = json.loads(ipynb.read_text())
    for cell in raw["cells"]:
        assert not cell.get("outputs"), f"{ipynb} carries outputs: strip them"
        assert cell.get("execution_count") is None, f"{ipynb} has execution counts"
    a = [(c.cell_type, c.source.strip()) for c in jupytext.read(py).cells]
    b = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
    assert a == b, f"{py.name} and {ipynb.name} differ: run `make sync`"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_has_papermill_parameters_cell(py):
    tagged = [c for c in jupytext.read(py).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def parameters_cell(py: Path) -> ast.Module:
    cell = next(c for c in jupytext.read(py).cells if "parameters" in c.metadata.get("tags", []))
    return ast.parse(cell.source)


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_demo_backbones_come_from_the_one_list(py):
    """A ``backbones`` parameter defaults to None (avdd.config.DEMO_BACKBONES on the demo), and
    every backbone a parameters cell names (a notebook's own smaller demo choice) is one of
    DEMO_BACKBONES, so the demo list is edited in one place."""
    from avdd.backbones import available
    from avdd.config import DEMO_BACKBONES

    tree = parameters_cell(py)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "backbones"
                                                for t in node.targets):
            assert isinstance(node.value, ast.Constant) and node.value.value is None, \
                f"{py.name}: `backbones` must default to None (the demo's list)"
    registry = set(available())
    named = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
             and isinstance(n.value, str) and n.value.partition(":")[0] in registry}
    stray = named - set(DEMO_BACKBONES)
    assert not stray, f"{py.name}: {sorted(stray)} are not in avdd.config.DEMO_BACKBONES"
