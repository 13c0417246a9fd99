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
# # Figure 3: where in time do the probes fire?
#
# **Question.** For a video a probe is most sure is fake, which frames drive that decision,
# and are they the manipulated ones?
#
# **Method (paper).** For four representations, one AV1M test fake is shown with its
# per-frame score (the probe's logit `w·x_t/‖x_t‖ + b`) and probability `σ(2·score)` over
# time; the ground-truth fake segments are shaded. Audio models add log-mel spectrogram
# windows (16 kHz, n_fft 1024, hop 512, 128 mels), visual models three frames of one fake
# segment: the one before it, its most probable one, and one after it. The paper's videos,
# windows and segments are hand-picked (`avdd.analysis.timeline.PAPER_FIG3`, from its
# code); we use them wherever their features are in the store (the paper profile) and
# otherwise (the demo, whose synthetic videos are not the paper's) the top-scoring fake
# test video that has fake segments, its whole spectrogram, and the segment where the
# probability peaks highest.
#
# **The leading-silence shortcut.** AV1M and FAVC fakes often start with a silence that real
# videos lack (found with AVH-Align). An audio probe can learn to fire on it instead of on
# the manipulated words. The second part checks how often the top-scoring frame of a fake
# video lies in its leading silence, with and without trimming it.

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "..."}; AV1M's metadata holds the fake segments
cache_dir = None  # paper: where features and results are cached
# representations: {label: backbone spec}; labels are the paper's
representations = {
    "W2V2": "wav2vec2-tiny-random",
    "AV-H (A)": "avhubert-a-tiny-random",
    "CLIP": "clip-tiny-random",
    "AV-H (V)": "avhubert-v-tiny-random",
}
# audio backbones of the leading-silence check (lip backbones also get a trim_silence=true run)
silence_backbones = ["logmel", "wav2vec2-tiny-random", "avhubert-a-tiny-random"]
picks = "paper"  # "paper": the paper's hand-picked videos where their features exist; "top"
frame_rule = "segment"  # frames shown: "segment" (the paper's rule) or "peak" (around the peak)
frame_offsets = [-0.2, 0.0, 0.2]  # seconds around the peak of the frames shown, "peak" rule
train = "av1m"  # the probes' training set
test = "av1m"  # the test set with fake segments
seed = 43  # probe seed (the official code's)
n_bootstrap = 1000  # bootstrap resamples for the 95 % intervals
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

from avdd.analysis import known_answers, temporal, timeline
from avdd.config import check_parameters, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import intervals
from avdd.report.page import Page
from avdd.report.plots import plot_timeline

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, representations=representations,
                 silence_backbones=silence_backbones, picks=picks, frame_rule=frame_rule,
                 frame_offsets=frame_offsets, train=train, test=test, seed=seed,
                 n_bootstrap=n_bootstrap, workers=workers, outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
silence_specs = temporal.silence_specs(silence_backbones)
backbones = list(dict.fromkeys([*representations.values(), *silence_specs]))
prepare(prof, backbones, sorted({train, test}), workers=workers, progress=False)
chosen = timeline.PAPER_FIG3 if picks == "paper" else ()
timelines = {label: timeline.timeline(prof, spec, train=train, test=test, seed=seed,
                                      picks=chosen)
             for label, spec in representations.items()}
silence = temporal.leading_silence_table(prof, silence_backbones, train=train, test=test,
                                         seed=seed, n_bootstrap=n_bootstrap)
info = temporal.video_info(prof, test, "test")
# What the figures draw under the traces (decoded once, here: the plots only plot) and the
# table of their peaks.
media = {label: timeline.timeline_media(tl, frames=frame_rule, offsets_s=frame_offsets)
         for label, tl in timelines.items()}
peaks = pd.DataFrame([timeline.peak_summary(tl, info.loc[tl.video_id, "leading_silence_s"])
                      for tl in timelines.values()], index=list(timelines))
prepare(prof, [known_answers.REFERENCE_AUDIO], sorted({train, test}), workers=workers,
        progress=False)
checks = known_answers.silence_checks(prof, train=train, test=test, seed=seed,
                                      n_bootstrap=n_bootstrap)
page = Page("fig3_temporal", prof, backbones, outputs=outputs, seed=seed, train=train,
            test=test, picks=picks, frame_rule=frame_rule)

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
# ## One fake video per representation
# The paper's pick where its features exist, else the top-scoring fake (the table below
# says which). Red spans: ground-truth fake segments. Dotted green lines: the times of the
# frames shown (visual models). The paper's Fig. 3 is qualitative; its printed video
# scores (AV-H (A) 13.53, W2V2 16.54, AV-H (V) 9.54, CLIP 7.17) are for its own picks.

