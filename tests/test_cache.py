"""Results follow the code that computed them: code fingerprints, the result cache, feature
stores that warn when their backbone's code changed, and notebooks that re-execute only when
what they run changed.

A throw-away package ``fakepkg`` (written under tmp_path and put on sys.path) stands in for
avdd's modules, so the tests can edit "the code" and watch what is recomputed.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avdd.analysis import cache
from avdd.config import Profile
from avdd.features.layout import StaleFeatures
from avdd.features.store import FeatureSet, FeatureStore
from avdd.provenance import changed_modules, code_fingerprints


def write(path: Path, text: str) -> None:
    """Write and move the modification time on, so that a cached parse is never reused."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(old + 10**9, old + 10**9))


@pytest.fixture
def pkg(tmp_path, monkeypatch) -> Path:
    """fakepkg: a imports b (inside a function), b imports nothing, c is unrelated."""
    root = tmp_path / "src" / "fakepkg"
    root.mkdir(parents=True)
    write(root / "__init__.py", "")
    write(root / "a.py", '"""A."""\n\ndef f():\n    from fakepkg.b import g\n    return g() + 1\n')
    write(root / "b.py", "def g():\n    return 1\n")
    write(root / "c.py", "def h():\n    return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return root


@pytest.fixture
def profile(tmp_path) -> Profile:
    return Profile(name="demo", data_roots={"av1m": tmp_path / "data"},
                   cache_dir=tmp_path / "cache", synthetic=True)


def test_fingerprints_follow_imports_and_ignore_prose(pkg):
    prints = code_fingerprints(["fakepkg.a"])
    assert set(prints) == {"fakepkg.a", "fakepkg.b"}  # c is not imported
    write(pkg / "a.py", '"""A, reworded."""\n\ndef f():  # a comment\n'
                        '    from fakepkg.b import g\n    return g() + 1\n')
    assert code_fingerprints(["fakepkg.a"]) == prints  # docstrings and comments are prose
    write(pkg / "b.py", "def g():\n    return 2\n")
    after = code_fingerprints(["fakepkg.a"])
    assert after["fakepkg.b"] != prints["fakepkg.b"] and after["fakepkg.a"] == prints["fakepkg.a"]
    assert changed_modules(prints) == ["fakepkg.b"]
    assert set(code_fingerprints(["fakepkg.a"], stop=["fakepkg.b"])) == {"fakepkg.a"}


def test_a_changed_computing_module_recomputes_an_unchanged_one_reuses(pkg, profile):
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"x": [len(calls)]})

    def run(**kw):
        return cache.cached(profile, "demo_table", {"k": 1}, compute, code="fakepkg.a", **kw)

    first = run()
    assert run().equals(first) and len(calls) == 1  # reused
    write(pkg / "c.py", "def h():\n    return 3\n")  # not imported by a: still reused
    assert run().equals(first) and len(calls) == 1
    write(pkg / "b.py", "def g():\n    return 5\n")  # imported by a: recomputed
    assert run().x.item() == 2 and len(calls) == 2
    entries = list((profile.cache_dir / "results" / "demo_table").iterdir())
    assert len(entries) == 1  # the entry of the old code is gone
    prov = json.loads((entries[0] / "provenance.json").read_text())
    assert set(prov["code"]) == {"fakepkg.a", "fakepkg.b"} and prov["config"] == {"k": 1}
    assert prov["synthetic"] is True and "git_sha" in prov and "versions" in prov
    assert run(force=True).x.item() == 3
    # Another configuration is another entry, beside the first.
    cache.cached(profile, "demo_table", {"k": 2}, compute, code="fakepkg.a")
    assert len(list((profile.cache_dir / "results" / "demo_table").iterdir())) == 2


def test_groups_of_tables_round_trip(pkg, profile):
    value = {"table": pd.DataFrame({"a": [1, 2]}), "pretext": pd.DataFrame({"b": [0.5]})}
    cache.cached(profile, "pair", {}, lambda: value, code="fakepkg.c")
    again = cache.cached(profile, "pair", {}, lambda: pytest.fail("recomputed"), code="fakepkg.c")
    assert set(again) == {"table", "pretext"}
    pd.testing.assert_frame_equal(again["table"], value["table"])


