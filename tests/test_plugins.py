"""Backbones of other distributions (issue 15.4): found through the ``avdd.backbones`` entry
points, listed by ``avdd backbones``, keyed by their distribution, version and code, and run
in Table 2 through papermill.

The example is the book's own (``book/examples/conv_audio.py`` and its ``pyproject.toml``):
it is "installed" as a ``.dist-info`` folder beside the module on a path, which is all
``importlib.metadata`` needs (nothing is pip-installed into the shared environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import TINY_SCALE

from avdd.backbones import base

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "book" / "examples"
BIN = Path(sys.executable).parent


def install(site: Path, name: str, version: str, entry_points: dict[str, str],
            modules: dict[str, str]) -> Path:
    """A distribution as pip would leave it: its modules and a ``.dist-info`` with its
    metadata and entry points, in folder ``site`` (to put on ``sys.path``/``PYTHONPATH``)."""
    site.mkdir(parents=True, exist_ok=True)
    for module, text in modules.items():
        (site / f"{module}.py").write_text(text)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[avdd.backbones]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return site


def install_example(site: Path, version: str | None = None) -> Path:
    """The book's example distribution, from its own pyproject.toml and module."""
    project = tomllib.loads((EXAMPLES / "pyproject.toml").read_text())["project"]
    modules = {"conv_audio": (EXAMPLES / "conv_audio.py").read_text()}
    return install(site, project["name"], version or project["version"],
                   project["entry-points"]["avdd.backbones"], modules)


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry and of the plugin bookkeeping, and a clean import state
    for the modules a test installs: what a test registers is gone afterwards."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_UNLOADED", {})
    monkeypatch.setenv("AVDD_PLUGIN_WARNINGS_SHOWN", "1")  # the test reads the returned lines
    base.clear_descriptions()
    before = set(sys.modules)
    paths = list(sys.path)
    yield
    sys.path[:] = paths
    for name in set(sys.modules) - before:
        if name.startswith(("conv_audio", "broken_", "not_a_")):
            del sys.modules[name]
    base.clear_descriptions()


def load_from(site: Path) -> list[str]:
    import importlib

    from avdd.backbones.plugins import load_plugins

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    problems = load_plugins()
    sys.path.remove(str(site))  # the modules are imported; their metadata is no longer needed
    return problems


def env_with(*paths: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO / "src")]),
            "AVDD_PLUGIN_WARNINGS_SHOWN": ""}


def test_the_example_is_registered_described_and_keyed_by_its_distribution(registry, tmp_path):
    from test_backbones import make_clip

    from avdd.backbones import describe, get_backbone, plugin_origin
    from avdd.features.extract import backbone_key

    assert load_from(install_example(tmp_path / "site")) == []
    assert "conv-audio" in base.available()
    model = sys.modules["conv_audio"].save_random(tmp_path / "model")
    spec = f"conv-audio:model={model},layer=1"
    info = describe(spec)
    assert (info.modality, info.weights, info.dim, info.fps) == ("audio", "random", 32, 25.0)
    plugin = info.config["plugin"]
    assert plugin["distribution"] == "avdd-conv-audio" and plugin["version"] == "0.1.0"
    assert plugin["code"] and plugin_origin("conv-audio").entry_point == \
        "conv-audio = conv_audio:ConvAudio"
    built = get_backbone(spec)
    assert backbone_key(built) == backbone_key(info)  # the runner's own check
    features = built(make_clip(seconds=1.0))
    assert features.shape == (25, 32) and features.dtype == "float32"
    with pytest.raises(ValueError, match="conv-audio needs model="):
        describe("conv-audio")
    with pytest.raises(ValueError, match=r"layer=7; this model has layers 0\.\.2"):
        describe(f"conv-audio:model={model},layer=7")


def test_a_new_version_or_edited_code_never_shares_a_feature_store(registry, tmp_path):
    from avdd.backbones import describe
    from avdd.features.extract import backbone_key

    load_from(install_example(tmp_path / "a"))
    model = sys.modules["conv_audio"].save_random(tmp_path / "model")
    spec = f"conv-audio:model={model}"
    first = backbone_key(describe(spec))
    assert first.startswith("conv-audio-")

    def key_of(site: Path) -> str:
        base._REGISTRY.pop("conv-audio")
        sys.modules.pop("conv_audio")
        base.clear_descriptions()
        assert load_from(site) == []
        return backbone_key(describe(spec))

    assert key_of(install_example(tmp_path / "b")) == first  # the same release: reused
    assert key_of(install_example(tmp_path / "c", version="0.2.0")) != first
    edited = install_example(tmp_path / "d")
    source = edited / "conv_audio.py"
    source.write_text(source.read_text() + "\n\ndef helper() -> int:\n    return 2\n")
    assert key_of(edited) != first
    assert key_of(install_example(tmp_path / "e")) == first
    sys.modules["conv_audio"].save_random(model, seed=1)  # new weights, same folder
    base.clear_descriptions()
    assert backbone_key(describe(spec)) != first


def test_a_broken_plugin_is_one_line_naming_its_distribution(registry, tmp_path):
    site = install_example(tmp_path / "site")
    install(site, "avdd-broken", "1.2", {"broken-net": "broken_net:Net"},
            {"broken_net": "import no_such_library_anywhere\n"})
    install(site, "avdd-notaclass", "3.0", {"not-a-net": "not_a_net:make"},
            {"not_a_net": "def make():\n    pass\n"})
    problems = load_from(site)
    assert len(problems) == 2 and all("\n" not in p for p in problems)
    broken = next(p for p in problems if "broken-net" in p)
    assert "avdd-broken 1.2" in broken and "ModuleNotFoundError" in broken
    assert "not a subclass of avdd.backbones.Backbone" in next(
        p for p in problems if "not-a-net" in p)
    assert "conv-audio" in base.available()  # the others still load
    with pytest.raises(KeyError, match="avdd-broken 1.2"):
        base.get_backbone("broken-net")


