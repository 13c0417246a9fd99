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
# # Operating points across domains
#
# **Question.** A detector is used at a threshold: a video is called fake when its score is
# at or above it. An AUC says how well a probe *ranks* videos, not where that threshold
# should be, and users of deepfake detectors report that a released model "always says fake"
# on their own videos. If the threshold is chosen where the probe was trained, how often is
# it right on each of Table 2's test sets, and are its probabilities calibrated there?
#
# **Method.** Table 2's probes (the same cached probes: one per backbone and training set).
# On the training set's validation split we choose the threshold at the equal-error point
# (FPR = FNR, `avdd.analysis.operating_points.equal_error_rate`, the rule `avdd fit` stores
# with a probe) and fit a temperature T of the probability P(fake) = σ(2 s / T) (temperature
# scaling; the paper's link is T = 1). On each column's test set we measure at that threshold
# the accuracy, the TPR (fakes caught), the FPR (reals called fake) and the balanced accuracy
# (TPR + TNR) / 2, which is 50 % for any threshold that ignores the score whatever the class
# balance; beside them the test AUC and 1 − the test set's own EER, the balanced accuracy a
# threshold chosen *on the test set* would reach: the gap between the two is what moving the
# threshold across domains costs, apart from what the ranking loses. Calibration: the expected
# calibration error (ECE, 15 equal-width bins) of both links and reliability diagrams.
#
# **Beyond the paper.** The paper reports AUCs only: nothing on this page has a paper number
# to compare with. Intervals are 95 %: exact binomial (Clopper-Pearson) for accuracy, TPR and
# FPR, stratified bootstrap for the balanced accuracy. They hold the threshold fixed: its own
# uncertainty, from a small validation split, is not in them.

# %% tags=["parameters", "remove-cell"]
# papermill parameters: the only inputs of this notebook.
profile = "demo"  # "demo" (synthetic benchmark) or "paper" (real datasets)
home = None  # demo: folder for generated data and caches (None: $AVDD_HOME or ./.avdd)
synth_seed = 0  # demo: seed of the synthetic benchmark
synth_scale = 0.5  # demo: size multiplier of the synthetic benchmark (avdd.config.DEMO_SCALE)
data_roots = None  # paper: {"av1m": "...", "favc": "...", "avlips": "...", "dfe": "..."}
cache_dir = None  # paper: where features and results are cached
# backbones: registry names (`avdd backbones`), or "NAME:key=value", e.g. "wav2vec2:model=DIR";
# None: the demo's (avdd.config.DEMO_BACKBONES)
backbones = None
seed = 43  # probe seed (the official code's)
workers = 2  # decode/feature processes for extraction
# where the page writes its figures (PDF, PNG) and tables (CSV), each linked from it (the
# book passes generated/<page>_files, beside the executed notebook); None: nowhere
outputs = None

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from avdd.analysis import known_answers
from avdd.analysis.linear_probing import OOD_COLUMNS, TABLE2_COLUMNS
from avdd.analysis.thresholds import transfer_table
from avdd.config import check_parameters, default_backbones, make_profile
from avdd.features.prepare import prepare
from avdd.report.format import data_label, intervals, synthetic_label
from avdd.report.page import Page

# Every parameter checked first: a wrong one is one line naming it.
check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                 data_roots=data_roots, cache_dir=cache_dir, backbones=backbones, seed=seed,
                 workers=workers, outputs=outputs)
prof = make_profile(profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                    data_roots=data_roots, cache_dir=cache_dir)
backbones = default_backbones(prof, backbones)
prepare(prof, backbones, workers=workers, progress=False)
result = transfer_table(prof, backbones, seed=seed)
table, reliability = result["table"], result["reliability"]
checks = known_answers.operating_point_checks(prof, table)
page = Page("operating_points", prof, backbones, outputs=outputs, seed=seed)
IN_DOMAIN = [c for c, train, test in TABLE2_COLUMNS if train == test]

# %% tags=["remove-input"]
display(Markdown(page.notice(paper=False)))

# %% [markdown]
# ## Known answers
# What the synthetic benchmark's construction implies for thresholds, and whether it holds
# (`avdd.analysis.known_answers`; never from the paper). Out of domain nothing follows from
# the construction, so nothing is checked there. On real data nothing is known in advance.

# %% tags=["remove-input"]
page.checks(checks)

# %% [markdown]
# ## Rates at the source-validation threshold
# One row per backbone and Table 2 column (train → test). The threshold is the training set's
# validation EER point; the validation split's size is beside it, since a threshold chosen on
# a handful of reals can land anywhere between them.

