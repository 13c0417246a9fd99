"""AV1M-like domain: word-level local manipulations of audio, video or both.

As in AV-Deepfake1M, one or two short spans (1-2 words each) of a real clip are rewritten:
the audio of those words is replaced by other words spoken by a cloned voice (spliced in,
stretched to the original span, loudness-matched), and/or the mouth is re-rendered from the
new audio by a lip-sync "generator" and pasted back with its blending artefacts. Outside the
manipulated spans the fakes equal the real clip (up to compression). The split lists keep real
and fake_video_fake_audio files only, one file per clip folder; ``SynthConfig.av1m_kinds``
decides whether a folder holds that file alone (``"listed"``, the default: nothing reads the
other three, and writing them took ~30 % of the demo's synthesis) or all four AV1M file
kinds (``"all"``, as AV-Deepfake1M ships them). The listed files are the same either way: no
random draw of a listed file depends on the files left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avdd.synth.audio import noise_floor, rms_db, set_level, splice, stretch
from avdd.synth.common import (
    FPS,
    HOP,
    SR,
    Identity,
    annotation,
    clip_rng,
    clone_voice,
    merge,
    mouth_radii,
    plan_rng,
    sample_identity,
    sample_lead,
    sentence,
    speak,
    split_counts,
    tts_output,
    write,
    write_splits,
    youtube_id,
)
from avdd.synth.config import SynthConfig
from avdd.synth.face import mouth_opening, render
from avdd.synth.tts import Voice, random_words, synthesize
from avdd.synth.video import add_grain, lipsync_opening, paste, quantise, sample_patch_style

MODIFY = {  # file kind -> AV1M modify_type
    "real": "real", "fake_video_fake_audio": "both-modified", "fake_video_real_audio": "visual_modified",
    "real_video_fake_audio": "audio_modified",
}
AUDIO_MODELS = ("espeak-formant", "espeak-klatt")  # the two "TTS models" of the replaced words


def plan(cfg: SynthConfig) -> list[dict]:
    """One task per clip folder: identity, folder path, split and which file the split list uses."""
    rng = plan_rng(cfg.seed, "av1m")
    n_train, n_val, n_test = split_counts(cfg.count(cfg.av1m_folders, 6), cfg.av1m_split, minimum=2)
    id_numbers = iter(rng.permutation(10000))
    tasks: list[dict] = []
    for folder, n_folders, csv_splits in (("train", n_train + n_val, ["train"] * n_train + ["val"] * n_val),
                                          ("val", n_test, ["test"] * n_test)):
        rels: list[tuple[str, Identity]] = []
        while len(rels) < n_folders:  # identities with 1-3 videos of 1-3 clips, disjoint across folders
            identity = sample_identity(rng, f"id{next(id_numbers):05d}")
            for _ in range(rng.integers(1, 4)):
                video, clip = youtube_id(rng), int(rng.integers(1, 50))
                for _ in range(rng.integers(1, 4)):
                    clip += int(rng.integers(1, 30))
                    rels.append((f"{identity.name}/{video}/{clip:05d}", identity))
        rels = rels[:n_folders]
        splits = list(rng.permutation(csv_splits))
        for split in sorted(set(csv_splits)):  # balance real vs fake within each split list
            members = [i for i, s in enumerate(splits) if s == split]
            kinds = ["real", "fake_video_fake_audio"] * (len(members) // 2 + 1)
            for i, kind in zip(members, rng.permutation(kinds[: len(members)])):
                tasks.append({"domain": "av1m", "folder": folder, "rel": rels[i][0], "identity": rels[i][1],
                              "split": split, "csv_kind": str(kind)})
    for index, task in enumerate(tasks):
        task["index"] = index
    return tasks


def _word_spans(rng: np.random.Generator, n_words: int) -> list[tuple[int, int]]:
    """1-2 non-adjacent spans of 1-2 consecutive words (first, last word index)."""
    n_spans = 1 if n_words < 5 or rng.random() < 0.65 else 2
    spans: list[tuple[int, int]] = []
    for _ in range(50):
        if len(spans) == n_spans:
            break
        length = 1 if n_words < 3 or rng.random() < 0.6 else 2
        first = int(rng.integers(0, n_words - length + 1))
        last = first + length - 1
        if all(last < a - 1 or first > b + 1 for a, b in spans):
            spans.append((first, last))
    return sorted(spans)


def _replace_words(rng, take, spans, voice: Voice, model: str):
    """Splice new words spoken by ``voice`` through TTS model ``model`` (its output band,
    :func:`avdd.synth.common.tts_output`) over ``spans``; returns (audio, words, segments)."""
    audio, words, segments = take.audio.copy(), [list(w) for w in take.words], []
    for first, last in spans:
        start, end = take.words[first][1], take.words[last][2]
        n = int(round((end - start) * SR))
        new = random_words(rng, last - first + 1, exclude=[w[0] for w in take.words[first : last + 1]])
        speech = synthesize(new, voice, SR)
        a0, a1 = speech.words[0][1], speech.words[-1][2]
        ratio = (a1 - a0) * SR / n
        if not 0.75 <= ratio <= 1.33:  # re-speak at a rate that fits instead of a grotesque stretch
            voice_fit = Voice(voice.name, int(np.clip(voice.rate * ratio, 80, 400)), voice.pitch, voice.range)
            speech = synthesize(new, voice_fit, SR)
            a0, a1 = speech.words[0][1], speech.words[-1][2]
        piece = stretch(tts_output(speech.audio, model)[int(a0 * SR) : int(a1 * SR)], n)
        original = take.audio[int(start * SR) : int(start * SR) + n]
        audible = original[np.abs(original) > 0.01 * np.abs(original).max()]
        piece = set_level(piece, rms_db(audible) + rng.uniform(-2, 2))  # loudness-matched, as editors do
        audio = splice(audio, piece, int(round(start * SR)))
        scale = (end - start) / max(a1 - a0, 1e-6)
        for k, (w, a, b) in enumerate(speech.words):
            words[first + k] = [w, round(start + (a - a0) * scale, 4), round(start + (b - a0) * scale, 4)]
        segments.append([round(start, 4), round(end, 4)])
    return audio, words, segments


def _frames_of(segments, n_frames):
    """Frame indices overlapping any segment, and the frame-aligned segments they span."""
    bounds = [(int(np.floor(a * FPS)), min(n_frames, int(np.ceil(b * FPS)))) for a, b in segments]
    idx = sorted({k for first, stop in bounds for k in range(first, stop)})
    return np.asarray(idx, int), merge([[first / FPS, stop / FPS] for first, stop in bounds])


def _fakes(rng: np.random.Generator, take, identity: Identity, real_video: np.ndarray,
           size: int) -> tuple[dict, str, str]:
    """Render the manipulation of one clip: the replaced words and the re-drawn mouth.

    Returns ``(variants, audio_model, fake_voice_id)``, ``variants`` mapping each fake file kind
    to ``(video, audio, words, visual segments, audio segments, region)`` on the take's clock
    (``(T, H, W, 3)`` uint8 video, ``(T * HOP,)`` float32 audio, ``region`` ``(T, 2)`` mouth
    centres, NaN outside the re-drawn frames)."""
    audio_model = AUDIO_MODELS[rng.integers(len(AUDIO_MODELS))]
    fake_voice = clone_voice(rng, identity.voice, identity.gender)
    if audio_model == "espeak-klatt":  # the Klatt synthesiser with the clone's accent and prosody
        name = f"{fake_voice.name.split('+')[0]}+klatt{rng.choice(['', '2', '3', '4'])}"
        pitch = min(100, fake_voice.pitch + (30 if identity.gender == "women" else 0))  # Klatt voices are low
        fake_voice = Voice(name, fake_voice.rate, pitch, fake_voice.range)
    spans = _word_spans(rng, len(take.words))
    fake_audio, fake_words, audio_segments = _replace_words(rng, take, spans, fake_voice,
                                                           audio_model)

    n_frames, app = take.n_frames, identity.appearance
    vis_idx, visual_segments = _frames_of(audio_segments, n_frames)
    generated = lipsync_opening(mouth_opening(fake_audio, n_frames, SR, FPS), rng)
    gen = render(app, take.mover, generated[vis_idx], take.times[vis_idx], size).frames
    fake_video = real_video.copy()
    paste(fake_video, gen, vis_idx, take.clean.mouth_centre, mouth_radii(app, size),
          sample_patch_style(rng, "lipsync"), rng)

    region = np.full((n_frames, 2), np.nan)
    region[vis_idx] = take.clean.mouth_centre[vis_idx]
    variants = {
        "fake_video_fake_audio": (fake_video, fake_audio, fake_words, visual_segments, audio_segments, region),
        "fake_video_real_audio": (fake_video, take.audio, take.words, visual_segments, [], region),
        "real_video_fake_audio": (real_video, fake_audio, fake_words, [], audio_segments, None),
    }
    return variants, audio_model, fake_voice.id


def render_task(task: dict, cfg: SynthConfig, root: Path) -> list[dict]:
    """Write the files of one clip folder (all four kinds, or the listed one: ``av1m_kinds``);
    returns one record per file:
    ``{"metadata": AV1M entry, "annotation": synth annotation, "folder", "split"}``."""
    rng = clip_rng(cfg.seed, "av1m", task["index"])
    identity: Identity = task["identity"]
    app, size = identity.appearance, cfg.frame_size
    take = speak(rng, cfg, identity, sentence(rng, cfg, identity.voice))
    real_video = add_grain(take.clean.frames, rng, identity.noise)  # the clean frames are not needed again
    kinds = tuple(MODIFY) if cfg.av1m_kinds == "all" else (task["csv_kind"],)
    variants = {"real": (real_video, take.audio, take.words, [], [], None)}
    audio_model = fake_voice_id = None
    if kinds != ("real",):  # the real file draws nothing more: a folder of it renders no fake
        fakes, audio_model, fake_voice_id = _fakes(rng, take, identity, real_video, size)
        variants.update(fakes)

    records, quantised = [], {}  # the real and the fake video are each quantised once
    for kind in MODIFY:  # in kind order: each fake draws its leading silence in turn
        if kind not in kinds:
            continue
        video, audio, words, vis, aud, reg = variants[kind]
        lead = 0.0 if kind == "real" else sample_lead(rng, cfg, "av1m")
        mouth, box = take.clean.mouth_centre, take.clean.face_box
        if lead:  # prepend near-silence with a closed, still mouth (frames before the take's start)
            n_lead = round(lead * FPS)
            times = -lead + np.arange(n_lead) / FPS
            pre = render(app, take.mover, np.zeros(n_lead, np.float32), times, size)
            frames = quantise(np.concatenate([add_grain(pre.frames, rng, identity.noise), video]))
            audio = np.concatenate([noise_floor(rng, n_lead * HOP, take.floor_db), audio])
            mouth, box = np.concatenate([pre.mouth_centre, mouth]), np.concatenate([pre.face_box, box])
            reg = None if reg is None else np.concatenate([np.full((n_lead, 2), np.nan), reg])
        else:
            which = "real" if video is real_video else "fake"
            if which not in quantised:
                quantised[which] = quantise(video)
            frames = quantised[which]
        shift = lambda segs: [[round(a + lead, 4), round(b + lead, 4)] for a, b in segs]  # noqa: E731
        vis, aud = shift(vis), shift(aud)
        words = [[w, round(a + lead, 4), round(b + lead, 4)] for w, a, b in words]
        rel = f"{task['rel']}/{kind}.mp4"
        write(root / "av1m" / task["folder"] / rel, frames, audio, cfg)
        fake_segments = merge(vis + aud)
        metadata = {
            "file": rel, "original": None if kind == "real" else f"{task['rel']}/real.mp4",
            "split": task["folder"], "modify_type": MODIFY[kind],
            "audio_model": None if kind == "real" else audio_model,
            "fake_segments": fake_segments, "visual_fake_segments": vis, "audio_fake_segments": aud,
            "video_frames": int(len(frames)), "audio_frames": int(len(audio)),
        }
        split = task["split"] if kind == task["csv_kind"] else None
        note = annotation(rel, int(kind != "real"), identity, identity.voice, MODIFY[kind], words, lead,
                          fake_segments, mouth, box, reg, (size, size), subset=task["folder"],
                          split=split, fake_voice=fake_voice_id if aud else None)
        records.append({"metadata": metadata, "annotation": note, "folder": task["folder"],
                        "split": split})
    return records


def finalise(records: list[dict], cfg: SynthConfig, root: Path) -> None:
    """Write ``{train,val}_metadata.json`` (AV1M schema) and the split lists."""
    folder = root / "av1m"
    for subset in ("train", "val"):
        entries = [r["metadata"] for r in records if r["folder"] == subset]
        with open(folder / f"{subset}_metadata.json", "w") as f:
            json.dump(entries, f)
    listed = [r for r in records if r["split"]]
    write_splits(folder, [(r["split"], r["annotation"]["path"], r["annotation"]["label"]) for r in listed])
