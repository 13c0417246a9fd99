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
# # Figure 4: where in the frame does the probe look?
#
# **Question.** When a linear probe on CLIP features calls a video fake, does it look at the
# manipulated part of the image?
#
# **Method (paper, Sec. 5, as its code runs it).** A linear probe on CLIP ViT-L/14 frame
# embeddings is trained on ExDDV's fakes and 1,000 FaceForensics++ originals, and explains the
# human clicks on every test fake (1,910 clicks). For each clicked frame, Grad-CAM of the
# per-frame model (CLIP → L2 norm → linear logit) at the last block's first LayerNorm gives a
# map over the 16×16 patch tokens; it is min-max scaled, upsampled bilinearly, pasted back
# through CLIP's resize and centre crop into the full frame, and the predicted point is the
# mean of all its maximal pixels (a flat map: the frame's centre). The error of a click
# `(x, y)` is `(|x − x̂| + |y − ŷ|) / 2` in frame-normalised units. Baselines: the frame
# centre; the centre of a face detector's box (dlib's HOG detector, as `face_recognition`; a
# seeded random face when there are several, the frame centre when there is none); the
# ExDDV paper's supervised click model (a constant, 0.0553). Left panel: mean error over the
# clicks whose video fakeness score is at least θ, for θ at every score (with a bootstrap
# 95 % band). Right: examples.
#
# **Beyond the paper.** A gradient-free alternative, the *patch probe*: the probe applied to
# every patch token once mapped into the embedding space (`post_layernorm` + visual
# projection), explained with the same rule; and the argmax cell's centre as a coarser point
# rule (`point = "cell"`).
#
# **The demo's clicks.** The synthetic benchmark has no human clicks; the centre of the
# manipulated region of each fake frame stands in for them. We use the FAVC-like domain:
# every frame of its fakes is manipulated (whole-clip face swaps, whose region is the
# swapped inner face, and lip-sync re-renders, whose region is the mouth), like ExDDV's
# face-swap and reenactment fakes, and its probe is the one Table 2 trains (column A). The
# AV1M-like domain manipulates a few words of a clip and many of its fakes are audio-only,
# so far fewer frames would carry a region; DFE-like fakes mix several kinds.
#
# **The demo's representation.** Any backbone with a spatial grid can be explained. The
# demo's tiny random CLIP (56² input, a 4×4 grid) does not see the pasted regions, so its maps
# could not show whether the analysis works; the demo explains `detail-grid` instead, a
# handcrafted 8×8 grid of how much fine detail each cell keeps (`avdd.backbones.detail_grid`),
# which sees a pasted region's blur and lower resolution. Its embedding is the grid itself,
# so the patch probe is each cell's exact share of the probe's logit, and the known-answer
# check reads that map; Grad-CAM averages the gradient over the cells and loses the per-cell
# weights such a probe relies on (both are shown). Rerun with `backbone="clip-tiny-random"`
# for the paper's architecture.

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"exddv": "..."}
cache_dir = None  # paper: where features and results are cached
backbone = "detail-grid"  # demo: a handcrafted grid, or "clip-tiny-random"; paper: "clip"
dataset = "favc"  # where the clicks are: paper "exddv"; demo a synthetic domain
train = None  # the probe's training set (None: `dataset`, as the paper's ExDDV probe)
split = "test"
seed = 43  # probe seed
point = "pixel"  # map → point: "pixel" (the paper's code) or "cell" (argmax cell centre)
max_frames_per_video = None  # clicked frames used per video, evenly spread (None: all, as the paper)
thresholds = "unique"  # score axis: "unique" (every score, as the paper) or "quantiles"
n_thresholds = 8  # points on the score axis under the "quantiles" rule
face_seed = 0  # seed of the face baseline's choice among several faces (unseeded upstream)
n_bootstrap = 1000  # bootstrap resamples of the clicks
n_examples = 6  # example frames on the right
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from avdd.analysis import known_answers, spatial
from avdd.config import check_parameters, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import synthetic_label
from avdd.report.page import Page
from avdd.report.reference import reference

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, backbone=backbone, dataset=dataset,
                 train=train, split=split, seed=seed, point=point,
                 max_frames_per_video=max_frames_per_video, thresholds=thresholds,
                 n_thresholds=n_thresholds, face_seed=face_seed, n_bootstrap=n_bootstrap,
                 n_examples=n_examples, workers=workers, outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
train_set = dataset if train is None else train
prepare(prof, [backbone], list(dict.fromkeys([train_set, dataset])), workers=workers,
        progress=False)
