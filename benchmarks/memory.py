"""Peak memory of ``avdd score`` and ``avdd extract`` against clip length and frame size.

    python benchmarks/memory.py --clips /tmp/memclips            # make the clips once, measure
    python benchmarks/memory.py --clips /tmp/memclips --before /path/to/old/checkout/src

Each case runs the command in a fresh subprocess and reads its peak resident set size
(``ru_maxrss`` of the finished child, via ``os.wait4``), with ``--backbone`` (default
``clip-tiny-random``, the issue's backbone: a frame-wise CLIP tower that resizes every frame
to 56 px; also a lip model, ``autoavsr-vsr-tiny-random``, an audio-visual one,
``avhubert-av-tiny-random``, FSFM's ``fsfm-tiny-random`` and ``mouth-pixels``). The
one-video dataset of ``extract`` carries synthetic-benchmark annotations (a fixed face box
and mouth centre per frame), so the lip models' landmarks and FSFM's face boxes are the
synthetic source's, not a detector's; ``score`` has no annotations and runs the detector
(BlazeFace for Auto-AVSR, dlib for AV-HuBERT and FSFM).
``--before``
points ``PYTHONPATH`` at another checkout's ``src`` to measure the old code path in the same
run; cases whose old peak would exceed ``--cap-gb`` run under that address-space limit
(``RLIMIT_AS``) and are reported as failing, with the old code's message.

Clips (made with PyAV on the first run, kept in ``--clips``): a moving colour gradient with a
440 Hz tone, 2 s / 60 s / 300 s at 96 × 96 and 640 × 360 (25 fps), and at 3840 × 2160 with a
**2 fps source** (encoding 300 s of 25 fps 4K takes far too long on 2 cores). Decoding
resamples every clip to 25 fps, so a 300 s 4K clip still yields 7,500 frames of 3840 × 2160
to the old code: what grows with length is the same.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"96x96": (96, 96, 25), "640x360": (640, 360, 25), "3840x2160": (3840, 2160, 2)}
DURATIONS = (2, 60, 300)
BACKBONES = ("clip-tiny-random", "autoavsr-vsr-tiny-random", "avhubert-av-tiny-random",
             "fsfm-tiny-random", "mouth-pixels")
#: Synthetic annotation of every frame (fractions of the frame): face box, mouth centre.
FACE_BOX, MOUTH = (0.3, 0.2, 0.7, 0.8), (0.5, 0.65)


def clip_path(root: Path, size: str, seconds: int) -> Path:
    return root / f"{size}-{seconds}s.mp4"


def make_clip(path: Path, width: int, height: int, fps: int, seconds: int) -> None:
    """Encode a gradient that moves every frame + a 440 Hz tone, frame by frame (never the
    whole clip in memory)."""
    import av

    tmp = path.with_suffix(".part.mp4")
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 2] = 128
    with av.open(str(tmp), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "30"}
        aus = c.add_stream("aac", rate=16000)
        aus.layout = "mono"
        step = 1024
        t_audio = 0
        for i in range(seconds * fps):
            frame[..., 0] = (x + 7 * i) % 256
            frame[..., 1] = (y + 3 * i) % 256
            for p in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
            while t_audio < (i + 1) / fps * 16000:
                n = np.arange(t_audio, t_audio + step)
                wav = (0.3 * np.sin(2 * np.pi * 440 * n / 16000)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(wav, format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, t_audio
                for p in aus.encode(af):
                    c.mux(p)
                t_audio += step
        for s in (vs, aus):
            for p in s.encode(None):
                c.mux(p)
    tmp.rename(path)


def make_clips(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for size, (w, h, fps) in SIZES.items():
        for seconds in DURATIONS:
            path = clip_path(root, size, seconds)
            if not path.exists():
                t0 = time.perf_counter()
                make_clip(path, w, h, fps, seconds)
                print(f"made {path} in {time.perf_counter() - t0:.0f} s", flush=True)


def make_probe(path: Path, backbone: str) -> Path:
    """A probe for ``backbone`` (weights fitted on random features: memory does not care)."""
    from avdd.backbones import describe
    from avdd.features.featureset import FeatureSet
    from avdd.heads.probe import LinearProbe
    from avdd.heads.probe_io import save_probe

    dim = describe(backbone).dim
    rng = np.random.default_rng(0)
    fs = FeatureSet.from_arrays([rng.standard_normal((10, dim)) for _ in range(6)], [0, 1] * 3)
    return save_probe(LinearProbe(max_epochs=2).fit(fs), path, backbone=backbone)


def dataset_root(root: Path, clip: Path, size: str, seconds: int) -> Path:
    """A one-video DFE root in its plain layout (``metadata.csv``: path,label,split), with a
    ``synth_annotations.jsonl`` record for the clip (:data:`FACE_BOX`, :data:`MOUTH`)."""
    import json

    ds = root / "datasets" / clip.stem
    ds.mkdir(parents=True, exist_ok=True)
    link = ds / "clip.mp4"
    if not link.exists():
        link.symlink_to(clip)
    (ds / "metadata.csv").write_text("path,label,split\nclip.mp4,0,test\n")
    w, h, _ = SIZES[size]
    n = seconds * 25  # frames at the decode rate
    box = [FACE_BOX[0] * w, FACE_BOX[1] * h, FACE_BOX[2] * w, FACE_BOX[3] * h]
    note = {"path": "clip.mp4", "label": 0, "face_box": [box] * n,
            "mouth_centre": [[MOUTH[0] * w, MOUTH[1] * h]] * n}
    (ds / "synth_annotations.jsonl").write_text(json.dumps(note) + "\n")
    return ds


def command(kind: str, clip: Path, probe: Path, work: Path, backbone: str, size: str,
            seconds: int) -> list[str]:
    if kind == "score":
        return ["score", str(clip), "--probe", str(probe), "--json", str(work / "out.json")]
    ds = dataset_root(work.parent.parent, clip, size, seconds)
    return ["extract", "--data-root", f"dfe={ds}", "--cache-dir", str(work / "cache"),
            "--dataset", "dfe", "--split", "test", "--backbone", backbone, "--workers", "1",
            "--strict"]


def peak_rss(src: str, args: list[str], cap_gb: float | None) -> tuple[float, int, str]:
    """Run ``python -m avdd ARGS`` with PYTHONPATH=src; (peak RSS MiB, exit code, the line
    of stderr that says why it failed)."""
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1"}

    def limit() -> None:
        if cap_gb:
            cap = int(cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "avdd", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()
                 and "video/s]" not in ln]
    # The failing video's own line says why (the last one only counts the failures).
    said = [ln for ln in lines if "FAILED:" in ln or "error:" in ln] or lines
    return usage.ru_maxrss / 1024, proc.returncode, said[-1] if said else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "memclips")
    ap.add_argument("--before", default=None,
                    help="src folder of the old code (e.g. a `git archive` of the base commit)")
    ap.add_argument("--after", default=str(Path(__file__).resolve().parents[1] / "src"))
    ap.add_argument("--cap-gb", type=float, default=6.0,
                    help="address-space limit for old-code cases projected above it")
    ap.add_argument("--command", action="append", choices=("score", "extract"))
    ap.add_argument("--size", action="append", choices=tuple(SIZES))
    ap.add_argument("--seconds", action="append", type=int)
    ap.add_argument("--backbone", action="append", choices=BACKBONES,
                    help="backbones to measure (default: clip-tiny-random)")
    args = ap.parse_args()
    make_clips(args.clips)
    work = args.clips / "runs"
    work.mkdir(exist_ok=True)
    codes = {"after": args.after, **({"before": args.before} if args.before else {})}
    print(f"{'backbone':24s} {'command':8s} {'clip':>6s} {'resolution':>10s} "
          + " ".join(f"{c + ' MiB':>14s}" for c in codes) + "  notes", flush=True)
    for backbone in args.backbone or BACKBONES[:1]:
        probe = make_probe(work / f"{backbone}.safetensors", backbone)
        measure(args, backbone, probe, codes, work)
    return 0


def measure(args, backbone: str, probe: Path, codes: dict[str, str], work: Path) -> None:
    """One table row per (command, size, length) of ``backbone``."""
    for kind in args.command or ("score", "extract"):
        for size, (w, h, _) in SIZES.items():
            if args.size and size not in args.size:
                continue
            for seconds in args.seconds or DURATIONS:
                clip = clip_path(args.clips, size, seconds)
                cells, notes = [], []
                # The old code holds the 25 fps RGB frames twice (a list, then np.stack); the
                # mouth crops add ~2 more copies (grey accumulators and padding).
                copies = 2 if backbone == BACKBONES[0] else 4
                projected = copies * seconds * 25 * w * h * 3 / 2**30
                for code, src in codes.items():
                    run = work / f"{backbone}-{kind}-{size}-{seconds}-{code}"
                    run.mkdir(exist_ok=True)
                    cap = args.cap_gb if code == "before" and projected > args.cap_gb else None
                    t0 = time.perf_counter()
                    mib, rc, last = peak_rss(
                        src, command(kind, clip, probe, run, backbone, size, seconds), cap)
                    dt = time.perf_counter() - t0
                    if rc == 0:
                        cells.append(f"{mib:14,.0f}")
                    else:
                        cells.append(f"{'> ' + format(args.cap_gb * 1024, ',.0f') if cap else 'failed':>14s}")
                        notes.append(f"{code}: exit {rc}: {last[:150]}")
                    notes.append(f"{code} {dt:.0f} s")
                    if cap:
                        notes.append(f"{code} projected {projected:.0f} GiB, run under "
                                     f"RLIMIT_AS {args.cap_gb:g} GiB")
                print(f"{backbone:24s} {kind:8s} {seconds:5d}s {size:>10s} " + " ".join(cells)
                      + "  " + "; ".join(notes), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-only"]:
        make_clips(Path(sys.argv[2]))
    else:
        sys.exit(main())
