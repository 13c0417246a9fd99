"""Shared pieces of the domain generators: identities, voices, speaking clips, annotations.

A *take* is one rendered utterance: a sentence spoken by a voice, placed on a timeline of
whole video frames (``HOP`` samples each) with a natural onset, a tail and a room-noise floor,
plus the face rendered from that audio. Domain modules edit takes into fakes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdd.synth.audio import band_limit, noise_floor, set_level
from avdd.synth.config import DOMAINS, SynthConfig
from avdd.synth.face import (
    Appearance,
    Mover,
    Render,
    mouth_opening,
    render,
    sample_appearance,
    sample_mover,
)
from avdd.synth.tts import Voice, random_words, synthesize

FPS = 25  # video frame rate of every synthetic clip (as the real datasets)
SR = 16000  # audio sample rate (Hz)
HOP = SR // FPS  # audio samples per video frame
ACCENTS = (  # English voices shipped with espeak-ng
    "en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = {  # espeak-ng voice variants by gender: formant (m*/f*) and Klatt synthesisers
    "men": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2", "klatt3", "david", "john"),
    "women": ("f1", "f2", "f3", "f4", "f5", "Annie", "belinda", "linda", "steph", "anika"),
}
ETHNICITIES = ("African", "Asian_East", "Asian_South", "Caucasian_American", "Caucasian_European")
GENDERS = ("men", "women")
#: Output rate (Hz) of each voice-cloning TTS model. A TTS model renders speech at the rate
#: its vocoder was trained at, so its output has nothing above half that rate, where a
#: microphone records the breath, friction and room noise of real speech up to 8 kHz; the
#: editor resamples it to 16 kHz and splices it in. That missing band is the benchmark's
#: stand-in for the vocoder fingerprint that sub-band spoofing detectors read in the high
#: frequencies of real TTS output; espeak-ng itself renders at 22,050 Hz, so the benchmark's
#: real speech keeps the whole band.
CLONE_RATES = {"espeak-formant": 11025, "espeak-klatt": 12000, "sv2tts-like": 11025}
WORDS_PER_SECOND = 2.7  # espeak-ng at 170 wpm speaks this vocabulary at ~2.7 words/s


@dataclass(frozen=True)
class Identity:
    """A person of the benchmark: name, demographic folder labels, look and voice.

    Attributes:
        name: dataset-style id, e.g. ``"id00042"``.
        gender: ``"men"`` or ``"women"`` (FAVC folder names).
        ethnicity: one of :data:`ETHNICITIES` (FAVC folder names).
        appearance: the cartoon face.
        voice: the espeak-ng speaker.
        level_db: speaking loudness (dBFS RMS over speech).
        noise: camera sensor noise (std, grey levels).
    """

    name: str
    gender: str
    ethnicity: str
    appearance: Appearance
    voice: Voice
    level_db: float
    noise: float


def clip_rng(seed: int, domain: str, index: int, purpose: int = 0) -> np.random.Generator:
    """Independent generator for one clip (``purpose`` separates streams within a clip), so
    results do not depend on which worker renders which clip, or in what order."""
    return np.random.default_rng([seed, DOMAINS.index(domain), index, purpose])


def sample_voice(rng: np.random.Generator, gender: str) -> Voice:
    """A random speaker of ``gender``: accent, variant, rate (wpm), pitch and range (0-100)."""
    accent = ACCENTS[rng.integers(len(ACCENTS))]
    variant = VARIANTS[gender][rng.integers(len(VARIANTS[gender]))]
    return Voice(f"{accent}+{variant}", rate=int(rng.integers(145, 196)), pitch=int(rng.integers(30, 71)),
                 range=int(rng.integers(30, 81)))


def tts_output(audio: np.ndarray, model: str) -> np.ndarray:
    """``audio (N,)`` at :data:`SR` as TTS model ``model`` (a key of :data:`CLONE_RATES`)
    outputs it: rendered at the model's rate, resampled back to :data:`SR`."""
    return band_limit(audio, SR, CLONE_RATES[model])


def clone_voice(rng: np.random.Generator, voice: Voice, gender: str) -> Voice:
    """An imitation of ``voice`` as a voice-cloning TTS makes it: same accent, another timbre
    of the same gender, pitch and rate close to the original."""
    accent = voice.name.split("+")[0]
    others = [v for v in VARIANTS[gender] if f"{accent}+{v}" != voice.name]
    return Voice(f"{accent}+{others[rng.integers(len(others))]}",
                 rate=int(np.clip(voice.rate + rng.integers(-15, 16), 130, 210)),
                 pitch=int(np.clip(voice.pitch + rng.integers(-10, 11), 0, 100)),
                 range=int(np.clip(voice.range + rng.integers(-10, 11), 0, 100)))


