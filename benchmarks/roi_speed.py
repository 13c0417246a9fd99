"""How long does the mouth-ROI pipeline take per frame on the CPU? Prints a small table.

    python benchmarks/roi_speed.py                      # 3 clips of ~3 s, 128 px frames
    python benchmarks/roi_speed.py --size 224 --clips 2 --detector-frames 10

Clips are rendered by the synthetic benchmark's face renderer (avdd.synth), with their
annotations. Rows:

* one per landmark source that is installed (synthetic always; dlib and mediapipe when their
  extras are): landmarks of every frame (detectors on the first ``--detector-frames`` frames
  of each clip only, to stay within ~2 minutes);
* ``align + crop``: interpolation, smoothing, similarity, warp and 96 x 96 crop, from given
  landmarks (``avdd.roi.align.mouth_rois``);
* ``lip_inputs (avhubert)``: the whole entry point from a decoded clip with synthetic landmarks
  (ROIs + 88 x 88 normalisation + filterbank audio), per video frame.

Single process, single thread for numpy / the detectors (``OMP_NUM_THREADS=1`` is set before
they load), the setting of one extraction worker.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one extraction worker's share of the CPU

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from avdd.backbones.layers.lip_inputs import lip_inputs
from avdd.media import Clip  # noqa: E402
from avdd.roi.align import mouth_rois
from avdd.roi.landmarks import get_landmark_source  # noqa: E402
from avdd.roi.regions import Roi  # noqa: E402
from avdd.synth.common import sample_identity, speak  # noqa: E402
from avdd.synth.config import SynthConfig  # noqa: E402
from avdd.synth.tts import random_words  # noqa: E402
from avdd.synth.video import add_grain, quantise  # noqa: E402


def make_clips(n: int, size: int, seconds: float, seed: int) -> list[tuple[Clip, Roi]]:
    """``n`` real synthetic clips (face + voice) of ~``seconds`` s with their annotations."""
    cfg = SynthConfig(frame_size=size, min_duration=seconds, max_duration=seconds)
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        identity = sample_identity(rng, f"id{i:05d}")
        take = speak(rng, cfg, identity, random_words(rng, max(2, round(seconds * 2.7))), size=size)
        video = quantise(add_grain(take.clean.frames, rng, identity.noise))
        roi = Roi(mouth_centre=take.clean.mouth_centre, face_box=take.clean.face_box)
        out.append((Clip(video=video, audio=take.audio.astype(np.float32)), roi))
    return out


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--size", type=int, default=128, help="frame side in px (synthetic default 128)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--detector-frames", type=int, default=25, help="frames per clip for dlib/mediapipe")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    clips = make_clips(args.clips, args.size, args.seconds, args.seed)
    n_frames = sum(c.num_frames for c, _ in clips)
    print(f"{args.clips} synthetic clips, {n_frames} frames of {args.size}x{args.size} px, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n")
    rows = []  # (step, frames, seconds, note)

    sources = ["synthetic"]
    if importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"):
        sources.append("dlib")
    else:
        print('dlib: not installed (pip install "avdd[dlib]"), skipped')
    if importlib.util.find_spec("mediapipe"):
        sources.append("mediapipe")
    else:
        print('mediapipe: not installed (pip install "avdd[mediapipe]"), skipped')

    landmarks = {}
    for name in sources:
        total, frames, missing = 0.0, 0, 0
        for i, (clip, roi) in enumerate(clips):
            video = clip.video if name == "synthetic" else clip.video[: args.detector_frames]
            source, load = timed(get_landmark_source, name, roi)
            lms, seconds = timed(source, video)
            total, frames = total + seconds, frames + len(video)
            missing += int(np.isnan(lms).any(axis=(1, 2)).sum())
            if i == 0:
                rows.append((f"{name}: load model", 1, load, "once per process"))
            landmarks.setdefault(name, []).append(lms)
        rows.append((f"{name}: landmarks", frames, total, f"{missing} frames without a face"))

    for name, per_clip in landmarks.items():
        total, frames, fallbacks = 0.0, 0, 0
        for (clip, _), lms in zip(clips, per_clip, strict=True):
            rois, seconds = timed(mouth_rois, clip.video[: len(lms)], lms)
            total, frames, fallbacks = total + seconds, frames + len(lms), fallbacks + rois.fallback
        rows.append((f"align + crop ({name} landmarks)", frames, total, f"{fallbacks} clips fell back"))

    total = 0.0
    for clip, roi in clips:
        _, seconds = timed(lambda c=clip, r=roi: lip_inputs(c, r, audio="avhubert"))
        total += seconds
    rows.append(("lip_inputs (avhubert), synthetic", n_frames, total, "ROIs + video + audio inputs"))

    print(f"\n{'step':<40} {'frames':>7} {'ms/frame':>9}  note")
    for step, frames, seconds, note in rows:
        print(f"{step:<40} {frames:>7} {1000 * seconds / frames:>9.2f}  {note}")


if __name__ == "__main__":
    main()