# %% tags=["remove-input"]
shown = table.assign(
    pair=[f"{c}: {tr} → {te}" for c, tr, te in zip(table.column, table.train, table.test)],
    accuracy_=intervals(table, "accuracy", "accuracy_ci_low", "accuracy_ci_high"),
    tpr_=intervals(table, "tpr", "tpr_ci_low", "tpr_ci_high"),
    fpr_=intervals(table, "fpr", "fpr_ci_low", "fpr_ci_high"),
    balanced_=intervals(table, "balanced_accuracy", "balanced_accuracy_ci_low",
                        "balanced_accuracy_ci_high"),
    validation=[f"{r} real / {f} fake" for r, f in zip(table.val_n_real, table.val_n_fake)])
columns = {"accuracy_": "accuracy (%)", "tpr_": "TPR (%)", "fpr_": "FPR (%)",
           "balanced_": "balanced accuracy (%)", "oracle_balanced_accuracy":
           "balanced accuracy, test-chosen threshold (%)", "auc": "test AUC (%)",
           "threshold": "threshold (score)", "validation": "validation split"}
rates = shown.set_index(["backbone", "pair"])[list(columns)].rename(columns=columns)
page.table(rates.style.format(precision=1, na_rep="–")
           .format({"threshold (score)": "{:+.2f}"})
           .set_caption(data_label(prof) + ": rates at the training set's validation EER "
                        "threshold, 95 % intervals"), "rates")

# %% [markdown]
# ## How far the threshold travels
# For each backbone, the mean over the in-domain columns (A, C, G) and over the six
# out-of-domain ones (B, D, E, F, H, I) of the balanced accuracy at the source threshold, the
# balanced accuracy at a threshold chosen on the test set itself, and the AUC. The first two
# differ only by where the threshold sits; the last two by how well the scores rank.

# %% tags=["remove-input"]
kind = table["column"].map(lambda c: "in domain" if c in IN_DOMAIN else
                           "out of domain" if c in OOD_COLUMNS else "other")
means = (table.assign(kind=kind)
         .groupby(["backbone", "kind"], sort=False)[["balanced_accuracy",
                                                     "oracle_balanced_accuracy", "auc",
                                                     "ece", "ece_temperature"]]
         .mean().unstack("kind"))
means.columns = [f"{k}: {v}" for v, k in means.columns]
means = means.rename(columns=lambda c: c.replace("oracle_balanced_accuracy",
                                                 "test-chosen balanced acc.")
                     .replace("balanced_accuracy", "source-threshold balanced acc.")
                     .replace("ece_temperature", "ECE, σ(2s/T)").replace("ece", "ECE, σ(2s)")
                     .replace("auc", "AUC"))
means = means[sorted(means.columns, key=lambda c: (c.split(":")[0], c))]
page.table(means.loc[list(dict.fromkeys(table["backbone"]))].style.format(
    precision=2, na_rep="–").set_caption(data_label(prof) + ": means over columns (%; ECE "
                                         "as a fraction; the temperature's means skip the "
                                         "pairs where none could be fitted)"), "summary")

# %% tags=["remove-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
for ax, (label, cols) in zip(axes, (("in domain", IN_DOMAIN), ("out of domain", OOD_COLUMNS))):
    part = table[table["column"].isin(cols)]
    ax.scatter(part["oracle_balanced_accuracy"], part["balanced_accuracy"], s=18,
               color="C0", label=f"one backbone, one column{synthetic_label(prof)}")
    ax.plot([0, 100], [0, 100], color="0.5", lw=0.8,
            label="as good as the test set's own EER point")
    ax.axhline(50, color="0.7", lw=0.8, ls=":")
    ax.set_title(f"{label} ({', '.join(cols)})", fontsize=10)
    ax.set_xlabel("balanced accuracy, test-chosen threshold (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
axes[0].set_ylabel("balanced accuracy, source-validation threshold (%)")
axes[0].legend(fontsize=7, loc="upper left")
fig.tight_layout()
page.figure(fig, "source-vs-test-threshold")

# %% [markdown]
# ## Reliability diagrams
# The reference audio representation (the one the known answers read) in domain and out of
# domain, from each training set: in each bin of predicted P(fake), the share of test videos
# that are fake against the mean prediction; a calibrated probe lies on the diagonal. Marker
# area is the bin's count. The paper's link σ(2 s) and the temperature fitted on the source
# validation split (where it could be fitted).

# %% tags=["remove-input"]
shown_backbone = (known_answers.REFERENCE_AUDIO if known_answers.REFERENCE_AUDIO in backbones
                  else backbones[0])
pairs = [c for c in ("A", "D", "C", "B") if c in set(table["column"])]
fig, axes = plt.subplots(1, len(pairs), figsize=(3.4 * len(pairs), 3.6), squeeze=False,
                         sharey=True)
row_of = table.set_index(["backbone", "column"])
for ax, col in zip(axes[0], pairs):
    r = row_of.loc[(shown_backbone, col)]
    for link, colour, ece in (("paper", "C3", r["ece"]), ("temperature", "C0",
                                                         r["ece_temperature"])):
        bins = reliability[(reliability["backbone"] == shown_backbone)
                           & (reliability["column"] == col) & (reliability["link"] == link)
                           & (reliability["count"] > 0)]
        if bins.empty:
            continue
        name = "σ(2s)" if link == "paper" else f"σ(2s/T), T = {r['temperature']:.2f}"
        ax.plot(bins["mean_probability"], bins["fake_rate"], "-", color=colour, lw=1)
        ax.scatter(bins["mean_probability"], bins["fake_rate"], s=8 + 4 * bins["count"],
                   color=colour, alpha=0.7, label=f"{name}: ECE {ece:.2f}")
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8)
    where = "in domain" if col in IN_DOMAIN else "out of domain"
    ax.set_title(f"{col}: {r['train']} → {r['test']} ({where})", fontsize=9)
    ax.set_xlabel("mean predicted P(fake)")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="upper left")