NAMES = {"gradcam": "Grad-CAM", "patch": "patch probe"}
tables = {m: spatial.spatial_table(prof, backbone, dataset, train=train_set, split=split,
                                   seed=seed, method=m, point=point, face_seed=face_seed,
                                   max_frames_per_video=max_frames_per_video)
          for m in spatial.METHODS}
clicks = tables["gradcam"]
thetas = spatial.score_thresholds(clicks, thresholds, n=n_thresholds)
curves = {m: spatial.mae_vs_threshold(t, thetas, n_bootstrap=n_bootstrap, random_state=seed)
          for m, t in tables.items()}
baselines = {"frame centre": "err_frame_centre", "face centre": "err_face_centre"}
paper = reference("fig4_spatial_baselines").set_index("baseline")
# The examples on the right, with the backbone's geometry (cached: replotting builds no model).
examples = spatial.spatial_examples(prof, backbone, dataset, train=train_set, split=split,
                                    seed=seed, point=point,
                                    max_frames_per_video=max_frames_per_video,
                                    n_examples=n_examples)
grid, image_size = examples.grid, examples.image_size
checks = known_answers.spatial_checks(prof, tables, method=known_answers.spatial_check_method(
    backbone), n_bootstrap=n_bootstrap, seed=seed)
page = Page("fig4_spatial", prof, [backbone], outputs=outputs, seed=seed, train=train_set,
            test=f"{dataset}/{split}", point=point, max_frames_per_video=max_frames_per_video,
            thresholds=thresholds, face_seed=face_seed)

# %% tags=["remove-input"]
display(Markdown(page.notice()))
frames_used = ("every clicked frame" if max_frames_per_video is None
               else f"at most {max_frames_per_video} frames per video")
no_face = int((clicks.n_faces == 0).sum())
display(Markdown(
    f"{len(clicks)} clicks on {clicks.video_id.nunique()} fake {dataset.upper()} {split} videos "
    f"({frames_used}); probe trained on {train_set.upper()}; backbone `{backbone}`: "
    f"{image_size}² input, a {grid}×{grid} grid; point rule `{point}`; "
    f"{len(thetas)} thresholds ({thresholds}). Face baseline: {no_face} of {len(clicks)} "
    "clicks are on frames without a detected face (frame centre used)."))
if prof.synthetic:
    display(Markdown(
        f"```{{note}}\nThe demo's clicks are the centres of the manipulated regions and its "
        "face boxes the benchmark's own (one face per frame; no detector runs on the cartoon "
        f"faces); the maths is the paper's. The demo backbone's {grid}×{grid} grid is "
        f"coarse (each cell {1 / grid:.2f} of the frame wide); the paper's ViT-L/14 has a "
        "16×16 grid. Random or handcrafted weights say nothing of what a pretrained CLIP "
        "attends to. In the synthetic "
        "face swaps the manipulated region's centre *is* the face centre, which makes the "
        "face-centre baseline almost exact for them, and their mouth is re-drawn inside the "
        "swapped face, a second region the click does not mark (the table by manipulation "
        "below).\n```"))

# %% [markdown]
# ## Known answers
# What the synthetic benchmark plants by construction, what a working analysis must then
# show, and whether it does (`avdd.analysis.known_answers`; the expectations follow from how
# the benchmark is built, never from the paper). On real data nothing is known in advance.

# %% tags=["remove-input"]
page.checks(checks)

# %% [markdown]
# ## Error against the clicks, by minimum fakeness score
# The curve is the mean click error over the clicks of videos whose probe score is at
# least θ, for θ at every score (shaded: bootstrap 95 % interval over clicks). Horizontal
# lines: our baselines over all clicks (solid) and the paper's (dotted), with the ExDDV
# paper's click model, a constant the paper plots.

# %% tags=["remove-input"]
fig, ax = plt.subplots(figsize=(7, 4.2))
marker = "o-" if len(thetas) <= 20 else "-"  # every score: a line, as the paper's
for (m, curve), colour in zip(curves.items(), ("C3", "C0")):
    ax.plot(curve.threshold, curve.mae, marker, color=colour, label=f"ours: {NAMES[m]}")
    ax.fill_between(curve.threshold, curve.ci_low, curve.ci_high, color=colour, alpha=0.2)
for (name, col), colour in zip(baselines.items(), ("C2", "C1")):
    ax.axhline(clicks[col].mean(), color=colour, lw=1.5, label=f"ours: {name}")
    ax.axhline(paper.loc[name.replace("centre", "center"), "mae"], color=colour, ls=":",
               lw=1.5, label=f"paper: {name}")
