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


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_is_checked_before_anything_runs(py):
    """Issue 14.12: the notebook passes each of its parameters to config.check_parameters,
    before it builds the profile; the names avdd knows are all in config.PARAMETERS."""
    from avdd.config import PARAMETERS

    names = [t.id for node in parameters_cell(py).body if isinstance(node, ast.Assign)
             for t in node.targets]
    source = py.read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "check_parameters"]
    assert len(calls) == 1, f"{py.name}: call check_parameters(...) once"
    assert [k.arg for k in calls[0].keywords] == names
    assert source.index("check_parameters(") < source.index("make_profile(profile")
    unknown = set(names) - set(PARAMETERS) - {"layers", "picks", "frame_rule", "frame_offsets",
                                               "point", "thresholds"}
    assert not unknown, f"{py.name}: add {sorted(unknown)} to avdd.config.PARAMETERS"


@pytest.mark.parametrize("values,message", [
    ({"seed": "abc"}, "parameter seed='abc' (str): expected a whole number"),
    ({"backbones": "logmel"}, "parameter backbones='logmel' (str): expected None or a non-empty list"),
    ({"backbones": []}, "parameter backbones=[] (list)"),
    ({"data_roots": "/data"}, "parameter data_roots='/data' (str): expected None or a mapping"),
    ({"home": 5}, "parameter home=5 (int): expected a folder path"),
    ({"workers": 0}, "expected a whole number >= 1"),
    ({"synth_scale": float("nan")}, "expected a finite number > 0"),
    ({"profile": "papr"}, "expected 'demo' or 'paper'"),
    ({"representations": {"W2V2": 3}}, "a non-empty mapping label -> backbone spec"),
])
def test_wrong_parameters_are_named_one_line_each(values, message):
    from avdd.config import check_parameters

    with pytest.raises(ValueError) as err:
        check_parameters(**values, seed_ok=1)  # an unknown name is not checked
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_the_profile_builders_check_their_parameters(tmp_path):
    from avdd.config import check_parameters, default_backbones, make_profile

    with pytest.raises(ValueError, match="parameter home=5"):
        make_profile("demo", home=5)
    with pytest.raises(ValueError, match="parameter backbones='logmel'"):
        default_backbones(make_profile("demo", home=tmp_path), "logmel")
    with pytest.raises(ValueError) as err:
        check_parameters(seed="abc", workers=-1)
    assert len(str(err.value).splitlines()) == 2  # one line per wrong parameter
    check_parameters(seed=43, workers=2, backbones=None, home=str(tmp_path), synth_scale=1)
