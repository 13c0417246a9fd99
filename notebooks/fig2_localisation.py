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
# # Figure 2: classification vs temporal localisation
#
# **Question.** When a linear probe detects a fake video, do its *frame* scores point at the
# manipulated frames, or does it decide from cues elsewhere in the video?
#
# **Method (paper).** The probe's per-frame logit is its temporal
# explanation. On the fake test videos of AV1M, frames inside a ground-truth fake segment are
# labelled 1 (frames ⌊fps·start⌋ to ⌊fps·end⌋; 12.5 Hz labels for VideoMAE), the others 0, and
# the ROC-AUC of the frame scores against these labels is computed per video and averaged over
# videos. Videos whose feature length differs from their duration × fps by more than 2 frames
# are skipped. Beside it: the classification AUC of the same probe (AV1M → AV1M, video level, as
# Table 2 column C). Both in percent.
#
# **Beyond the paper.** A bootstrap 95 % interval over test videos for both AUCs, and how many
# fake videos entered each localisation mean.

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "..."}; AV1M's metadata holds the fake segments
cache_dir = None  # paper: where features and results are cached
# backbones: registry names (`avdd backbones`), or "NAME:key=value"; None: the demo's
# (avdd.config.DEMO_BACKBONES). Each stands beside the paper's row of its architecture
# (avdd.report.reference.FIG2_ROWS).
backbones = None
train = "av1m"  # the probes' training set
test = "av1m"  # the test set with fake segments
seed = 43  # probe seed (the official code's)
n_bootstrap = 1000  # bootstrap resamples for the 95 % intervals
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from avdd.analysis import known_answers
from avdd.analysis.temporal import localisation_table
from avdd.config import check_parameters, default_backbones, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import MODALITY_COLOURS, intervals, synthetic_label
from avdd.report.page import Page
from avdd.report.reference import fig2_paper, reference

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, backbones=backbones, train=train,
                 test=test, seed=seed, n_bootstrap=n_bootstrap, workers=workers,
                 outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
backbones = default_backbones(prof, backbones)
prepare(prof, backbones, sorted({train, test}), workers=workers, progress=False)
ours = localisation_table(prof, backbones, train=train, test=test, seed=seed,
                          n_bootstrap=n_bootstrap)
paper = reference("fig2_classification_vs_localization_auc")
beside = fig2_paper(ours.backbone)  # the paper's row of each backbone's architecture
prepare(prof, [known_answers.REFERENCE_AUDIO], sorted({train, test}), workers=workers,
        progress=False)
checks = known_answers.localisation_checks(prof, train=train, test=test, seed=seed,
                                           n_bootstrap=n_bootstrap)
page = Page("fig2_localisation", prof, backbones, outputs=outputs, seed=seed, train=train,
            test=test)

# %% tags=["remove-input"]
display(Markdown(page.notice()))

# %% [markdown]
# ## Known answers
# What the synthetic benchmark plants by construction, what a working analysis must then
# show, and whether it does (`avdd.analysis.known_answers`; the expectations follow from how
# the benchmark is built, never from the paper). On real data nothing is known in advance.

# %% tags=["remove-input"]
page.checks(checks)

# %% [markdown]
# ## Ours beside the paper's
# Each representation has two bars: classification AUC (light, hatched) and localisation AUC
# (solid), coloured by modality. The line at 50 is chance for both.

# %% tags=["remove-input"]


def bars(ax, names, modality, cls, loc, title, cls_err=None, loc_err=None):
    """Fig. 2's layout: per representation a classification and a localisation bar."""
    x = np.arange(len(names))
    colours = [MODALITY_COLOURS.get(m, "grey") for m in modality]
    ax.bar(x - 0.2, cls, 0.4, color=colours, alpha=0.35, hatch="//", edgecolor=colours,
           yerr=cls_err, ecolor="0.4", capsize=2)
    ax.bar(x + 0.2, loc, 0.4, color=colours, yerr=loc_err, ecolor="0.2", capsize=2)
    ax.axhline(50, color="0.5", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("AUC (%)")
    ax.set_title(title, fontsize=10)


def err(df, col, lo, hi):
    """Asymmetric error bars (2, N) from an interval; zero where it is unknown."""
    return np.nan_to_num(np.vstack([df[col] - df[lo], df[hi] - df[col]]).clip(min=0))


fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True,
                         gridspec_kw={"width_ratios": [len(ours), len(paper)]})
