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
# # Table 1: the representations
#
# **Question.** What exactly is being compared? Fourteen frozen representations that differ in
# input (audio, mouth region, face, full frame), in how much time one feature vector sees, in
# what they were pretrained on, and in size.
#
# **Method.** The descriptive columns are facts about each model (from the paper and the
# upstream code, kept in one typed table, `avdd.analysis.representations.REPRESENTATIONS`). The numbers
# are *computed*: every full-size architecture is instantiated on PyTorch's `meta` device
# (shapes without memory) and its feature dimension, frame rate and parameter count are read
# from it. Random-init variants share the pretrained models' shapes, so no checkpoint is
# needed. The demo's stand-ins are also checked on their extracted features (*feature
# health*, below).

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" or "paper": labels the stand-ins; the demo extracts their features
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "...", ...}
cache_dir = None  # paper: where features and results are cached
# the stand-ins listed with their real (tiny) parameter counts; None: the demo's
# (avdd.config.DEMO_BACKBONES)
backbones = None
workers = 2  # demo: decode/feature processes for extraction (the health of the stand-ins)
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from matplotlib.patches import Patch

from avdd.analysis import known_answers
from avdd.analysis.representations import SOURCE_NOTE, demo_table, representation_table
from avdd.config import check_parameters, default_backbones, make_profile
from avdd.features.health import THRESHOLDS
from avdd.features.prepare import prepare
from avdd.report.format import MODALITY_COLOURS
from avdd.report.page import Page

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, backbones=backbones,
                 workers=workers, outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
backbones = default_backbones(prof, backbones)
table = representation_table()
if prof.synthetic:  # the stand-ins' stores, for their health (real stores: where extracted)
    prepare(prof, backbones, workers=workers, progress=False)
demo = demo_table(backbones, profile=prof)
checks = known_answers.table1_checks(prof, demo)
page = Page("table1_representations", prof, backbones, outputs=outputs,
            architectures="meta-device instances")

# %% [markdown]
# ## The paper's representations
# Modality is what the linear probe sees. *Context* is how much of the clip one output frame
# depends on: Transformers over the whole clip, VideoMAE over its 16-frame chunk, CLIP and FSFM
# over one frame. Parameters are those of the instantiated network (for AV-HuBERT (A) and (V),
# the whole audio-visual network, which runs with the other modality zeroed).

# %% tags=["remove-input"]
shown = table[["modality", "input", "context", "pretraining_modality", "pretraining_data",
               "supervision", "dim", "fps", "params_M"]].rename(columns={
                   "pretraining_modality": "pretrained on", "pretraining_data": "pretraining data",
                   "dim": "feature dim", "fps": "frame rate (Hz)", "params_M": "parameters (M)"})
page.table(shown.style.format({"parameters (M)": "{:,.1f}", "frame rate (Hz)": "{:g}"})
           .set_caption("Table 1: representations (dimension, rate and size computed from "
                        "the instantiated architectures)"), "representations")
mismatch = table[~table["dim_matches"]]
display(Markdown(
    "Every computed feature dimension equals the one the paper states."
    if mismatch.empty else
    "**Computed dimension differs from the paper's** for: "
    + ", ".join(f"{i} ({r.dim} vs {r.paper_dim})" for i, r in mismatch.iterrows())))
display(Markdown(f"*Sources.* {SOURCE_NOTE}"))

# %% [markdown]
# ## Size at a glance
# Parameter counts of the instantiated networks, coloured by the modality the probe sees.

# %% tags=["remove-input"]
fig, ax = plt.subplots(figsize=(7, 4.4))
ax.barh(table.index[::-1], table["params_M"][::-1],
        color=[MODALITY_COLOURS[m] for m in table["modality"][::-1]])
ax.set_xscale("log")
ax.set_xlim(10, 5000)
ax.set_xlabel("parameters (millions, log scale)")
ax.legend(handles=[Patch(color=c, label=m) for m, c in MODALITY_COLOURS.items()], fontsize=8,
          loc="upper right")
ax.set_title("Instantiated full-size architectures", fontsize=10)
fig.tight_layout()
page.figure(fig, "parameters")

# %% [markdown]
# ## The demo's stand-ins
# The demo profile runs the same code paths on tiny random-weight versions of these
# architectures and on two handcrafted features, plus one genuinely pretrained audio encoder
# beside its random-init twin: `ge2e`, Resemblyzer's GE2E speaker encoder (3-layer LSTM on
# 40 mel bands; weights from the `resemblyzer` wheel, Apache-2.0), which is trained for
# speaker verification, *supervised*, and not self-supervised like the paper's backbones.
# The pair lets the demo ask the paper's question (do pretrained features carry cues that
# random ones lack?) with real weights. Their parameter counts come from real instantiation.
#
# **Feature health.** The probe L2-normalises every frame, so it sees only directions. For
# each backbone the table gives its worst extracted store (`avdd.features.health`, on a fixed
# sample of at most 4,096 frames per store): the mean cosine of the frames to their mean
# direction, their spread (RMS distance from their centroid, 0 to 1), the effective rank of
# their variation and the fraction of consecutive frames that are near identical. A store is
# *degenerate* when its frames all point within ~0.8° of one direction (mean cosine above
# 0.9999) or vary along one line (effective rank below 1.5): its scores then measure clip
# length only. Every page that uses a degenerate store names it in a warning.

# %% tags=["remove-input"]
display(Markdown(page.notice()))
page.table(demo.rename(columns={"dim": "feature dim", "fps": "frame rate (Hz)",
                                "mean_cosine": "mean cosine", "effective_rank": "effective rank",
                                "identical_fraction": "near-identical pairs"})
           .style.format({"params": "{:,d}", "frame rate (Hz)": "{:g}", "mean cosine": "{:.4f}",
                          "spread": "{:.3f}", "effective rank": "{:.1f}",
                          "near-identical pairs": "{:.0%}", "stores": "{:.0f}"}, na_rep="–")
           .set_caption("Demo backbones (handcrafted, tiny random weights, and the pretrained "
                        "GE2E speaker encoder beside its random twin) and the health of their "
                        f"feature stores (degenerate: mean cosine > "
                        f"{THRESHOLDS.max_mean_cosine:g} or effective rank < "
                        f"{THRESHOLDS.min_effective_rank:g})"), "demo")


# %% [markdown]
# ## Known answers
# What the synthetic benchmark's construction says a working pipeline must show here, and
# whether it does (`avdd.analysis.known_answers`).

# %% tags=["remove-input"]
page.checks(checks)

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
