"""Configuration of the synthetic benchmark (every knob, with its default and why)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from avdd.config import BENCHMARK_VERSION

__all__ = ["SynthConfig", "DOMAINS", "VERSION"]

DOMAINS = ("av1m", "favc", "avlips", "dfe")
VERSION = BENCHMARK_VERSION  # bump it (in avdd.config) when the same config would render other data


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of :func:`avdd.synth.generate`. The defaults give 1,164 split-list clips, one mp4
    file each (``av1m_kinds="all"``: 2,424 files). The demo's half scale (584 files) took 48 s
    on two idle CPU cores, 67 s with all four AV1M kinds (session 8).

    The split shares put more clips in the test sets than the paper's datasets do (40 % of
    AV1M and FAVC, 50 % of DFE): the demo is small, and its intervals are decided by its test
    sets; its probes need fewer clips than its AUCs do.

    Attributes:
        seed: everything (identities, sentences, manipulations) derives from it.
        scale: multiplies every clip/identity count below (0.02 gives a few clips per domain).
        frame_size: frame width = height in pixels (even; the real datasets' face crops are
            larger, but the pipeline only needs the structure).
        min_duration, max_duration: range of a clip's length in seconds, before any leading
            silence (real AV1M/FAVC clips are a few seconds long).
        leading_silence_fraction: share of fakes that start with near-silence and a still,
            closed mouth - the shortcut found in AV1M and FAVC fakes. 0 removes it.
        leading_silence_range: length of that silence in seconds (rounded to whole frames).
        leading_silence_domains: domains whose fakes get it (the shortcut was reported for
            AV1M and FAVC; AVLips and DFE-2024 fakes are not known to have it).
        av1m_folders: AV1M clip folders; each contributes one file (real or
            fake_video_fake_audio, balanced) to the split lists.
        av1m_kinds: which files a clip folder holds: ``"listed"`` (the one file of the split
            lists; no page reads the others) or ``"all"`` (the four AV1M file kinds, as
            AV-Deepfake1M ships them, e.g. to study audio-only or video-only fakes). The listed
            files are identical either way; ``"all"`` took 1.4x as long at the demo's scale.
        av1m_split: shares of train / val (both from ``train/``) / test (from ``val/``)
            (the paper's 22,972 / 2,527 / 5,133 are 75 / 8 / 17 %).
        favc_identities: FAVC identities, split identity-disjointly by ``favc_split``.
        favc_fakes_per_identity: fakes per identity next to one real clip each (FAVC is
            ~96 % fake; 8 gives ~89 %, with more identities, hence more real test clips).
        favc_split: identity shares of train / val / test (paper: 7,041 / 782 / 3,508 clips).
        avlips_clips: AVLips test clips; ``avlips_fake_fraction`` of them fake (paper: 55 %).
        dfe_clips: DFE-2024 face tracks; ``dfe_fake_fraction`` fake; split by source video
            with ``dfe_split`` (train / val / test).
        crf, preset: H.264 quality and x264 speed preset for every domain (DFE draws its own,
            harsher crf per source video); "ultrafast" keeps generation within budget.
        domains: which domains to write.
    """

    seed: int = 0
    scale: float = 1.0
    frame_size: int = 128
    min_duration: float = 2.0
    max_duration: float = 6.0
    leading_silence_fraction: float = 0.5
    leading_silence_range: tuple[float, float] = (0.2, 0.6)
    leading_silence_domains: tuple[str, ...] = ("av1m", "favc")
    av1m_folders: int = 420
    av1m_kinds: str = "listed"
    av1m_split: tuple[float, float, float] = (0.5, 0.1, 0.4)
    favc_identities: int = 36
    favc_fakes_per_identity: int = 8
    favc_split: tuple[float, float, float] = (0.5, 0.1, 0.4)
    avlips_clips: int = 160
    avlips_fake_fraction: float = 0.55
    dfe_clips: int = 260
    dfe_fake_fraction: float = 0.62
    dfe_split: tuple[float, float, float] = (0.4, 0.1, 0.5)
    crf: int = 23
    preset: str = "ultrafast"
    domains: tuple[str, ...] = DOMAINS

    def __post_init__(self):
        if self.frame_size % 2 or self.frame_size < 32:
            raise ValueError(f"frame_size must be even and >= 32, got {self.frame_size}")
        if not 0 < self.min_duration <= self.max_duration:
            raise ValueError(f"need 0 < min_duration <= max_duration, got {self.min_duration}, "
                             f"{self.max_duration}")
        if not 0 <= self.leading_silence_fraction <= 1:
            raise ValueError(f"leading_silence_fraction must be in [0, 1], got {self.leading_silence_fraction}")
        unknown = set(self.domains) - set(DOMAINS)
        if unknown:
            raise ValueError(f"unknown domains {sorted(unknown)}; choose from {DOMAINS}")
        if self.av1m_kinds not in ("listed", "all"):
            raise ValueError(f"av1m_kinds must be 'listed' or 'all', got {self.av1m_kinds!r}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    def count(self, n: int, minimum: int = 1) -> int:
        """``n`` scaled by :attr:`scale`, at least ``minimum``."""
        return max(minimum, round(n * self.scale))

    def to_json(self) -> dict:
        """JSON-ready dict (tuples become lists), as stored in ``synth_config.json``."""
        return json.loads(json.dumps(asdict(self)))