def test_an_entry_written_meanwhile_by_another_process_is_kept(pkg, profile, monkeypatch):
    """The book runs notebooks in two lanes, which may compute the same result at once: the
    second writer finds the first one's entry in place of the one it just removed."""
    import shutil

    value = pd.DataFrame({"a": [1, 2]})
    first = cache.put(profile, "shared", {"k": 1}, value, code="fakepkg.c")
    remove = shutil.rmtree

    def rmtree_but_the_entry(path, ignore_errors=False):  # the other lane rewrote it meanwhile
        if Path(path) != first:
            remove(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(shutil, "rmtree", rmtree_but_the_entry)
    assert cache.put(profile, "shared", {"k": 1}, value, code="fakepkg.c") == first
    monkeypatch.setattr(shutil, "rmtree", remove)
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary left
    pd.testing.assert_frame_equal(
        cache.cached(profile, "shared", {"k": 1}, lambda: pytest.fail("recomputed"),
                     code="fakepkg.c"), value)


def test_the_study_caches_stop_at_the_feature_extractors(tmp_path):
    """A probe's key covers the probe and the analysis code, not the backbone families (their
    features are keyed by Backbone.version)."""
    prof = Profile(name="demo", data_roots={}, cache_dir=tmp_path, synthetic=True)
    code = cache.entry(prof, "probe", {}, ["avdd.analysis.probes"]).code
    assert {"avdd.analysis.probes", "avdd.heads.probe", "avdd.heads.probe_kernels",
            "avdd.heads.scoring", "avdd.features.featureset"} <= set(code)
    assert not [m for m in code if m.startswith(("avdd.backbones", "avdd.features.extract",
                                                 "avdd.synth"))]
    grid = cache.entry(prof, "grid", {}, ["avdd.analysis.linear_probing"]).code
    assert "avdd.analysis.probes" in grid and "avdd.analysis.spatial" not in grid


def test_a_store_whose_backbone_code_changed_warns_once(pkg, tmp_path):
    root = tmp_path / "store"
    with FeatureStore(root, dim=2, fps=25, code=code_fingerprints(["fakepkg.a"])) as st:
        st.append("v", np.ones((3, 2)), label=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FeatureSet.open(root)  # unchanged code: silent
    write(pkg / "b.py", "def g():\n    return 7\n")
    with pytest.warns(StaleFeatures, match=r"store.*fakepkg\.b.*version"):
        fs = FeatureSet.open(root)
    assert len(fs) == 1  # still readable: features are keyed by the backbone's version
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FeatureSet.open(root)  # said once per store and process


def test_a_changed_notebook_or_its_code_re_executes_an_unchanged_one_does_not(
        pkg, tmp_path, monkeypatch):
    import papermill

    from avdd.report import book

    monkeypatch.setattr(book, "CODE_PACKAGES", ("avdd", "fakepkg"))
    ran = []

    def fake_execute(nb, out, parameters, **kw):  # papermill without a kernel
        import nbformat

        ran.append(Path(nb.metadata.get("jupytext", {}).get("name", "?")))
        nbformat.write(nb, out)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    nbs = {}
    for name, imp in (("uses_a", "from fakepkg.a import f"), ("uses_c", "from fakepkg.c import h")):
        nbs[name] = tmp_path / f"{name}.py"
        write(nbs[name], f"# %%\n{imp}\n")
    out = tmp_path / "generated"

    def build() -> set[str]:
        return {n for n, p in nbs.items()
                if book.execute_stale(p, out / f"{n}.ipynb", {"seed": 0})}

    assert build() == {"uses_a", "uses_c"}
    assert build() == set()  # nothing changed
    write(pkg / "b.py", "def g():\n    return 9\n")  # code of uses_a only (a imports b)
    assert build() == {"uses_a"}
    write(nbs["uses_c"], "# %%\nfrom fakepkg.c import h\nh()\n")  # the notebook itself
    assert build() == {"uses_c"}
    assert book.execute_stale(nbs["uses_c"], out / "uses_c.ipynb", {"seed": 1})  # parameters