ax.axhline(paper.loc["click model", "mae"], color="grey", ls="--",
           label="paper: click model (ExDDV)")
ax.set_xlabel("minimum video fakeness score θ (probe score s)")
ax.set_ylabel("mean click error (fraction of frame)")
ax.set_ylim(bottom=0)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_title("ours" + synthetic_label(prof, weights="random"), fontsize=10)
fig.tight_layout()
page.figure(fig, "error-vs-threshold")

# %% [markdown]
# ## Ours beside the paper's
# The paper's values are read off its figure (explanations, baselines) or taken from the
# ExDDV paper (the supervised click model); "min over θ" is the lowest point of the curve.

# %% tags=["remove-input"]


def summary(curve: pd.DataFrame) -> dict[str, float]:
    return {"explanations (all clicks)": curve.mae.iloc[0],
            "explanations (min over thresholds)": curve.mae.min()}


rows = {name.replace("centre", "center"): {m: clicks[col].mean() for m in NAMES}
        for name, col in baselines.items()}
for m, curve in curves.items():
    for key, value in summary(curve).items():
        rows.setdefault(key, {})[m] = value
ours = pd.DataFrame(rows).T.rename(columns={m: f"ours: {NAMES[m]}" for m in NAMES})
ours.loc[list(rows)[:2], "ours: patch probe"] = np.nan  # baselines do not depend on the map
side = pd.concat([paper["mae"].rename("paper"), ours], axis=1)
page.table(side.rename_axis("click error (fraction of frame)")
           .style.format(precision=3, na_rep="–"), "errors")
flat = int((tables["gradcam"].map_max <= 0).sum())
flat_point = ("every pixel ties: the frame's centre pixel" if point == "pixel"
              else "the first cell")
shown = curves["gradcam"].iloc[np.unique(np.linspace(0, len(thetas) - 1, 8).round().astype(int))]
display(Markdown(
    f"Grad-CAM maps with no positive cell ({flat_point}): {flat} of {len(clicks)}. "
    "Clicks kept at some thresholds: "
    + ", ".join(f"θ = {t:.2f}: {n} clicks / {v} videos" for t, n, v in
                zip(shown.threshold, shown.n, shown.n_videos))
    + "."))

# %% [markdown]
# ## By manipulation
# Mean click error of each map and of the baselines over each kind of fake (mean over a
# video's clicks, then over videos). A face swap pastes the donor's inner face and then
# re-draws the mouth inside it; its click is the face's centre, so a map that finds the
# re-drawn mouth is "wrong" there by about half the mouth's distance from the face centre.
# The known-answer check reads the fakes with one region only.

# %% tags=["remove-input"]
per_video = pd.concat(
    [t.groupby(["manipulation", "video_id"]).err_cam.mean().rename(f"ours: {NAMES[m]}")
     for m, t in tables.items()]
    + [clicks.groupby(["manipulation", "video_id"])[col].mean().rename(name)
       for name, col in baselines.items()], axis=1)
by_kind = per_video.groupby(level="manipulation").mean()
by_kind.insert(0, "videos", per_video.groupby(level="manipulation").size())
page.table(by_kind.rename_axis("manipulation").style.format(precision=3), "by-manipulation")

# %% [markdown]
# ## Examples
# The six most confidently fake videos (one frame each: the annotated frame with the highest
# frame logit). Green ×: the click; white +: the map's point; the map (drawn bilinearly)
# covers the centre crop CLIP sees (frame sides outside it are never looked at). Top row
# Grad-CAM, bottom row the patch probe.

# %% tags=["remove-input"]
n = max(len(examples.examples), 1)
fig, axes = plt.subplots(2, n, figsize=(2.3 * n, 5), squeeze=False)
for k, ex in enumerate(examples.examples):
    x0, y0, x1, y1 = ex.crop
    for r, m in enumerate(spatial.METHODS):
        ax = axes[r, k]
        ax.imshow(ex.image, extent=(0, 1, 1, 0))
        ax.imshow(ex.maps[m], extent=(x0, x1, y1, y0), cmap="jet", alpha=0.4,
                  interpolation="bilinear")
        ax.plot(*ex.click, "x", color="lime", ms=10, mew=2.5)
        ax.plot(*ex.points[m], "+", color="white", ms=12, mew=2.5)
        ax.set(xlim=(0, 1), ylim=(1, 0), xticks=[], yticks=[])
        ax.set_title(f"s = {ex.score:.2f}, err {ex.errors[m]:.2f}", fontsize=8)
        if k == 0:
            ax.set_ylabel(NAMES[m])
fig.tight_layout()
page.figure(fig, "examples")

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