# %% tags=["remove-input"]
for label, tl in timelines.items():
    fig = plot_timeline(tl.times, tl.scores, segments=tl.fake_segments,
                        spectrogram_audio=media[label].audio,
                        spectrogram_windows=media[label].mel_windows, frames=media[label].frames,
                        title=f"{label} ({tl.backbone}, {tl.fps:g} Hz): {tl.video_id}")
    page.figure(fig, f"timeline {label}")
page.table(peaks.rename_axis("representation").rename(columns={
    "pick": "chosen as", "video_score": "video score", "probability": "P(fake)", "peak_s": "peak (s)",
    "peak_in_fake": "peak in a fake segment", "peak_in_silence": "peak in the leading silence",
    "leading_silence_s": "leading silence (s)"}).style.format(precision=2), "peaks")

# %% [markdown]
# ## The leading-silence check
# For each audio representation, over the fake test videos that start with silence: the
# share whose top-scoring frame lies in that silence ("top frame in silence"), beside the
# share a probe blind to silence would show ("chance": the mean fraction of silent frames).
# Each row is one ablation:
#
# - **none**: the probe's scores as they are;
# - **scores**: test-time trimming, the leading-silence frames are cut from the frame scores
#   before the peak and the video score are taken (same probe); its "top frame in silence"
#   is empty by construction, its AUCs say what is lost without the silence;
# - **frames**: the leading-silence frames are cut from every video's features, in the
#   training, validation and test splits, and the probe is retrained on what is left: the
#   silence cannot be one of its cues, so its AUCs say what the rest of the video carries;
# - **features** (lip backbones, `trim_silence=true`): the backbone drops the silence before
#   encoding, with AVH-Align's rule (first sample with |x| > 0.0005), and the probe is
#   retrained on trimmed features. Silence the rule does not find stays in.
#
# Classification AUC is AV1M → AV1M on all test videos, localisation AUC as in Fig. 2.
# "Silence ranked above the rest": the same per-video AUC with the leading silence as the
# segment, over the fakes that start with one: above 50 when the probe's frame scores mark
# the silence as fake, whether or not its single highest frame lies there.

# %% tags=["remove-input"]
table = pd.DataFrame({
    "representation": silence.base, "ablation": silence.ablation,
    "top frame in silence (%)": silence.silence_top,
    "chance (%)": silence.silence_chance,
    "videos with silence": silence.silence_videos,
    "top frame in a fake segment (%)": silence.top_in_fake,
    "silence ranked above the rest (AUC)": intervals(silence, "silence_loc_auc",
                                                     "silence_loc_ci_low",
                                                     "silence_loc_ci_high"),
    "classification AUC": intervals(silence, "auc", "auc_ci_low", "auc_ci_high"),
    "localisation AUC": intervals(silence, "loc_auc", "loc_ci_low", "loc_ci_high"),
}).set_index(["representation", "ablation"])
page.table(table.style.format(precision=1, na_rep="–"), "leading-silence")
display(Markdown("\n".join(f"- **{k}**: {v}" for k, v in temporal.ABLATIONS.items())))

# %% [markdown]
# ### Where the silence comes from
# The checks use the ground-truth leading silence where the data has one (the synthetic
# benchmark's annotation, `leading_silence_s`), else the silence measured on the decoded audio
# with AVH-Align's rule (`measured_silence_s`), which is also what `trim_silence=true`
# removes. When the two disagree, trimming by the rule leaves part of the silence in. (The
# synthetic benchmark's silence is a faint noise floor, whose peaks exceed the threshold.)

# %% tags=["remove-input"]
fakes = info[info.label == 1]
silent = fakes[fakes.leading_silence_s > 0]
page.table(silent[["leading_silence_s", "measured_silence_s"]].describe()
           .loc[["count", "mean", "min", "max"]].T.style.format(precision=3)
           .set_caption("Fake test videos that start with silence: silence in seconds"),
           "silence-sources")
display(Markdown(
    f"{int((fakes.leading_silence_s > 0).sum())} of {len(fakes)} fake test videos start with "
    f"silence; AVH-Align's rule finds more than one frame (40 ms) of it in "
    f"{int((fakes.measured_silence_s > 0.04).sum())}."))

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
