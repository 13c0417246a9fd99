"""DFE-like domain: "in the wild" face tracks (Deepfake-Eval-2024).

Source videos are cut into 1-3 single-face tracks that share the video's label, split and
capture/upload chain: resolution, down-and-up scaling, colour grading, heavy H.264
compression, background noise, narrow-band audio, low AAC bit rates. Fakes use manipulation
kinds that appear in no other domain - face warping, frame-level blending with another face
(ghosting), granular pitch shifting, an audio time shift (desynchronisation) - alone or one
visual plus one audio kind. Layout: ``videos/<name>_track_NNN.mp4`` + ``metadata.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avdd.synth.audio import add_noise, band_limit, noise_floor, pitch_shift
from avdd.synth.common import (
    FPS,
    SR,
    annotation,
    clip_rng,
    merge,
    plan_rng,
    sample_identity,
    sample_lead,
    sentence,
    speak,
    split_counts,
    write,
    write_table,
)
from avdd.synth.config import SynthConfig
from avdd.synth.face import render, sample_mover
from avdd.synth.video import add_grain, face_warp, frame_blend, quantise, resize

VISUAL, AUDIO = ("face_warp", "frame_blend"), ("pitch_shift", "audio_time_shift")
SIZES = (0.75, 0.875, 1.0, 1.125, 1.25)  # output track sizes relative to frame_size (96-160 px by default)


def _capture(rng: np.random.Generator) -> dict:
    """One source video's recording and upload chain."""
    return {"size": float(rng.choice(SIZES)), "downup": float(rng.choice([1.0, 1.0, 0.66, 0.5])),
            "crf": int(rng.integers(23, 41)), "gamma": float(rng.uniform(0.8, 1.25)),
            "contrast": float(rng.uniform(0.85, 1.15)), "brightness": float(rng.uniform(-15, 15)),
            "snr": float(rng.uniform(8, 35)) if rng.random() < 0.7 else None,
            "noise_colour": str(rng.choice(["white", "pink"])), "narrowband": bool(rng.random() < 0.3),
            "audio_bitrate": int(rng.choice([24000, 32000, 64000]))}


def plan(cfg: SynthConfig) -> list[dict]:
    """Source videos (1-3 tracks each) split by video; labels balanced per split by
    ``dfe_fake_fraction``."""
    rng = plan_rng(cfg.seed, "dfe")
    n_tracks = cfg.count(cfg.dfe_clips, 6)
    videos: list[dict] = []
    while sum(v["tracks"] for v in videos) < n_tracks or len(videos) < 6:  # >= 2 videos per split
        videos.append({"name": f"{rng.integers(16**8):08x}", "tracks": int(rng.choice([1, 1, 2, 3])),
                       "capture": _capture(rng)})
    order = list(rng.permutation(len(videos)))
    tasks: list[dict] = []
    for split, n in zip(("train", "val", "test"), split_counts(len(videos), cfg.dfe_split, minimum=2)):
        chosen = [videos[i] for i in order[:n]]
        order = order[n:]
        n_fake = min(len(chosen) - 1, max(1, round(len(chosen) * cfg.dfe_fake_fraction)))  # both labels
        for video, label in zip(chosen, rng.permutation([1] * n_fake + [0] * (len(chosen) - n_fake))):
            kinds = _kinds(rng) if label else []
            for k in range(video["tracks"]):
                tasks.append({"domain": "dfe", "split": split, "label": int(label), "video": video["name"],
                              "rel": f"videos/{video['name']}_track_{k:03d}.mp4", "capture": video["capture"],
                              "identity": sample_identity(rng, f"{video['name']}_{k}"), "kinds": kinds})
    for index, task in enumerate(tasks):
        task["index"] = index
    return tasks


def _kinds(rng: np.random.Generator) -> list[str]:
    """One kind (70 %) or one visual plus one audio kind."""
    if rng.random() < 0.7:
        return [str(rng.choice(VISUAL + AUDIO))]
    return [str(rng.choice(VISUAL)), str(rng.choice(AUDIO))]


