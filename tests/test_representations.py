"""Table 1: descriptive facts + numbers read from the instantiated architectures."""

from __future__ import annotations

import os
import time

import pytest

from avdd.analysis.representations import (
    REPRESENTATIONS,
    Representation,
    build,
    count_parameters,
    demo_table,
    representation_table,
)


def test_facts_table_is_typed_and_covers_the_paper_rows():
    from avdd.report.reference import reference

    assert all(isinstance(r, Representation) for r in REPRESENTATIONS)
    paper = reference("table2_linear_probing_auc")
    assert [r.label for r in REPRESENTATIONS] == paper["model"].tolist()
    assert [r.modality for r in REPRESENTATIONS] == paper["modality"].tolist()


def test_full_size_counts_on_meta_without_memory_or_network():
    before = os.environ.get("HF_HUB_OFFLINE")
    t0 = time.perf_counter()
    b = build("wav2vec2-random", meta=True)
    assert time.perf_counter() - t0 < 60  # no hub retries
    assert os.environ.get("HF_HUB_OFFLINE") == before  # restored
    # transformers allocates a few small tensors explicitly on the CPU (masked_spec_embed,
    # 1,920 floats); the 2 B weights themselves have no storage.
    assert sum(p.numel() for p in b.net.parameters() if not p.is_meta) < 1e5
    n = count_parameters(b)
    assert 2.0e9 < n < 2.3e9  # XLS-R 2B
    assert b.dim == 3840 and b.fps == 25.0


def test_count_parameters_counts_shared_modules_once():
    b = build("wav2vec2-tiny-random", meta=False)
    n = sum(p.numel() for p in b.net.parameters())
    assert count_parameters(b) == n
    b.alias = b.net  # the same module under two attributes
    assert count_parameters(b) == n
    assert count_parameters(build("logmel", meta=False)) == 0


@pytest.mark.slow
def test_representation_table_columns():
    rows = [r for r in REPRESENTATIONS if r.label in ("Video-MAE-large", "Auto-AVSR")]
    t = representation_table(rows)
    assert list(t.index) == ["Video-MAE-large", "Auto-AVSR"]
    assert t.loc["Video-MAE-large", "fps"] == 12.5
    assert t["dim_matches"].all()
    assert (t["params"] > 1e8).all()
    assert {"context", "pretraining_modality", "pretraining_data", "supervision"} <= set(t.columns)


def test_demo_table_real_instantiation():
    t = demo_table(["logmel", "clip-tiny-random"])
    assert t.loc["logmel", "params"] == 0
    assert 0 < t.loc["clip-tiny-random", "params"] < 1e6
    assert t.loc["clip-tiny-random", "dim"] == 16


def test_demo_table_says_how_each_backbone_learned_its_weights():
    import pytest

    from avdd.analysis.representations import supervision

    t = demo_table(["logmel", "ge2e", "ge2e-random"])
    assert t.loc["ge2e", "supervision"] == \
        "pretrained (supervised speaker verification), not self-supervised"
    assert t.loc["ge2e-random", "supervision"] == "none (random init)"
    assert t.loc["logmel", "supervision"] == "none (handcrafted)"
    assert list(t["weights"]) == ["handcrafted", "pretrained", "random"]
    # LSTM(40 → 256, 3 layers): 4·256·(in + 256) weights + 2·4·256 biases per layer, plus
    # Linear(256, 256): the twin has the pretrained encoder's exact size.
    lstm = sum(4 * 256 * (n_in + 256) + 2 * 4 * 256 for n_in in (40, 256, 256))
    assert t.loc["ge2e", "params"] == t.loc["ge2e-random", "params"] == lstm + 256 * 256 + 256
    with pytest.raises(KeyError, match="PRETRAINED_SUPERVISION"):
        supervision("wav2vec2:model=/ckpt", "pretrained")