bars(axes[0], ours.backbone, ours.modality, ours.auc, ours.loc_auc,
     "ours" + synthetic_label(prof, weights="random / handcrafted"),
     err(ours, "auc", "auc_ci_low", "auc_ci_high"),
     err(ours, "loc_auc", "loc_ci_low", "loc_ci_high"))
bars(axes[1], paper.model, paper.modality, paper.classification_auc, paper.localization_auc,
     "paper, Fig. 2 (AV1M, pretrained / random-init backbones)")
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in MODALITY_COLOURS.values()]
handles += [plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="k", hatch="//"),
            plt.Rectangle((0, 0), 1, 1, color="k")]
fig.legend(handles, list(MODALITY_COLOURS) + ["classification", "localisation"],
           loc="upper center", ncol=5, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0, 1, 0.93))
page.figure(fig, "bars")

# %% [markdown]
# ## Does detecting imply localising?
# One point per representation: classification AUC against localisation AUC. Points far below
# the diagonal detect fakes from cues that are not in the manipulated frames (in the paper:
# FSFM, CLIP, VideoMAE).

# %% tags=["remove-input"]
fig, ax = plt.subplots(figsize=(5.5, 5))
for m, c in MODALITY_COLOURS.items():
    p = paper[paper.modality == m]
    ax.scatter(p.classification_auc, p.localization_auc, color=c, marker="o", alpha=0.5,
               label=f"paper, {m}")
    o = ours[ours.modality == m]
    ax.scatter(o.auc, o.loc_auc, color=c, marker="x", s=50,
               label=f"ours, {m}" + synthetic_label(prof))
ax.plot([0, 100], [0, 100], color="0.6", lw=0.8)
ax.axhline(50, color="0.8", lw=0.8, ls="--")
ax.axvline(50, color="0.8", lw=0.8, ls="--")
ax.set_xlim(0, 102)
ax.set_ylim(0, 102)
ax.set_xlabel("classification AUC (%)")
ax.set_ylabel("localisation AUC (%)")
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()
page.figure(fig, "scatter")

# %% [markdown]
# ## Numbers, with intervals
# "paper" columns: the paper's row for the same architecture (pretrained weights there; here,
# in the demo, tiny random or handcrafted ones). "videos": fake test videos in the
# localisation mean / skipped for a length mismatch / skipped because all frames share one
# label.

# %% tags=["remove-input"]
shown = pd.DataFrame({
    "modality": ours.modality.values,
    "weights": ours.weights.values,
    "classification": intervals(ours, "auc", "auc_ci_low", "auc_ci_high"),
    "localisation": intervals(ours, "loc_auc", "loc_ci_low", "loc_ci_high"),
    "videos": [f"{u} / {s} / {c}" for u, s, c in zip(ours.loc_n_used, ours.loc_n_skipped_length,
                                                      ours.loc_n_single_class)],
    "fps": ours.fps.values,
}, index=pd.Index(ours.backbone, name="backbone")).join(beside)
page.table(shown.style.format(precision=1, na_rep="–"), "numbers")
display(Markdown(
    f"Test set: {test.upper()} test split, {int(ours.n_real.iloc[0])} real / "
    f"{int(ours.n_fake.iloc[0])} fake videos; probes trained on {train.upper()} "
    f"(train split, validation split for early stopping), seed {seed}; intervals: "
    f"{n_bootstrap} bootstrap resamples of the test videos."))

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