def _span(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Frames of a whole-clip (50 %) or 1-2.5 s manipulation."""
    if rng.random() < 0.5:
        return np.arange(n_frames)
    length = min(n_frames, int(rng.uniform(1.0, 2.5) * FPS))
    start = int(rng.integers(0, n_frames - length + 1))
    return np.arange(start, start + length)


def _time_shift(rng, audio, words, floor_db):
    """Delay (or advance) the soundtrack by 0.12-0.4 s; the gap is filled with room noise."""
    n = int(rng.uniform(0.12, 0.4) * SR) * (1 if rng.random() < 0.5 else -1)
    fill = noise_floor(rng, abs(n), floor_db)
    audio = np.concatenate([fill, audio[:-n]]) if n > 0 else np.concatenate([audio[-n:], fill])
    dur, dt = len(audio) / SR, n / SR
    words = [[w, round(a + dt, 4), round(b + dt, 4)] for w, a, b in words if 0 <= a + dt and b + dt <= dur]
    return audio, words


def render_task(task: dict, cfg: SynthConfig, root: Path) -> list[dict]:
    """Write one track; returns ``[{"annotation", "meta", "split"}]``."""
    rng = clip_rng(cfg.seed, "dfe", task["index"])
    identity, capture = task["identity"], task["capture"]
    out = int(round(cfg.frame_size * capture["size"] / 2)) * 2  # the track's frame size
    size = max(32, int(round(out * capture["downup"] / 2)) * 2)  # the camera's: low-res sources are upscaled
    lead = sample_lead(rng, cfg, "dfe") if task["label"] else 0.0
    take = speak(rng, cfg, identity, sentence(rng, cfg, identity.voice), lead=lead, size=size)
    clean, n_frames, duration = take.clean, take.n_frames, take.n_frames / FPS
    rx, ry = identity.appearance.face_rx * size, identity.appearance.face_ry * size
    video = add_grain(clean.frames, rng, identity.noise)
    audio, words = take.audio, take.words
    region, segments = np.full((n_frames, 2), np.nan), []
    for kind in task["kinds"]:
        if kind in VISUAL:
            idx = _span(rng, n_frames)
            if kind == "face_warp":
                strength = rng.uniform(1.5, 4) * size / 128  # px at this render size
                face_warp(video, idx, clean.face_centre, (1.05 * rx, 1.05 * ry), strength,
                          str(rng.choice(["bulge", "pinch", "stretch"])))
            else:
                ghost = sample_identity(rng, "ghost").appearance
                other = render(ghost, sample_mover(rng), take.opening[idx], take.times[idx], size).frames
                frame_blend(video, other, idx, rng.uniform(0.2, 0.45))
            region[idx] = clean.face_centre[idx]
            segments.append([idx[0] / FPS, (idx[-1] + 1) / FPS])
        elif kind == "pitch_shift":
            factor = rng.uniform(0.8, 0.9) if rng.random() < 0.5 else rng.uniform(1.12, 1.25)
            audio = pitch_shift(audio, factor, SR)
            segments.append([0.0, duration])
        else:
            audio, words = _time_shift(rng, audio, words, take.floor_db)
            segments.append([0.0, duration])
    video, audio = _degrade(video, audio, capture, out, rng)
    write(root / "dfe" / task["rel"], quantise(video), audio, cfg, crf=capture["crf"],
          audio_bitrate=capture["audio_bitrate"])
    scale = out / size
    manipulation = "+".join(task["kinds"]) or "real"
    region = region if segments else None  # normalised by the render size: the same after scaling
    note = annotation(task["rel"], task["label"], identity, identity.voice, manipulation, words, lead,
                      merge(segments), clean.mouth_centre * scale, clean.face_box * scale, region, (size, size),
                      split=task["split"])
    meta = {"path": task["rel"], "label": task["label"], "split": task["split"], "video": task["video"],
            "manipulation": manipulation, "identity": identity.name, "width": out, "height": out,
            "crf": capture["crf"]}
    return [{"annotation": note, "meta": meta, "split": task["split"]}]


def _degrade(video, audio, capture, out, rng):
    """Apply the source video's upload chain: scale to ``out`` px, grade colours, add noise
    and narrow-band the audio. Float frames and samples in and out."""
    video = resize(video, out, out) if video.shape[1] != out else video
    video = 255 * np.clip(video / 255, 0, 1) ** capture["gamma"] * capture["contrast"] + capture["brightness"]
    if capture["snr"] is not None:
        audio = add_noise(audio, rng, capture["snr"], capture["noise_colour"])
    if capture["narrowband"]:
        audio = band_limit(audio, SR)
    return video.astype(np.float32), audio


def finalise(records: list[dict], cfg: SynthConfig, root: Path) -> None:
    """Write ``metadata.csv`` and the split lists."""
    folder = root / "dfe"
    write_table(folder, "metadata.csv", records)
