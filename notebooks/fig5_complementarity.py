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
# # Figure 5: are the representations complementary?
#
# **Question.** Do probes built on different representations make the same mistakes, or can
# combining them help?
#
# **Method (paper, Sec. 6).** Linear probes of five representations are trained on AV1M and
# scored on FAVC's test set. Left: Pearson correlation of their video scores. Right: the
# relative improvement of the row's AUC when its scores are averaged with the column's
# (late fusion, mean of raw scores): `100 · (AUC_fused − AUC_row) / AUC_row`.
#
# **Beyond the paper.** Spearman (rank) correlation, which is what AUC depends on, and
# bootstrap 95 % intervals on every fused AUC and improvement (paired: the same resampled
# videos for the single and the fused detector).

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "...", "favc": "...", ...}
cache_dir = None  # paper: where features and results are cached
# representations: {label: backbone spec}; labels are the paper's (Fig. 5's axes)
representations = {
    "W2V2": "wav2vec2-tiny-random",
    "AV-H (A)": "avhubert-a-tiny-random",
    "AV-H (V)": "avhubert-v-tiny-random",
    "V-MAE": "videomae-tiny-random",
    "CLIP": "clip-tiny-random",
}
train = "av1m"  # the probes' training set
test = "favc"  # where their scores are compared
seed = 43  # probe seed
n_bootstrap = 1000  # bootstrap resamples
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from avdd.analysis import known_answers
from avdd.analysis.fusion import complementarity
from avdd.config import check_parameters, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import intervals, synthetic_label
from avdd.report.page import Page
from avdd.report.reference import reference

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, representations=representations,
                 train=train, test=test, seed=seed, n_bootstrap=n_bootstrap, workers=workers,
                 outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
backbones = list(representations.values())
prepare(prof, backbones, [train, test], workers=workers, progress=False)
res = complementarity(prof, representations, train=train, test=test, seed=seed,
                      n_bootstrap=n_bootstrap)
fusion = res["fusion"]
labels = list(representations)
improvement = fusion.pivot(index="row", columns="col", values="rel_improvement").loc[labels, labels]
single_auc = fusion[fusion.row == fusion.col].set_index("row")["auc_row"].loc[labels]
paper = reference("fig5_correlation_and_fusion")
paper_corr = paper[paper.kind == "correlation"].set_index("row")
paper_imp = paper[paper.kind == "relative_improvement"].set_index("row")
checks = known_answers.complementarity_checks(prof, n_bootstrap=n_bootstrap, seed=seed,
                                              workers=workers)
page = Page("fig5_complementarity", prof, backbones, outputs=outputs, seed=seed, train=train,
            test=test)

# %% tags=["remove-input"]
display(Markdown(page.notice()))

# %% [markdown]
# ## Known answers
# What the synthetic benchmark plants by construction, what a working analysis must then
# show, and whether it does (`avdd.analysis.known_answers`; the expectations follow from how
# the benchmark is built, never from the paper). On real data nothing is known in advance.
# These checks use their own probes, trained and tested on AV1M-like data, where each of
# them sees its cue: the log-mel spectrum and the pretrained GE2E encoder the replaced voice,
# the mouth pixels the re-drawn mouth. The figure's pairs below are the paper's (AV1M → FAVC),
# where the demo's random representations see nothing (Table 2's column B).

# %% tags=["remove-input"]
page.checks(checks)

# %% [markdown]
# ## Ours beside the paper's

# %% tags=["remove-input"]


def heatmaps(corr, imp, auc, title, axes):
    """Fig. 5's two panels: correlation (%) and relative improvement (%) with row AUCs."""
    ylabels = [f"{r} ({a:.1f})" for r, a in zip(corr.index, auc)]
    sns.heatmap(corr, annot=True, fmt=".1f", cmap="Blues", vmin=0, vmax=100, cbar=False,
                ax=axes[0], yticklabels=ylabels, annot_kws={"fontsize": 8})
    axes[0].set_title(f"{title}: Pearson correlation (%)", fontsize=10)
    lim = max(5.0, float(np.nanmax(np.abs(imp.to_numpy()))))
    sns.heatmap(imp, annot=True, fmt=".1f", cmap="RdBu", center=0, vmin=-lim, vmax=lim,
                cbar=False, ax=axes[1], yticklabels=ylabels, annot_kws={"fontsize": 8})
    axes[1].set_title(f"{title}: relative improvement (%)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("")
        ax.set_ylabel("row (its AUC %)")


fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
heatmaps(res["pearson"].loc[labels, labels], improvement, single_auc,
         "ours" + synthetic_label(prof), axes[0])
heatmaps(paper_corr[labels].loc[labels], paper_imp[labels].loc[labels],
         paper_corr["auc"].loc[labels], "paper", axes[1])
fig.tight_layout()
page.figure(fig, "heatmaps")

# %% [markdown]
# ## Rank correlation
# AUC only depends on how scores rank videos, so Spearman correlation is the more telling
# measure of whether two probes make the same mistakes.

# %% tags=["remove-input"]
both = pd.concat({"Pearson": res["pearson"].loc[labels, labels],
                  "Spearman": res["spearman"].loc[labels, labels]}, axis=1)
page.table(both.style.format(precision=1).background_gradient(cmap="Blues", vmin=0, vmax=100),
           "correlations")

# %% [markdown]
# ## Every pair, with intervals
# Fused AUC and relative improvement over the row's AUC, with paired bootstrap 95 % intervals.
# An interval that contains 0 means the fusion's gain is within resampling noise.

# %% tags=["remove-input"]
pairs = fusion[fusion.row != fusion.col].copy()
pairs["fused AUC"] = intervals(pairs, "auc_fused", "auc_fused_low", "auc_fused_high")
pairs["improvement"] = intervals(pairs, "rel_improvement", "rel_low", "rel_high", signed=True)
page.table(pairs.set_index(["row", "col"])[["auc_row", "fused AUC", "improvement"]]
           .rename(columns={"auc_row": "row AUC"}).round(1), "pairs")
n = int(fusion["n_videos"].iloc[0])
display(Markdown(f"{n} {test.upper()} test videos ({int(fusion['n_fake'].iloc[0])} fake) scored "
                 f"by probes trained on {train.upper()}."))

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