axes[0, 0].set_ylabel("share of fakes" + synthetic_label(prof))
fig.suptitle(f"{shown_backbone}: reliability on the test sets", fontsize=10)
fig.tight_layout()
page.figure(fig, "reliability")

# %% [markdown]
# ## Summary

# %% tags=["remove-input"]
def mean_of(cols, value):
    return table.loc[table["column"].isin(cols), value].mean()


gap_in = mean_of(IN_DOMAIN, "oracle_balanced_accuracy") - mean_of(IN_DOMAIN, "balanced_accuracy")
gap_out = (mean_of(OOD_COLUMNS, "oracle_balanced_accuracy")
           - mean_of(OOD_COLUMNS, "balanced_accuracy"))
# The EER point balances TPR and TNR on validation; how far they drift apart on the test set
# is how the threshold moved, whatever the ranking: TPR high with TNR low is "always fake".
drift = (table["tpr"] - (100 - table["fpr"])).abs()
most_reals_fake = table["fpr"] >= 50
worst = table.loc[table["fpr"].idxmax()] if table["fpr"].notna().any() else None
fitted = table["temperature"].notna()
notes = table.loc[~fitted, "temperature_note"].value_counts()
calibrated = {k: table[fitted & table["column"].isin(cols)][["ece", "ece_temperature"]].mean()
              for k, cols in (("in", IN_DOMAIN), ("out", OOD_COLUMNS))}
display(Markdown(
    f"Over {table['backbone'].nunique()} backbones{synthetic_label(prof)}: moving from a "
    "threshold chosen on the test set to the training set's validation threshold costs "
    f"{gap_in:.1f} points of balanced accuracy in domain and {gap_out:.1f} out of domain, "
    f"on average; |TPR − TNR|, 0 at the validation EER point, averages "
    f"{drift[table['column'].isin(IN_DOMAIN)].mean():.1f} points in domain and "
    f"{drift[table['column'].isin(OOD_COLUMNS)].mean():.1f} out of domain, and "
    f"{int(most_reals_fake[table['column'].isin(IN_DOMAIN)].sum())} of "
    f"{int(table['column'].isin(IN_DOMAIN).sum())} in-domain pairs against "
    f"{int(most_reals_fake[table['column'].isin(OOD_COLUMNS)].sum())} of "
    f"{int(table['column'].isin(OOD_COLUMNS).sum())} out-of-domain ones call at least half "
    f"of the test reals fake. The mean AUC is {mean_of(IN_DOMAIN, 'auc'):.1f} in domain and "
    f"{mean_of(OOD_COLUMNS, 'auc'):.1f} out of domain. "
    + ("" if worst is None else
       f"The highest false positive rate is {worst['fpr']:.1f} % ({worst['backbone']}, "
       f"{worst['column']}: {worst['train']} → {worst['test']}), at a test AUC of "
       f"{worst['auc']:.1f}. ")
    + f"The mean ECE is {mean_of(IN_DOMAIN, 'ece'):.2f} in domain and "
    f"{mean_of(OOD_COLUMNS, 'ece'):.2f} out of domain with the paper's σ(2 s). A temperature "
    f"could be fitted for {int(fitted.sum())} of {len(table)} pairs"
    + ("" if notes.empty else " (not for " + ", ".join(f"{n} where the {k}" for k, n in
                                                      notes.items()) + ")")
    + "; on those pairs it moves the mean ECE from "
    f"{calibrated['in']['ece']:.2f} to {calibrated['in']['ece_temperature']:.2f} in domain "
    f"and from {calibrated['out']['ece']:.2f} to {calibrated['out']['ece_temperature']:.2f} "
    "out of domain."))

# %% [markdown]
# ## Provenance

# %% tags=["remove-input"]
display(Markdown(page.provenance()))
