"""What every book page shares: number formats, labels, the demo backbones, the paper's Fig. 2
rows, and the files (PDF, PNG, CSV, provenance) each figure and table is written to."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from avdd.config import DEMO_BACKBONES, default_backbones, make_profile
from avdd.report.export import links_markdown, save_figure, save_table, slug
from avdd.report.format import (
    MODALITY_COLOURS,
    data_label,
    interval,
    intervals,
    synthetic_label,
)
from avdd.report.reference import FIG2_ROWS, fig2_paper, fig2_row, reference

matplotlib.use("Agg")


@pytest.fixture
def demo(tmp_path):
    return make_profile("demo", home=tmp_path)


@pytest.fixture
def paper(tmp_path):
    return make_profile("paper", data_roots={"av1m": str(tmp_path)}, cache_dir=str(tmp_path))


# -- formats and labels ----------------------------------------------------------------------
def test_interval_formats_value_and_bounds_and_dashes_what_is_missing():
    assert interval(78.61, 63.24, 90.95) == "78.6 [63.2, 91.0]"
    assert interval(0.5, 0.25, 0.75, digits=2) == "0.50 [0.25, 0.75]"
    assert interval(2.0, -1.0, 3.0, signed=True) == "+2.0 [-1.0, +3.0]"
    assert interval(float("nan"), float("nan"), float("nan")) == "–"  # AUC on one class
    assert interval(np.nan, 1.0, 2.0) == "–"
    assert interval(60.0, np.nan, np.nan) == "60.0 [–, –]"  # too few videos to resample
    assert interval(None, None, None) == "–"


def test_intervals_read_three_columns_row_by_row():
    df = pd.DataFrame({"auc": [50.0, np.nan], "lo": [40.0, np.nan], "hi": [60.0, np.nan]})
    assert intervals(df, "auc", "lo", "hi") == ["50.0 [40.0, 60.0]", "–"]


def test_labels_say_synthetic_only_on_synthetic_data(demo, paper):
    assert synthetic_label(demo) == " (synthetic)"
    assert synthetic_label(demo, weights="random") == " (synthetic, random weights)"
    assert synthetic_label(paper) == synthetic_label(paper, weights="random") == ""
    assert data_label(demo) == "Synthetic benchmark" and data_label(paper) == "Real data"
    assert list(MODALITY_COLOURS) == ["audio", "visual", "audio-visual"]


def test_the_data_notice_names_the_weights_kinds_and_the_pretrained_encoder(demo):
    from avdd.report.notices import data_notice

    tiny = data_notice(demo, ["logmel", "clip-tiny-random"])
    assert "handcrafted or random weights (`logmel`, `clip-tiny-random`)." in tiny
    both = data_notice(demo, ["logmel", "ge2e", "ge2e-random"])
    assert "handcrafted, pretrained or random weights" in both
    assert "`ge2e`: pretrained, but not one of the paper's backbones" in both
    assert "are shown beside them" in tiny
    beyond = data_notice(demo, ["logmel"], paper=False)
    assert "not reproductions" in beyond and "beside them" not in beyond
    assert "goes beyond the paper" in beyond


# -- the demo's backbones, in one place --------------------------------------------------------
def test_backbones_default_to_the_demo_list_and_the_paper_profile_must_name_them(demo, paper):
    assert default_backbones(demo) == list(DEMO_BACKBONES)
    assert default_backbones(demo, ["logmel"]) == ["logmel"]
    assert default_backbones(paper, ("clip:model=/ckpt",)) == ["clip:model=/ckpt"]
    with pytest.raises(ValueError, match=r"`silence_backbones`.*paper\.example\.yaml"):
        default_backbones(paper, parameter="silence_backbones")


def test_demo_backbones_run_audio_then_visual_then_audio_visual():
    from avdd.backbones import describe

    order = ["audio", "visual", "audio-visual"]
    ranks = [order.index(describe(b).modality) for b in DEMO_BACKBONES]
    assert ranks == sorted(ranks) and len(set(DEMO_BACKBONES)) == len(DEMO_BACKBONES)


def test_every_demo_default_of_the_analyses_is_a_demo_backbone():
    from avdd.analysis.anomaly import DEMO_ROWS

    specs = {s for row in DEMO_ROWS.values() for s in row}
    assert specs <= set(DEMO_BACKBONES), specs - set(DEMO_BACKBONES)


# -- the paper's Fig. 2 rows -------------------------------------------------------------------
#: The mapping fig2_localisation.ipynb carried as a parameter before it moved into the package.
NOTEBOOK_PAPER_ROWS = {
    "wav2vec2-tiny-random": "Wav2Vec2", "avhubert-a-tiny-random": "AV-H(A)",
    "clip-tiny-random": "CLIP", "videomae-tiny-random": "Video-MAE", "fsfm-tiny-random": "FSFM",
    "avhubert-v-tiny-random": "AV-H(V)", "autoavsr-vsr-tiny-random": "Auto-AVSR (VSR)",
    "avhubert-av-tiny-random": "AV-HuBERT (AV)",
}


def test_fig2_rows_are_the_ones_the_notebook_used_and_cover_the_paper():
    assert {b: fig2_row(b) for b in DEMO_BACKBONES if fig2_row(b)} == NOTEBOOK_PAPER_ROWS
    assert fig2_row("logmel") is None and fig2_row("braven-v-tiny-random") is None
    # real specs: arguments do not change the row, random-init rows are the paper's own
    assert fig2_row("wav2vec2:model=/ckpt/wav2vec2-xls-r-2b") == "Wav2Vec2"
    assert fig2_row("avhubert-a-random") == "AV-H(A) random"
    paper = reference("fig2_classification_vs_localization_auc")
    assert sorted(FIG2_ROWS.values()) == sorted(paper.model)


def test_fig2_paper_numbers_sit_beside_each_backbone():
    got = fig2_paper(["clip-tiny-random", "logmel"])
    assert got.loc["clip-tiny-random"].tolist() == ["CLIP", 96.54, 80.17]
    assert pd.isna(got.loc["logmel", "paper row"])
    assert np.isnan(got.loc["logmel", "paper classification"])


# -- figures and tables as files ---------------------------------------------------------------
RECORD = {"page": "fig9_test", "profile": "demo", "synthetic": True, "git_sha": "0123456789abc",
          "git_dirty": False, "versions": {"numpy": np.__version__}}


def small_figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_a_figure_is_written_as_pdf_and_png_with_its_provenance(tmp_path):
    from PIL import Image

    pdf, png, meta = save_figure(small_figure(), tmp_path / "files", "fig9_test-curve", RECORD)
    assert [p.name for p in (pdf, png, meta)] == [
        "fig9_test-curve.pdf", "fig9_test-curve.png", "fig9_test-curve.json"]
    assert pdf.read_bytes().startswith(b"%PDF") and b"git 0123456789" in pdf.read_bytes()
    with Image.open(png) as im:
        assert "git 0123456789" in im.text["Description"] and "demo" in im.text["Description"]
    side = json.loads(meta.read_text())
    assert side["git_sha"] == "0123456789abc" and side["synthetic"] is True
    assert side["files"] == ["fig9_test-curve.pdf", "fig9_test-curve.png"]


def test_a_table_is_written_as_csv_from_a_frame_or_a_styler(tmp_path):
    df = pd.DataFrame({"auc": [91.25, 50.0]}, index=pd.Index(["a", "b"], name="backbone"))
    csv, meta = save_table(df.style.format(precision=1).set_caption("AUC (%)"), tmp_path,
                           "fig9_test-auc", RECORD)
    back = pd.read_csv(csv, index_col="backbone")
    assert back["auc"].tolist() == [91.25, 50.0]  # the data, not its rounded display
    assert json.loads(meta.read_text())["caption"] == "AUC (%)"
    csv, _ = save_table(pd.DataFrame({"x": [1, 2]}), tmp_path, "fig9_test-plain", RECORD)
    assert csv.read_text().splitlines() == ["x", "1", "2"]  # no 0..n-1 index column
    with pytest.raises(TypeError):
        save_table([1, 2], tmp_path, "fig9_test-list", RECORD)


def test_links_are_relative_to_the_page_and_names_are_slugs(tmp_path):
    files = tmp_path / "fig9_test_files"
    files.mkdir()
    paths = [files / "fig9_test-a.pdf", files / "fig9_test-a.json"]
    assert links_markdown(paths, tmp_path) == (
        "Download: [PDF](fig9_test_files/fig9_test-a.pdf) · "
        "[provenance (JSON)](fig9_test_files/fig9_test-a.json)")
    assert slug("timeline AV-H (A)") == "timeline-av-h-a"
    with pytest.raises(ValueError):
        slug(" () ")


def test_a_page_shows_links_only_when_it_writes_files(demo, tmp_path, monkeypatch):
    import IPython.display

    from avdd.report.page import Page

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    quiet = Page("fig9_test", demo, ["logmel"])
    quiet.figure(small_figure(), "curve")
    quiet.table(pd.DataFrame(), "t")
    assert [type(o).__name__ for o in shown] == ["Figure", "DataFrame"]  # no links
    assert quiet.files == []
    shown.clear()
    files = tmp_path / "fig9_test_files"
    page = Page("fig9_test", demo, ["logmel", "logmel"], outputs=files, seed=3)
    # None, so that a cell ending in one shows no list of paths on the page
    assert page.figure(small_figure(), "curve") is None
    assert page.table(pd.DataFrame({"x": [1]}), "t") is None
    assert [p.name for p in page.files] == ["fig9_test-curve.pdf", "fig9_test-curve.png",
                                            "fig9_test-curve.json", "fig9_test-t.csv",
                                            "fig9_test-t.json"]
    assert [type(o).__name__ for o in shown] == ["Figure", "Markdown", "DataFrame", "Markdown"]
    assert shown[3].data == ("Download: [CSV](fig9_test_files/fig9_test-t.csv) · "
                             "[provenance (JSON)](fig9_test_files/fig9_test-t.json)")
    side = json.loads((files / "fig9_test-t.json").read_text())
    assert side["seed"] == 3 and side["weights"] == {"logmel": "handcrafted"}
    assert side["page"] == "fig9_test" and side["kind"] == "table" and side["profile"] == "demo"
    with pytest.raises(ValueError, match="already wrote"):
        page.table(pd.DataFrame({"x": [1]}), "T")  # the same slug


def test_a_run_whose_files_are_gone_is_run_again(tmp_path, monkeypatch):
    import nbformat
    import papermill

    from avdd.report import book

    def fake_execute(nb, out, parameters, **kw):  # papermill without a kernel
        folder = Path(parameters["outputs"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "page-fig.png").write_bytes(b"png")
        nbformat.write(nb, out)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    nb = tmp_path / "page.py"
    nb.write_text("# %%\nx = 1\n")
    files = tmp_path / "generated" / "page_files"
    (files).mkdir(parents=True)
    (files / "stale.csv").write_text("left by an older run")
    out = tmp_path / "generated" / "page.ipynb"

    def run() -> bool:
        return book.execute_stale(nb, out, {"outputs": str(files)}, files=files)

    assert run() and not (files / "stale.csv").exists()  # emptied first
    assert json.loads(out.read_text())["metadata"]["avdd"]["files"] == ["page-fig.png"]
    assert not run()  # up to date
    (files / "page-fig.png").unlink()
    assert run() and (files / "page-fig.png").is_file()  # its page links a missing file
