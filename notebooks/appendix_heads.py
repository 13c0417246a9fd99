# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Appendix: temporal heads, average precision, and multi-layer features
#
# Three questions a reader (and the paper's reviewers) may ask about the linear probe of
# Table 2:
#
# 1. **Would a temporal head do better?** The probe scores every frame on its own. The paper's
#    appendix compares it with a Transformer head but does not publish its architecture. Ours
#    (`avdd.heads.transformer.TransformerHead`, *our choice*): frames L2-normalised as for the probe →
#    Linear(D→64) + sinusoidal positions → one pre-LN Transformer layer (4 heads, FF 128,
#    dropout 0.1, padding masks) → one logit per frame → **log-sum-exp over time**, the
#    probe's pooling, so the two heads differ only in whether frames see each other. Same loss
#    as the probe, Adam (lr 1e-3), minibatches of 16 videos, early stopping on validation
#    loss (patience 10, ≤ 100 epochs), best weights kept, seed 43.
# 2. **Does AUC hide anything?** Average precision (AP) of the same probes, in Table 2's
#    layout. On test sets that are mostly fakes (FAVC ≈ 96 %), AP is close to 100 % for any
#    detector; read it against the fake fraction.
# 3. **Is the last layer the best one?** The probe on every hidden state of one backbone
#    (Wav2Vec2's `layer=` option: 0 = Transformer input, *k* = output of layer *k*).

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "...", "favc": "...", "avlips": "...", "dfe": "..."}
cache_dir = None  # paper: where features and results are cached
# (1) Transformer head vs probe: a cheap subset of backbones (one per modality on the demo)
head_backbones = ["wav2vec2-tiny-random", "avhubert-v-tiny-random", "avhubert-av-tiny-random"]
# TransformerHead arguments overriding its defaults; the demo caps training to fit the book's
# ten-minute budget ({} = the probe's recipe: at most 100 epochs, patience 10)
head_params = {"max_epochs": 30, "patience": 5}
# (2) AP tables: Table 2's backbones (its cached probes are reused); None: the demo's
# (avdd.config.DEMO_BACKBONES)
backbones = None
# (3) multi-layer features: a Wav2Vec2-family backbone and its hidden states to probe
layer_backbone = "wav2vec2-tiny-random"  # a Wav2Vec2-family spec (paper: wav2vec2 with model DIR)
layers = [0, 1, 2]  # hidden states: 0 is the Transformer input, k the output of layer k
seed = 43  # probe and head seed
n_bootstrap = 1000  # bootstrap resamples for the intervals
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from avdd.analysis.appendix import head_grid
from avdd.analysis.linear_probing import (
    OOD_COLUMNS,
    TABLE2_COLUMNS,
    linear_probe_grid,
    table2_matrix,
)
from avdd.backbones.wav2vec2 import layer_specs
from avdd.config import check_parameters, default_backbones, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import auc_gradient, data_label, synthetic_label
from avdd.report.page import Page

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, head_backbones=head_backbones,
                 head_params=head_params, backbones=backbones, layer_backbone=layer_backbone,
                 layers=layers, seed=seed, n_bootstrap=n_bootstrap, workers=workers,
                 outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
backbones = default_backbones(prof, backbones)
# the default (last) layer keeps its plain name: it is the same feature store as Table 2's
per_layer_specs = layer_specs(layer_backbone, layers)
everything = list(dict.fromkeys(backbones + head_backbones + per_layer_specs))
prepare(prof, everything, workers=workers, progress=False)
grid = linear_probe_grid(prof, backbones, seed=seed, n_bootstrap=n_bootstrap)
probe_sub = linear_probe_grid(prof, head_backbones, seed=seed, n_bootstrap=n_bootstrap)
heads = head_grid(prof, head_backbones, seed=seed, head_params=head_params,
                  n_bootstrap=n_bootstrap)
layer_grid = linear_probe_grid(prof, per_layer_specs, seed=seed, n_bootstrap=n_bootstrap)
IN_DOMAIN = [c for c, tr, te in TABLE2_COLUMNS if tr == te]
page = Page("appendix_heads", prof, everything, outputs=outputs, seed=seed,
            head=f"TransformerHead({head_params or 'defaults'})",
            layers=f"{layer_backbone} hidden states {layers}")

# %% tags=["remove-input"]
display(Markdown(page.notice()))

# %% [markdown]
# ## 1. Transformer head vs linear probe
# One point per backbone × Table 2 column (train → test). Above the diagonal, the temporal
# head is better. Filled markers are in-domain columns (A, C, G), open ones out-of-domain.
# The paper's appendix scatter is not transcribed in `reference/`, so there is no published
# point to place beside ours; its finding to check is whether the head beats the probe.