def test_a_plugin_that_exits_on_import_or_is_switched_off_loads_nothing(registry, tmp_path,
                                                                        monkeypatch):
    site = install(tmp_path / "site", "avdd-quitter", "0.3", {"quitter": "broken_quit:Net"},
                   {"broken_quit": "import sys\nsys.exit(3)\n"})
    (problem,) = load_from(site)
    assert "avdd-quitter 0.3" in problem and "SystemExit" in problem
    monkeypatch.setenv("AVDD_NO_PLUGINS", "1")
    assert load_from(install_example(tmp_path / "other")) == []
    assert "conv-audio" not in base.available()


def test_a_name_clash_with_a_built_in_names_both_and_keeps_the_built_in(registry, tmp_path):
    from avdd.backbones.handcrafted import LogMel

    site = install(tmp_path / "site", "avdd-impostor", "0.1", {"logmel": "conv_audio:ConvAudio"},
                   {"conv_audio": (EXAMPLES / "conv_audio.py").read_text()})
    (problem,) = load_from(site)
    assert "avdd-impostor 0.1" in problem and "logmel" in problem
    assert "avdd.backbones.handcrafted.LogMel" in problem and "another name" in problem
    assert isinstance(base.get_backbone("logmel"), LogMel)


def test_a_plugin_that_registers_itself_too_is_told_where(registry, tmp_path):
    source = (EXAMPLES / "conv_audio.py").read_text().replace('NAME = "conv-audio"',
                                                               'NAME = "self-made"')
    source += "\nfrom avdd.backbones import register\n\nregister(NAME)(ConvAudio)\n"
    site = install(tmp_path / "site", "avdd-self-made", "0.1",
                   {"self-made": "broken_selfreg:ConvAudio"}, {"broken_selfreg": source})
    (problem,) = load_from(site)
    assert "avdd-self-made 0.1" in problem
    assert "registered directly (not by an entry point) by broken_selfreg.ConvAudio" in problem


def test_a_plugin_must_call_itself_by_its_entry_point_name(registry, tmp_path):
    site = install_example(tmp_path / "site")
    shutil.rmtree(next(site.glob("*.dist-info")))
    install(site, "avdd-renamed", "0.1", {"other-name": "conv_audio:ConvAudio"}, {})
    assert load_from(site) == []
    model = sys.modules["conv_audio"].save_random(tmp_path / "model")
    with pytest.raises(ValueError, match="set self.name = 'other-name'"):
        base.describe(f"other-name:model={model}")


@pytest.mark.slow
def test_avdd_backbones_lists_the_plugin_and_survives_a_broken_one(tmp_path):
    site = install_example(tmp_path / "site")
    install(site, "avdd-broken", "1.2", {"broken-net": "broken_net:Net"},
            {"broken_net": "raise RuntimeError('this plugin is broken')\n"})
    run = subprocess.run([sys.executable, "-m", "avdd", "backbones"], capture_output=True,
                         text=True, env=env_with(site), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    (line,) = [x for x in lines if x.startswith("conv-audio ")]
    assert "needs model=" in line and line.endswith("[plugin avdd-conv-audio 0.1.0]")
    assert any(x.startswith("logmel ") for x in lines)
    warnings = [x for x in run.stderr.splitlines() if "avdd-broken" in x]
    assert len(warnings) == 1 and "this plugin is broken" in warnings[0]


@pytest.mark.slow
def test_table2_runs_the_example_backbone_through_papermill(tiny_home, tmp_path):
    """The chapter's recipe, step by step: a model folder written by the example module's
    command line, then Table 2's notebook through papermill with the plugin's spec."""
    site = install_example(tmp_path / "site")
    env = env_with(site)
    model = tmp_path / "model"
    made = subprocess.run([sys.executable, str(site / "conv_audio.py"), str(model)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and (model / "weights.pt").is_file(), made.stderr
    out = tmp_path / "table2.ipynb"
    spec = f"conv-audio:model={model}"
    run = subprocess.run(
        [str(BIN / "papermill"), str(REPO / "notebooks/table2_linear_probing.ipynb"), str(out),
         "-p", "home", str(tiny_home), "-p", "synth_scale", str(TINY_SCALE),
         "-y", json.dumps({"backbones": ["logmel", spec]}), "--cwd", str(REPO)],
        capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    from test_book import outputs_text

    text = outputs_text(json.loads(out.read_text()))
    assert spec in text and "avdd-conv-audio" not in run.stderr  # no load warning
    from avdd.config import make_profile

    cache = make_profile("demo", home=tiny_home, synth_scale=TINY_SCALE).cache_dir
    stores = list((cache / "features").glob("conv-audio-*"))
    assert len(stores) == 1
    meta = [json.loads(p.read_text()) for p in stores[0].rglob("*.json")]
    assert any("avdd-conv-audio" in json.dumps(m) for m in meta)
    # The command line names it the same way (and finds the notebook's cached grid).
    cli = subprocess.run([sys.executable, "-m", "avdd", "table2", "--home", str(tiny_home),
                          "--synth-scale", str(TINY_SCALE), "--backbone", "logmel",
                          "--backbone", spec], capture_output=True, text=True, env=env,
                         timeout=600, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert spec in cli.stdout and "logmel" in cli.stdout
