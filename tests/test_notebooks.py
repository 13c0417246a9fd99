"""Every notebook is a synced jupytext pair with an output-free .ipynb and a parameters cell."""

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
