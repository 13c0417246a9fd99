"""Paths and profiles: where data, features and results live, in one place.

Two profiles share one code path (DESIGN.md):

- ``demo``: the synthetic benchmark (generated on first use) and handcrafted / tiny
  random-weight backbones; runs anywhere, offline, on CPU.
- ``paper``: the real datasets under user-supplied roots and pretrained backbones.

Nothing here holds an absolute path: the home folder comes from ``$AVDD_HOME`` or defaults to
``./.avdd`` under the working directory (git-ignored in the repository).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The four datasets of the paper's Table 2, in the order the paper lists them.
DATASETS: tuple[str, ...] = ("av1m", "favc", "avlips", "dfe")

#: The splits each dataset provides (AVLips is a test-only set).
SPLITS: dict[str, tuple[str, ...]] = {
    "av1m": ("train", "val", "test"),
    "favc": ("train", "val", "test"),
    "avlips": ("test",),
    "dfe": ("train", "val", "test"),
    "exddv": ("train", "val", "test"),  # real data only (see EXTRA_DATASETS)
}

#: Real-only splits that train Table 4's anomaly detectors on the paper profile: AVH-Align's
#: 45,000 / 5,000 real AV1M videos (``av1m_metadata/{train,val}_metadata.csv`` of github
#: bit-ml/AVH-Align; both drawn from AV1M's official ``train`` folder; they hold every real
#: video of the probe's train and val lists and none of its test list). Kept out of ``SPLITS``
#: so that the demo and every other page neither need nor extract them.
REAL_ONLY_SPLITS: dict[str, tuple[str, ...]] = {"av1m": ("real_train", "real_val")}

#: Size of the demo profile's synthetic benchmark (a multiplier of the generator's default
#: counts, `avdd synth --scale`): half the default (~1,200 clips) keeps the whole demo book,
#: every table and figure with fourteen backbones, within ten minutes on 2 cores.
DEMO_SCALE = 0.5

#: Version of the synthetic benchmark's construction (:mod:`avdd.synth`), part of the demo
#: data folder's name, so that a benchmark built by other code is never read as this one and
#: its feature stores and results (kept under the same folder) go with it. 2: cloned speech
#: carries its TTS model's bandwidth (``avdd.synth.common.CLONE_RATES``). 3: an AV1M clip
#: folder holds only the file of the split lists (``SynthConfig.av1m_kinds``; those files are
#: version 2's, byte for byte).
BENCHMARK_VERSION = 3

#: The epoch cap of the study's linear probe on the paper's data: the official recipe's 100.
PAPER_PROBE_EPOCHS = 100
#: ... and on the synthetic benchmark. The official cap counts epochs, but the paper's train
#: sets are 100-300 times the demo's (AV1M 22,972 training videos against ~100 at the default
#: scale), so 100 demo epochs are that many times fewer Adam steps (batch 1): measured at scale 0.5,
#: 13 of Table 2's 26 AV1M / FAVC probes were still improving at epoch 100 (best epoch 99),
#: e.g. AV-HuBERT (A) tiny on AV1M 62.2 AUC, 72.7 when early stopping (patience 10) decides
#: at epoch 344. With 1,000 the validation loss stops the probe, as the recipe intends.
DEMO_PROBE_EPOCHS = 1000

#: Datasets used by one analysis only (ExDDV: click annotations for the spatial explanations,
#: Fig. 4). Real-data profiles accept them; the demo neither synthesises nor extracts them.
EXTRA_DATASETS: tuple[str, ...] = ("exddv",)

#: Backbones the demo profile runs: handcrafted features and tiny random-weight versions of
#: the real architectures (no weights to download; they exercise the same code paths), plus
#: one genuinely pretrained encoder beside its random-init twin (``ge2e``, a speaker encoder
#: trained for speaker verification, whose weights ship in the ``resemblyzer`` wheel; not
#: self-supervised), so that the demo can ask the paper's question of pretrained vs random
#: features for real. The pair ends the audio group. Audio, then visual, then audio-visual,
#: as the paper's Table 2. The one list: every notebook's ``backbones = None`` means it on
#: the demo profile, and the notebooks' smaller demo choices (Fig. 3's, Fig. 5's, the
#: appendix's) are drawn from it (tests/test_notebooks.py).
DEMO_BACKBONES: tuple[str, ...] = (
    "logmel", "wav2vec2-tiny-random", "avhubert-a-tiny-random", "ge2e", "ge2e-random",
    "mouth-pixels", "detail-grid", "clip-tiny-random", "videomae-tiny-random", "fsfm-tiny-random",
    "avhubert-v-tiny-random", "braven-v-tiny-random", "autoavsr-vsr-tiny-random",
    "avhubert-av-tiny-random",
)


def default_home() -> Path:
    """``$AVDD_HOME`` if set, else ``./.avdd`` (relative to the working directory)."""
    env = os.environ.get("AVDD_HOME")
    return Path(env).expanduser().resolve() if env else (Path.cwd() / ".avdd").resolve()


@dataclass(frozen=True)
class Profile:
    """Where one configuration of the study reads data and writes artifacts.

    Attributes:
        name: ``"demo"`` (synthetic data) or ``"paper"`` (real datasets).
        data_roots: dataset name -> root folder in that dataset's own layout.
        cache_dir: root of the feature stores and result files.
        synthetic: whether ``data_roots`` point at the synthetic benchmark (labelled so in
            every result and in the book).
        synth_seed: seed of the synthetic benchmark (demo only).
        synth_scale: size multiplier of the synthetic benchmark (demo only).
        splits_dirs: dataset name -> folder of its split lists (overrides the default).
        video_fps: the rate videos are decoded at for extraction: 25.0 (resampled by nearest
            timestamp; the demo, whose clips are 25 fps anyway) or None: every native frame,
            as the paper's extractors read them (none of them resamples; it matters for
            sources that are not 25 fps, e.g. Deepfake-Eval-2024's). Features of a video at
            another rate keep it in their ``fps`` meta.
        csv_files: dataset name -> the CSV file listing it (:mod:`avdd.datasets.csv`; its
            root is ``data_roots[name]``), for datasets given as one ``path,label`` CSV.
        probe_epochs: the epoch cap of the study's linear probe
            (:func:`avdd.analysis.probes.study_probe`): :data:`PAPER_PROBE_EPOCHS`, or
            :data:`DEMO_PROBE_EPOCHS` on the synthetic benchmark's much smaller sets.
    """

    name: str
    data_roots: dict[str, Path]
    cache_dir: Path
    synthetic: bool
    synth_seed: int = 0
    synth_scale: float = 1.0
    splits_dirs: dict[str, Path] = field(default_factory=dict)
    video_fps: float | None = 25.0
    csv_files: dict[str, Path] = field(default_factory=dict)
    probe_epochs: int = PAPER_PROBE_EPOCHS

    def splits_dir(self, dataset: str) -> Path:
        """Folder holding ``{train,val,test}_labels.csv`` for ``dataset``.

        The synthetic benchmark writes its own split lists next to its data; the paper profile
        uses the paper's split lists shipped with the package (``avdd/data/splits``) unless
        overridden.
        """
        if dataset in self.splits_dirs:
            return Path(self.splits_dirs[dataset])
        if self.synthetic:
            return Path(self.data_roots[dataset]) / "splits"
        return Path(__file__).parent / "data" / "splits" / dataset

    def store_dir(self, backbone: str, dataset: str, split: str) -> Path:
        """Feature store folder of one (backbone, dataset, split)."""
        return self.cache_dir / "features" / backbone / dataset / split


def demo_profile(
    home: Path | str | None = None, *, seed: int = 0, scale: float = DEMO_SCALE
) -> Profile:
    """The offline default: synthetic data under ``home/synth-v{version}-s{seed}-x{scale}``.

    Different benchmark versions (:data:`BENCHMARK_VERSION`), seeds and scales get different
    folders, so that they never overwrite each other.
    """
    home = Path(home).resolve() if home is not None else default_home()
    tag = f"synth-v{BENCHMARK_VERSION}-s{seed}-x{scale:g}"
    root = home / tag
    return Profile(
        name="demo",
        data_roots={d: root / "data" / d for d in DATASETS},
        cache_dir=root / "cache",
        synthetic=True,
        synth_seed=seed,
        synth_scale=scale,
        probe_epochs=DEMO_PROBE_EPOCHS,
    )


def paper_profile(data_roots: dict[str, Path | str], cache_dir: Path | str, *,
                  video_fps: float | None = None) -> Profile:
    """Real datasets: ``data_roots`` maps dataset name to its root in the official layout.
    Videos are decoded at their native rate (``video_fps=None``), as the paper's code did."""
    known = (*DATASETS, *EXTRA_DATASETS)
    unknown = set(data_roots) - set(known)
    if unknown:
        raise ValueError(f"unknown dataset(s) {sorted(unknown)}; expected some of {known}")
    return Profile(
        name="paper",
        data_roots={k: Path(v).expanduser().resolve() for k, v in data_roots.items()},
        cache_dir=Path(cache_dir).expanduser().resolve(),
        synthetic=False,
        video_fps=video_fps,
    )


