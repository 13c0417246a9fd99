"""`avdd book --params FILE`: global and per-notebook parameters reach papermill."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def test_extension_merges_per_notebook_parameters(monkeypatch, tmp_path):
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    try:
        import avdd_execute
    finally:
        sys.path.pop(0)
    calls = {}
    monkeypatch.setattr(avdd_execute, "execute_stale",
                        lambda nb, out, params, cwd, files, status: calls.__setitem__(
                            Path(nb).stem, params))
    monkeypatch.setenv("AVDD_BOOK_PARAMETERS", json.dumps({
        "profile": "paper", "backbones": ["clip"],
        "notebooks": {"fig4_spatial": {"backbone": "clip", "dataset": "exddv"}}}))
    book = tmp_path / "book"
    book.mkdir()
    config = SimpleNamespace(avdd_parameters={"profile": "demo", "home": ".avdd"},
                             avdd_notebooks=["table2_linear_probing", "fig4_spatial"])
    avdd_execute._execute(SimpleNamespace(srcdir=str(book)), config)
    assert calls["table2_linear_probing"] == {
        "profile": "paper", "backbones": ["clip"], "home": str((tmp_path / ".avdd").resolve()),
        "outputs": str(book / "generated" / "table2_linear_probing_files")}
    assert calls["fig4_spatial"]["dataset"] == "exddv"
    assert "notebooks" not in calls["fig4_spatial"]


def test_paper_example_profile_parses_and_names_every_notebook_it_configures():
    import yaml

    params = yaml.safe_load((REPO / "profiles" / "paper.example.yaml").read_text())
    assert params["profile"] == "paper" and len(params["backbones"]) == 14
    config = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    known = set(config["sphinx"]["config"]["avdd_notebooks"])
    assert set(params["notebooks"]) <= known


def _parameters(notebook: str) -> set[str]:
    """The names a notebook's papermill parameters cell assigns."""
    import re

    text = (REPO / "notebooks" / f"{notebook}.py").read_text()
    cell = text.split('tags=["parameters"', 1)[1].split("# %%", 1)[0]
    return set(re.findall(r"^([a-z_][a-z0-9_]*) = ", cell, flags=re.M))


def test_demo_power_profile_names_real_parameters_backbones_and_table3s_families():
    import yaml

    from avdd.analysis.anomaly import DEMO_ROWS
    from avdd.analysis.known_answers import COMPLEMENTARITY_REFERENCES
    from avdd.analysis.sota import fixed_choice
    from avdd.backbones import describe
    from avdd.config import DEMO_BACKBONES

    params = yaml.safe_load((REPO / "profiles" / "demo-power.yaml").read_text())
    assert params["profile"] == "demo" and params["synth_scale"] > 0.5
    backbones = params["backbones"]
    assert set(backbones) <= set(DEMO_BACKBONES) and all(describe(b) for b in backbones)
    fixed_choice(backbones)  # Table 3 finds the paper's three families (raises if not)
    needed = {b for row in DEMO_ROWS.values() for b in row}
    needed |= set(COMPLEMENTARITY_REFERENCES.values())
    needed |= {"clip-tiny-random", "avhubert-v-tiny-random"}  # Figs. 3-4's defaults
    assert needed <= set(backbones)
    config = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    assert set(params["notebooks"]) <= set(config["sphinx"]["config"]["avdd_notebooks"])
    for name, overrides in params["notebooks"].items():
        assert set(overrides) <= _parameters(name), name
        for value in overrides.values():  # every backbone they name is extracted anyway
            specs = value.values() if isinstance(value, dict) else value
            assert set(specs) <= set(backbones), name
    assert {"synth_scale", "backbones"} <= _parameters("table2_linear_probing")


def test_book_command_errors_clearly(tmp_path, capsys):
    from avdd.cli import main

    assert main(["book", "--book", str(tmp_path / "nope")]) == 2
    assert "_config.yml" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text("[1, 2]")
    assert main(["book", "--book", str(REPO / "book"), "--params", str(bad)]) == 2
    assert "mapping" in capsys.readouterr().err