def sample_identity(rng: np.random.Generator, name: str, *, ethnicity: str | None = None,
                    gender: str | None = None) -> Identity:
    """A random identity (demographics drawn uniformly unless given)."""
    ethnicity = ethnicity or ETHNICITIES[rng.integers(len(ETHNICITIES))]
    gender = gender or GENDERS[rng.integers(2)]
    return Identity(name=name, gender=gender, ethnicity=ethnicity,
                    appearance=sample_appearance(rng, ethnicity=ethnicity, gender=gender),
                    voice=sample_voice(rng, gender), level_db=float(rng.uniform(-25, -19)),
                    noise=float(rng.uniform(0.8, 2.4)))


@dataclass(eq=False)
class Take:
    """One rendered utterance.

    Attributes:
        audio: ``(T * HOP,)`` float32 at :data:`SR` (speech + noise floor).
        words: ``[[word, start_s, end_s], ...]`` on this take's clock.
        opening: ``(T,)`` mouth opening per frame, from ``audio``.
        times: ``(T,)`` frame times (s) on the identity's motion clock.
        mover: head motion and blinks.
        clean: the face rendered from ``opening`` (no sensor noise), or None if not rendered.
        floor_db: noise-floor level (dBFS).
    """

    audio: np.ndarray
    words: list
    opening: np.ndarray
    times: np.ndarray
    mover: Mover
    clean: Render | None
    floor_db: float

    @property
    def n_frames(self) -> int:
        return len(self.times)


def sentence(rng: np.random.Generator, cfg: SynthConfig, voice: Voice) -> list[str]:
    """Random words for a clip of roughly U(min_duration, max_duration) seconds."""
    seconds = rng.uniform(cfg.min_duration, cfg.max_duration) - 0.35  # minus onset + tail
    n = max(2, round(seconds * WORDS_PER_SECOND * voice.rate / 170))
    return random_words(rng, n)


def speak(rng: np.random.Generator, cfg: SynthConfig, identity: Identity, words: list[str], *,
          voice: Voice | None = None, lead: float = 0.0, mover: Mover | None = None,
          size: int | None = None, draw: bool = True) -> Take:
    """Synthesise ``words`` and build a take (rendered unless ``draw`` is False).

    ``lead`` seconds of near-silence (with a closed, still mouth) come before the natural
    onset; the take is cut after the last word that ends before ``max_duration`` (+ lead), and
    a short one is padded with silence to ``min_duration`` (+ lead).
    """
    speech = synthesize(words, voice or identity.voice, SR)
    onset, tail = rng.uniform(0.0, 0.15) + lead, rng.uniform(0.1, 0.4)
    limit = cfg.max_duration + lead - onset - tail
    kept = [w for w in speech.words if w[2] <= limit] or list(speech.words[:1])
    end = min(len(speech.audio), int((kept[-1][2] + 0.03) * SR))
    audio_speech = set_level(speech.audio[:end], identity.level_db + rng.uniform(-1.5, 1.5))
    tail = max(tail, cfg.min_duration + lead - onset - end / SR)  # short sentences end in a longer pause
    n_frames = int(np.ceil((onset + end / SR + tail) * FPS))
    floor_db = float(rng.uniform(-68, -55))
    audio = noise_floor(rng, n_frames * HOP, floor_db)
    start = int(round(onset * SR))
    audio[start : start + end] += audio_speech
    words_out = [[w, round(start / SR + a, 4), round(start / SR + b, 4)] for w, a, b in kept]
    mover = mover or sample_mover(rng, span=n_frames / FPS + 1)
    times = np.arange(n_frames) / FPS
    opening = mouth_opening(audio, n_frames, SR, FPS)
    clean = render(identity.appearance, mover, opening, times, size or cfg.frame_size) if draw else None
    return Take(audio=np.clip(audio, -1, 1), words=words_out, opening=opening, times=times, mover=mover,
                clean=clean, floor_db=floor_db)


def mouth_radii(app: Appearance, size: int) -> tuple[float, float]:
    """Half-axes (px) of the region a lip-sync generator redraws: the widest, most open mouth
    plus 2 px (before the generator's own ``PatchStyle.scale``)."""
    rx, ry = app.face_rx * size, app.face_ry * size
    return app.mouth_w * rx + 2, (app.lip + app.open_max / 2) * ry + 2


