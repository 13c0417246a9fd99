"""FAVC-like domain: whole-clip face swaps and voice swaps (FakeAVCeleb's FakeVideo-FakeAudio).

Every fake is manipulated over its whole length: the audio is a cloned voice (another
identity's timbre) and the mouth is re-driven from it by a lip-sync generator ("wav2lip"),
either on the identity's own face or after a face swap ("faceswap" pastes another identity's
inner face with a hard-ish seam and colour mismatch; "fsgan" is smoother and blurrier).
Identities are split disjointly into train / val / test, and most clips are fake (FAVC is
~96 % fake). Layout: ``<Category>/<ethnicity>/<gender>/<id>/<clip>.mp4`` + ``meta_data.csv``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from avdd.synth.common import (
    ETHNICITIES,
    FPS,
    GENDERS,
    Identity,
    annotation,
    clip_rng,
    clone_voice,
    face_radii,
    mouth_radii,
    plan_rng,
    sample_identity,
    sample_lead,
    sentence,
    speak,
    split_counts,
    tts_output,
    write,
    write_table,
    youtube_id,
)
from avdd.synth.config import SynthConfig
from avdd.synth.face import Appearance, render
from avdd.synth.video import add_grain, lipsync_opening, paste, quantise, sample_patch_style

REAL, FAKE = "RealVideo-RealAudio", "FakeVideo-FakeAudio"
METHODS = ("faceswap-wav2lip", "fsgan-wav2lip", "wav2lip")
AUDIO_MODEL = "sv2tts-like"  # FakeAVCeleb's voices come from one cloning TTS (SV2TTS)


def plan(cfg: SynthConfig) -> list[dict]:
    """One task per clip: one real clip per identity plus ``favc_fakes_per_identity`` fakes,
    each fake's face and voice donors taken from the same split."""
    rng = plan_rng(cfg.seed, "favc")
    n_ids = cfg.count(cfg.favc_identities, 3)
    cells = [(e, g) for e in ETHNICITIES for g in GENDERS]
    order = rng.permutation(len(cells))
    numbers = rng.choice(np.arange(1, 10000), size=n_ids, replace=False)
    identities = [sample_identity(rng, f"id{numbers[i]:05d}", ethnicity=cells[order[i % len(cells)]][0],
                                  gender=cells[order[i % len(cells)]][1]) for i in range(n_ids)]
    shuffled = list(rng.permutation(n_ids))
    tasks: list[dict] = []
    for split, n in zip(("train", "val", "test"), split_counts(n_ids, cfg.favc_split)):
        members = [identities[i] for i in shuffled[:n]]
        shuffled = shuffled[n:]
        for target in members:
            # Donors of face and voice: same split and gender, same ethnicity when possible (as in
            # FAVC); a split without such a donor borrows from all identities.
            everyone = [m for m in identities if m is not target]
            same_split = [m for m in members if m is not target]
            others = _donors(target, same_split) or _donors(target, everyone) or everyone
            base = f"{target.ethnicity}/{target.gender}/{target.name}"
            clip = int(rng.integers(1, 200))
            tasks.append({"domain": "favc", "identity": target, "split": split, "method": "real",
                          "rel": f"{REAL}/{base}/{clip:05d}.mp4", "source": None, "voice_from": None})
            for _ in range(cfg.favc_fakes_per_identity):
                method = METHODS[rng.integers(len(METHODS))]
                source = others[rng.integers(len(others))]
                voice_from = others[rng.integers(len(others))]
                swap = method.split("-")[0] if method != "wav2lip" else None
                donor = source if swap else voice_from
                name = f"{clip:05d}_{donor.name}_{youtube_id(rng)}" + (f"_{swap}_{target.name}" if swap else "")
                tasks.append({"domain": "favc", "identity": target, "split": split, "method": method,
                              "rel": f"{FAKE}/{base}/{name}_wavtolip.mp4", "source": source if swap else None,
                              "voice_from": voice_from})
                clip += int(rng.integers(1, 20))
    for index, task in enumerate(tasks):
        task["index"] = index
    return tasks


def _donors(target: Identity, pool: list[Identity]) -> list[Identity]:
    same = [m for m in pool if m.gender == target.gender]
    return [m for m in same if m.ethnicity == target.ethnicity] or same