# -- notebook parameters ---------------------------------------------------------------------
# papermill passes whatever a user typed (`-p seed abc`, a YAML list where a mapping belongs);
# each value is checked here, before anything runs, so that a wrong one is one line naming it
# rather than an error deep inside ("manual_seed expected a long", "unknown backbone 'l'").

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _spec_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(x, str) and x.strip() for x in v)


def _spec_map(v: Any) -> bool:
    return isinstance(v, dict) and len(v) > 0 and all(
        isinstance(k, str) and isinstance(x, str) and x.strip() for k, x in v.items())


_PATH = (lambda v: v is None or isinstance(v, (str, Path)) and str(v).strip() != "",
         "a folder path (a string) or None", '"/scratch/avdd"')
_INT = (_is_int, "a whole number", "43")
_STR = (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", '"av1m"')
_SPECS = (lambda v: v is None or _spec_list(v),
          "None or a non-empty list of backbone specs", '["logmel", "clip-tiny-random"]')

#: Every notebook parameter avdd knows: (check, what it must be, an example). Others are not
#: checked here (their notebook uses them directly).
PARAMETERS: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "profile": (lambda v: v in ("demo", "paper"), "'demo' or 'paper'", '"demo"'),
    "home": _PATH, "cache_dir": _PATH, "outputs": _PATH,
    "synth_seed": _INT, "seed": _INT, "face_seed": _INT,
    "workers": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1", "2"),
    "n_bootstrap": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0", "1000"),
    "n_examples": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0", "6"),
    "n_thresholds": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1", "8"),
    "max_frames_per_video": (lambda v: v is None or _is_int(v) and v >= 1,
                             "None or a whole number >= 1", "8"),
    "synth_scale": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                    and math.isfinite(v) and v > 0, "a finite number > 0", "0.5"),
    "data_roots": (lambda v: v is None or isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(x, (str, Path)) for k, x in v.items()),
        "None or a mapping dataset -> folder", '{"av1m": "/data/AV1M"}'),
    "backbones": _SPECS, "head_backbones": _SPECS, "silence_backbones": _SPECS,
    "backbone": _STR, "layer_backbone": _STR,
    "representations": (_spec_map, "a non-empty mapping label -> backbone spec",
                        '{"W2V2": "wav2vec2-tiny-random"}'),
    "rows": (lambda v: v is None or isinstance(v, dict) and len(v) > 0 and all(
        _spec_list(x) for x in v.values()), "None or a mapping label -> list of specs",
        '{"AV-H (A)": ["avhubert-a-tiny-random"]}'),
    "train": (lambda v: v is None or _STR[0](v), "a dataset name or None", '"av1m"'),
    "test": _STR, "dataset": _STR, "split": _STR,
    "ntp_params": (lambda v: isinstance(v, dict), "a mapping of keyword arguments", "{}"),
    "sync_params": (lambda v: isinstance(v, dict), "a mapping of keyword arguments", "{}"),
    "head_params": (lambda v: isinstance(v, dict), "a mapping of keyword arguments", "{}"),
}