def face_radii(app: Appearance, size: int) -> tuple[float, float]:
    """Half-axes (px) of the face ellipse."""
    return app.face_rx * size, app.face_ry * size


def sample_lead(rng: np.random.Generator, cfg: SynthConfig, domain: str) -> float:
    """Leading silence (s, whole frames) for a fake of ``domain``; 0 for most clips."""
    if domain not in cfg.leading_silence_domains or rng.random() >= cfg.leading_silence_fraction:
        return 0.0
    return round(rng.uniform(*cfg.leading_silence_range) * FPS) / FPS


def _r(values, digits):
    return [[round(float(v), digits) for v in row] for row in np.asarray(values)]


def annotation(path: str, label: int, identity: Identity, voice: Voice, manipulation: str, words: list,
               lead: float, fake_segments: list, mouth_centre: np.ndarray, face_box: np.ndarray,
               region: np.ndarray | None, size: tuple[int, int], **extra) -> dict:
    """One line of ``synth_annotations.jsonl`` (see docs/CONTRACTS.md).

    Args:
        mouth_centre: ``(T, 2)`` pixels; face_box: ``(T, 4)`` pixels.
        region: ``(T, 2)`` centre of the manipulated region in pixels, NaN where untouched;
            None when no frame is manipulated.
        size: frame (width, height) used to normalise ``region`` to [0, 1].
    """
    n = len(mouth_centre)
    if region is None:
        region_out = [None] * n
    else:
        norm = np.asarray(region, np.float64) / np.asarray(size, np.float64)
        region_out = [None if np.isnan(p).any() else [round(float(p[0]), 4), round(float(p[1]), 4)] for p in norm]
    return {
        "path": path, "label": int(label), "identity": identity.name, "voice": voice.id,
        "manipulation": manipulation, "words": words, "leading_silence": round(float(lead), 4),
        "fake_segments": [[round(float(a), 4), round(float(b), 4)] for a, b in fake_segments],
        "mouth_centre": _r(mouth_centre, 2), "face_box": _r(face_box, 2), "region_centre": region_out,
        **extra,
    }


def write(path, video: np.ndarray, audio: np.ndarray, cfg: SynthConfig, **options) -> None:
    """Encode one clip (H.264 ``cfg.crf``/``cfg.preset`` unless overridden + AAC 16 kHz).
    One encoder thread: the generator already runs one process per core."""
    from avdd.media import write_clip

    kwargs = {"crf": cfg.crf, "preset": cfg.preset, **options}
    write_clip(path, video, audio, fps=FPS, sample_rate=SR, threads=1, **kwargs)


def merge(segments: list) -> list:
    """Union of [start, end] intervals, sorted and merged."""
    out: list = []
    for a, b in sorted(segments):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def split_counts(n: int, shares: tuple[float, ...], minimum: int = 1) -> list[int]:
    """Split ``n`` items by ``shares`` (each part at least ``minimum``; the first absorbs rounding)."""
    parts = [max(minimum, round(n * s)) for s in shares]
    parts[0] = max(minimum, n - sum(parts[1:]))
    return parts


def youtube_id(rng: np.random.Generator) -> str:
    """An 11-character YouTube-like video id (VoxCeleb folder names)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=11))


def plan_rng(seed: int, domain: str) -> np.random.Generator:
    """Generator for a domain's plan (identities, splits, which clip gets what)."""
    return clip_rng(seed, domain, 10**9)


def write_table(folder: Path, metadata_name: str, records: list[dict]) -> None:
    """The domain's metadata CSV (one row per record's ``meta``) and its split lists."""
    with open(folder / metadata_name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]["meta"]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(r["meta"] for r in records)
    write_splits(folder, [(r["split"], r["annotation"]["path"], r["annotation"]["label"])
                          for r in records])


def write_splits(folder: Path, rows: list[tuple[str, str, int]]) -> None:
    """``folder/splits/<split>_labels.csv`` (``path,label``) for every split in ``rows``
    (``(split, path, label)`` tuples, in order)."""
    (folder / "splits").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        chosen = [(p, lab) for s, p, lab in rows if s == split]
        if not chosen:
            continue
        with open(folder / "splits" / f"{split}_labels.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["path", "label"])
            writer.writerows(chosen)