# %% tags=["remove-input"]
pair = probe_sub.merge(heads, on=["backbone", "column", "train", "test"],
                       suffixes=("_probe", "_head"))
fig, ax = plt.subplots(figsize=(5.6, 5.2))
for i, (b, d) in enumerate(pair.groupby("backbone", sort=False)):
    ind = d["column"].isin(IN_DOMAIN)
    ax.scatter(d.auc_probe[ind], d.auc_head[ind], color=f"C{i}", label=b, s=40)
    ax.scatter(d.auc_probe[~ind], d.auc_head[~ind], facecolors="none", edgecolors=f"C{i}",
               s=40)
    for _, r in d.iterrows():
        ax.annotate(r["column"], (r.auc_probe, r.auc_head), fontsize=6, xytext=(3, 2),
                    textcoords="offset points")
ax.plot([0, 100], [0, 100], color="0.5", lw=0.8)
ax.set_xlim(-2, 102)
ax.set_ylim(-2, 102)
ax.set_xlabel("linear probe ROC-AUC (%)")
ax.set_ylabel("Transformer head ROC-AUC (%)")
ax.set_title("Transformer head vs linear probe" + synthetic_label(prof), fontsize=10)
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
page.figure(fig, "head-vs-probe")

# %% tags=["remove-input"]
summary = pair.assign(domain=lambda d: d["column"].map(
    lambda c: "in-domain" if c in IN_DOMAIN else "out-of-domain"))
summary = (summary.groupby(["backbone", "domain"], sort=False)[["auc_probe", "auc_head"]]
           .mean().assign(difference=lambda d: d.auc_head - d.auc_probe))
page.table(summary.style.format(precision=1, na_rep="–")
           .set_caption("Mean ROC-AUC (%) over the in- and out-of-domain columns"),
           "head-vs-probe-means")
epochs = heads.drop_duplicates(["backbone", "train"]).pivot(index="backbone", columns="train",
                                                            values="best_epoch")
page.table(epochs.style.set_caption("Transformer head: best epoch (0-based) per training set"),
           "head-epochs")

# %% [markdown]
# ## 2. Average precision of the linear probes
# Table 2's layout with AP (%) instead of ROC-AUC; the last row of the second table gives the
# fake fraction of each test set, the AP of a random detector.

# %% tags=["remove-input"]
ap = table2_matrix(grid, value="ap")
page.table(auc_gradient(ap.style.format(precision=1, na_rep="–"))
           .set_caption(data_label(prof) + ": average precision (%) of the linear probes"), "ap")
chance = grid.drop_duplicates("column").set_index("column")
chance = (100 * chance.n_fake / (chance.n_fake + chance.n_real)).rename("fake fraction (%)")
page.table(chance.to_frame().T.style.format(precision=1)
           .set_caption("AP of a random detector = the test set's fake fraction"),
           "fake-fractions")
display(Markdown(
    "*Paper.* The reference folder transcribes the paper's AUC tables only, so no published AP "
    "is shown here; compare the AP table above with the fake fractions instead."))

# %% [markdown]
# ## 3. Which layer?
# The probe on each hidden state of `layer_backbone`; in-domain = mean of A, C, G,
# out-of-domain = J (mean of B, D, E, F, H, I). With random weights (the demo), each
# Transformer layer adds only a small update to the residual stream, so neighbouring hidden
# states are nearly the same features; the question is meaningful for pretrained weights.

# %% tags=["remove-input"]
per_layer = table2_matrix(layer_grid)
per_layer.index = [f"layer {k}" for k in layers]
per_layer.insert(0, "in-domain", per_layer[IN_DOMAIN].mean(axis=1))
per_layer.insert(1, "out-of-domain (J)", per_layer[list(OOD_COLUMNS)].mean(axis=1))
page.table(per_layer.style.format(precision=1, na_rep="–")
           .set_caption(f"{layer_backbone}: ROC-AUC (%) of the linear probe per hidden state"),
           "layers")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(layers, per_layer["in-domain"], "o-", label="in-domain (A, C, G)")
ax.plot(layers, per_layer["out-of-domain (J)"], "s--", label="out-of-domain (J)")
ax.axhline(50, color="0.6", lw=0.8)
ax.set_xticks(layers)
ax.set_xlabel("hidden state (0 = Transformer input)")
ax.set_ylabel("ROC-AUC (%)")
ax.set_ylim(0, 102)
ax.legend(fontsize=8)
ax.set_title(layer_backbone + synthetic_label(prof), fontsize=10)
fig.tight_layout()
page.figure(fig, "layer-curves")

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