def check_parameters(**values: Any) -> None:
    """Check notebook parameters against :data:`PARAMETERS`.

    Raises:
        ValueError: one line per wrong parameter, naming it, its value, what it must be and
            an example (unknown names are not checked).
    """
    bad = []
    for name, value in values.items():
        if name not in PARAMETERS:
            continue
        ok, what, example = PARAMETERS[name]
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            bad.append(f"parameter {name}={value!r} ({type(value).__name__}): expected "
                       f"{what}, e.g. {name} = {example}")
    if bad:
        raise ValueError("\n".join(bad))


def make_profile(profile: str = "demo", *, home: str | Path | None = None, synth_seed: int = 0,
                 synth_scale: float = DEMO_SCALE, data_roots: dict[str, str] | None = None,
                 cache_dir: str | Path | None = None) -> Profile:
    """Build a profile from notebook parameters (all plain values, as papermill passes them),
    each checked first (:func:`check_parameters`)."""
    check_parameters(profile=profile, home=home, synth_seed=synth_seed, synth_scale=synth_scale,
                     data_roots=data_roots, cache_dir=cache_dir)
    if profile == "demo":
        return demo_profile(home, seed=synth_seed, scale=synth_scale)
    if profile == "paper":
        if not data_roots or not cache_dir:
            raise ValueError("the paper profile needs data_roots={dataset: folder} and cache_dir")
        return paper_profile(data_roots, cache_dir)
    raise ValueError(f"unknown profile {profile!r}; expected 'demo' or 'paper'")


def default_backbones(profile: Profile, backbones: Sequence[str] | None = None, *,
                      parameter: str = "backbones") -> list[str]:
    """A notebook's backbone list: ``backbones`` when given, else :data:`DEMO_BACKBONES` on
    the demo profile. The paper profile has no default (its backbones need checkpoint paths):
    a ValueError names the parameter and the example profile that sets it."""
    check_parameters(backbones=backbones)
    if backbones is not None:
        return list(backbones)
    if profile.synthetic:
        return list(DEMO_BACKBONES)
    raise ValueError(f"the {profile.name} profile needs `{parameter}`: registry specs with their "
                     "checkpoints, e.g. the `backbones` list of profiles/paper.example.yaml "
                     "(`avdd backbones` lists the names)")