def _donor_look(target: Appearance, donor: Appearance, rng: np.random.Generator) -> Appearance:
    """The donor's inner face on the target's head: the swap keeps the target's face outline
    and hair; colour transfer pulls the donor's skin part-way towards the target's."""
    k = rng.uniform(0.3, 0.8)
    skin = tuple(float(k * t + (1 - k) * d) for t, d in zip(target.skin, donor.skin))
    inner = {f: getattr(donor, f) for f in ("lip_colour", "iris", "eye_dx", "eye_y", "eye_r", "mouth_w", "lip",
                                            "open_max", "glasses")}
    return dataclasses.replace(target, skin=skin, **inner)


def _fake(rng: np.random.Generator, cfg: SynthConfig, task: dict):
    """A whole-clip fake: cloned voice, lip-synced mouth, optionally a swapped inner face.

    Returns (take, float frames, clean render of the target, voice, leading silence, region
    centres ``(T, 2)`` px).
    """
    target: Identity = task["identity"]
    app, size = target.appearance, cfg.frame_size
    donor: Identity = task["voice_from"]
    voice = clone_voice(rng, donor.voice, donor.gender)
    lead = sample_lead(rng, cfg, "favc")
    take = speak(rng, cfg, target, sentence(rng, cfg, voice), voice=voice, lead=lead, draw=False)
    # The whole soundtrack is the cloning TTS's output, silences included.
    take = dataclasses.replace(take, audio=tts_output(take.audio, AUDIO_MODEL))
    opening = lipsync_opening(take.opening, rng)  # the mouth follows the *fake* audio
    clean = render(app, take.mover, opening, take.times, size)
    video = add_grain(clean.frames.copy(), rng, target.noise)
    every, face = np.arange(take.n_frames), clean
    if task["source"] is not None:  # faceswap / fsgan: the donor's inner face on the target's head
        face = render(_donor_look(app, task["source"].appearance, rng), take.mover, opening, take.times, size)
        style = sample_patch_style(rng, task["method"].split("-")[0])
        paste(video, face.frames, every, clean.face_centre, face_radii(app, size), style, rng)
    lipsync = sample_patch_style(rng, "lipsync")  # wav2lip redraws the mouth of whichever face is shown
    paste(video, face.frames, every, clean.mouth_centre, mouth_radii(app, size), lipsync, rng)
    region = clean.face_centre if task["source"] is not None else clean.mouth_centre
    return take, video, clean, voice, lead, region


def render_task(task: dict, cfg: SynthConfig, root: Path) -> list[dict]:
    """Write one clip; returns ``[{"annotation", "meta", "split"}]``."""
    rng = clip_rng(cfg.seed, "favc", task["index"])
    target: Identity = task["identity"]
    label = int(task["method"] != "real")
    if label:
        take, video, clean, voice, lead, region = _fake(rng, cfg, task)
        segments = [[0.0, take.n_frames / FPS]]
    else:
        take = speak(rng, cfg, target, sentence(rng, cfg, target.voice))
        clean, voice, lead, region, segments = take.clean, target.voice, 0.0, None, []
        video = add_grain(clean.frames, rng, target.noise)
    write(root / "favc" / task["rel"], quantise(video), take.audio, cfg)
    size = cfg.frame_size
    note = annotation(task["rel"], label, target, voice, task["method"], take.words, lead, segments,
                      clean.mouth_centre, clean.face_box, region, (size, size), split=task["split"])
    meta = {
        "source": target.name, "target1": task["source"].name if task["source"] else "-",
        "target2": task["voice_from"].name if task["voice_from"] else "-", "method": task["method"],
        "category": "D" if label else "A", "type": FAKE if label else REAL, "race": target.ethnicity,
        "gender": target.gender, "path": task["rel"],
    }
    return [{"annotation": note, "meta": meta, "split": task["split"]}]


def finalise(records: list[dict], cfg: SynthConfig, root: Path) -> None:
    """Write ``meta_data.csv`` and ``splits/{train,val,test}_labels.csv``."""
    folder = root / "favc"
    write_table(folder, "meta_data.csv", records)

