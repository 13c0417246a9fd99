"""The synthetic benchmark: determinism, layouts and schemas, and ground truth that matches what
was rendered (decoded back from the written mp4 files)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from avdd.media import read_clip
from avdd.synth import SynthConfig, generate
from avdd.synth.tts import Voice, synthesize

# A few clips per domain, 2-4 s long: the default 2-6 s renders and decodes longer, and 2-4 s
# still gives AV1M fakes with more than one fake segment.
# All four AV1M file kinds: the construction tests below compare fakes with their real clip.
CONFIG = SynthConfig(seed=3, scale=0.02, favc_fakes_per_identity=3, max_duration=4.0, av1m_kinds="all")
FPS, SR, HOP = 25, 16000, 640
AV1M_KINDS = ("real", "fake_video_fake_audio", "fake_video_real_audio", "real_video_fake_audio")
ANNOTATION_KEYS = {"path", "label", "identity", "voice", "manipulation", "words", "leading_silence",
                   "fake_segments", "mouth_centre", "face_box", "region_centre"}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "bench", CONFIG, workers=2)


def _notes(root: Path, domain: str) -> list[dict]:
    return [json.loads(line) for line in (root / domain / "synth_annotations.jsonl").read_text().splitlines()]


def _split(root: Path, domain: str, split: str) -> list[tuple[str, int]]:
    with open(root / domain / "splits" / f"{split}_labels.csv") as f:
        return [(r["path"], int(float(r["label"]))) for r in csv.DictReader(f)]


def _file(root: Path, domain: str, note: dict) -> Path:
    subset = note.get("subset", "") if domain == "av1m" else ""  # AV1M paths are relative to train/ or val/
    return root / domain / subset / note["path"]


def _mouth_std(clip, centres: np.ndarray, half=(10, 8)) -> np.ndarray:
    """Per-frame grey-level std of the box around the mouth: large when the mouth is open."""
    out = []
    for frame, (x, y) in zip(clip.video, np.round(centres).astype(int)):
        out.append(frame[y - half[1] : y + half[1], x - half[0] : x + half[0]].mean(-1).std())
    return np.asarray(out)


def _frame_rms(audio: np.ndarray, n_frames: int) -> np.ndarray:
    padded = np.zeros(n_frames * HOP, np.float32)
    padded[: min(len(audio), len(padded))] = audio[: len(padded)]
    return np.sqrt((padded.reshape(n_frames, HOP) ** 2).mean(axis=1))


def test_tts_is_deterministic_and_timed():
    words = "the quiet river runs north".split()
    a, b = synthesize(words, Voice("en-us+f5", 160, 60, 40)), synthesize(words, Voice("en-us+f5", 160, 60, 40))
    assert np.array_equal(a.audio, b.audio) and a.words == b.words
    assert [w for w, _, _ in a.words] == words
    starts, ends = np.array([s for _, s, _ in a.words]), np.array([e for _, _, e in a.words])
    assert np.all(starts < ends) and np.all(np.diff(starts) > 0) and ends[-1] <= a.duration
    loud = lambda s, e: np.sqrt(np.mean(a.audio[int(s * SR) : int(e * SR)] ** 2))  # noqa: E731
    assert all(loud(s, e) > 0.01 for _, s, e in a.words)  # every word is audible where it is said


@pytest.mark.slow
def test_same_seed_same_benchmark(root, tmp_path):
    again = generate(tmp_path / "again", CONFIG, workers=1)  # another worker count, same output
    for domain in ("av1m", "favc", "avlips", "dfe"):
        names = ["synth_annotations.jsonl"] + [p.name for p in (root / domain / "splits").iterdir()]
        for name in names:
            sub = "" if name.endswith("jsonl") else "splits"
            assert (root / domain / sub / name).read_bytes() == (again / domain / sub / name).read_bytes(), name
    for name in ("av1m/train_metadata.json", "av1m/val_metadata.json", "favc/meta_data.csv", "dfe/metadata.csv"):
        assert (root / name).read_bytes() == (again / name).read_bytes(), name


def test_listed_av1m_files_are_the_same_as_with_all_kinds(root, tmp_path):
    """The default writes only the split lists' file of each AV1M folder, byte for byte the
    file the four-kind benchmark has (no draw of a listed file depends on the others)."""
    listed = generate(tmp_path / "listed", CONFIG, domains=("av1m",), av1m_kinds="listed", workers=2)
    written = sorted(p.relative_to(listed / "av1m") for p in (listed / "av1m").rglob("*.mp4"))
    in_lists = sorted(Path("train" if s != "test" else "val") / path
                      for s in ("train", "val", "test") for path, _ in _split(root, "av1m", s))
    assert written == in_lists
    for rel in written:
        assert (listed / "av1m" / rel).read_bytes() == (root / "av1m" / rel).read_bytes(), rel
    for name in ("splits/train_labels.csv", "splits/val_labels.csv", "splits/test_labels.csv"):
        assert (listed / "av1m" / name).read_bytes() == (root / "av1m" / name).read_bytes(), name
    notes = {n["path"]: n for n in _notes(root, "av1m") if n.get("split")}
    assert {n["path"]: n for n in _notes(listed, "av1m")} == notes
    for subset in ("train", "val"):
        full = json.loads((root / "av1m" / f"{subset}_metadata.json").read_text())
        kept = json.loads((listed / "av1m" / f"{subset}_metadata.json").read_text())
        assert kept == [e for e in full if Path(subset) / e["file"] in in_lists]


def test_resume_and_config_guard(root):
    stamp = (root / "synth_config.json").read_text()
    assert generate(root, CONFIG) == root and (root / "synth_config.json").read_text() == stamp
    assert json.loads(stamp)["config"]["seed"] == CONFIG.seed
    with pytest.raises(FileExistsError):
        generate(root, CONFIG, seed=CONFIG.seed + 1)


def test_av1m_layout_and_metadata(root):
    meta = {s: json.loads((root / "av1m" / f"{s}_metadata.json").read_text()) for s in ("train", "val")}
    for subset, entries in meta.items():
        folders = {Path(e["file"]).parent for e in entries}
        for folder in folders:
            for kind in AV1M_KINDS:
                assert (root / "av1m" / subset / folder / f"{kind}.mp4").is_file()
        for e in entries:
            assert set(e) == {"file", "original", "split", "modify_type", "audio_model", "fake_segments",
                              "visual_fake_segments", "audio_fake_segments", "video_frames", "audio_frames"}
            assert e["split"] == subset and e["audio_frames"] == e["video_frames"] * HOP
            kind = Path(e["file"]).stem
            assert (e["original"] is None) == (kind == "real")
            assert bool(e["visual_fake_segments"]) == kind.startswith("fake_video")
            assert bool(e["audio_fake_segments"]) == kind.endswith("fake_audio")
            for a, b in e["fake_segments"]:
                assert 0 <= a < b <= e["video_frames"] / FPS + 1e-6
    train, val, test = (_split(root, "av1m", s) for s in ("train", "val", "test"))
    assert not {p for p, _ in train} & {p for p, _ in val}
    for rows, subset in ((train, "train"), (val, "train"), (test, "val")):
        assert {lab for _, lab in rows} == {0, 1}  # both classes, roughly balanced
        assert abs(sum(lab for _, lab in rows) - len(rows) / 2) <= 1
        for path, label in rows:  # the paper's evaluation rule: real, or audio AND video fake
            assert Path(path).name == ("fake_video_fake_audio.mp4" if label else "real.mp4")
            assert (root / "av1m" / subset / path).is_file()


def test_favc_layout(root):
    with open(root / "favc" / "meta_data.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"source", "target1", "target2", "method", "category", "type", "race", "gender", "path"} <= set(rows[0])
    ids = {}
    for split in ("train", "val", "test"):
        entries = _split(root, "favc", split)
        assert {lab for _, lab in entries} == {0, 1}
        for path, label in entries:
            category, _, _, identity, _ = Path(path).parts
            assert category == ("FakeVideo-FakeAudio" if label else "RealVideo-RealAudio")
            assert (root / "favc" / path).is_file()
            ids.setdefault(split, set()).add(identity)
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    labels = [lab for s in ("train", "val", "test") for _, lab in _split(root, "favc", s)]
    assert np.mean(labels) > 0.7  # mostly fake, as FakeAVCeleb


def test_avlips_and_dfe_layouts(root):
    test = _split(root, "avlips", "test")
    assert {lab for _, lab in test} == {0, 1} and not (root / "avlips" / "splits" / "train_labels.csv").exists()
    for path, label in test:
        assert path.startswith("1_fake/" if label else "0_real/") and (root / "avlips" / path).is_file()
    with open(root / "dfe" / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"path", "label", "split"} <= set(rows[0])
    videos: dict[str, set] = {}
    for r in rows:
        assert "_track_" in r["path"] and (root / "dfe" / r["path"]).is_file()
        videos.setdefault(r["video"], set()).add(r["split"])
    assert all(len(s) == 1 for s in videos.values())  # tracks of one video share its split
    for split in ("train", "val", "test"):
        assert {lab for _, lab in _split(root, "dfe", split)} == {0, 1}


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["av1m", "favc", "avlips", "dfe"])
def test_annotations_match_rendered_clips(root, domain):
    notes = _notes(root, domain)
    listed = {p for s in ("train", "val", "test") if (root / domain / "splits" / f"{s}_labels.csv").exists()
              for p, _ in _split(root, domain, s)}
    assert listed <= {n["path"] for n in notes}
    for note in notes:
        assert ANNOTATION_KEYS <= set(note)
        clip = read_clip(_file(root, domain, note))
        n, duration = clip.num_frames, clip.duration
        assert len(note["mouth_centre"]) == len(note["face_box"]) == len(note["region_centre"]) == n
        assert abs(len(clip.audio) / SR - duration) < 0.005
        h, w = clip.video.shape[1:3]
        x0, y0, x1, y1 = np.asarray(note["face_box"]).T
        assert np.all((0 <= x0) & (x0 < x1) & (x1 <= w) & (0 <= y0) & (y0 < y1) & (y1 <= h))
        times = [(s, e) for _, s, e in note["words"]]
        assert times and all(0 <= s < e <= duration + 1e-6 for s, e in times)
        assert all(a[0] <= b[0] for a, b in zip(times, times[1:]))
        assert note["leading_silence"] == 0 or times[0][0] >= note["leading_silence"]
        fake_frames = [r is not None for r in note["region_centre"]]
        if note["label"] == 0:
            assert not note["fake_segments"] and not any(fake_frames)
        else:
            assert note["fake_segments"]
            assert all(0 <= a < b <= duration + 1e-6 for a, b in note["fake_segments"])
            for k in np.nonzero(fake_frames)[0]:  # manipulated frames lie inside a fake segment
                assert any(a - 1e-6 <= k / FPS < b for a, b in note["fake_segments"])
                assert all(0 <= v <= 1 for v in note["region_centre"][k])


def test_real_mouths_follow_the_speech(root):
    """Mouth opening (pixel spread around the mouth) correlates with the audio loudness."""
    for domain in ("av1m", "favc", "avlips"):
        for note in [n for n in _notes(root, domain) if n["label"] == 0][:3]:
            clip = read_clip(_file(root, domain, note))
            spread = _mouth_std(clip, np.asarray(note["mouth_centre"]))
            loudness = np.log(_frame_rms(clip.audio, clip.num_frames) + 1e-4)
            assert np.corrcoef(spread, loudness)[0, 1] > 0.5, note["path"]


def _pairs(root: Path, modify_type: str):
    notes = {n["path"]: n for n in _notes(root, "av1m")}
    for subset in ("train", "val"):
        for entry in json.loads((root / "av1m" / f"{subset}_metadata.json").read_text()):
            if entry["modify_type"] == modify_type:
                yield entry, notes[entry["file"]], notes[entry["original"]], subset


@pytest.mark.slow
def test_av1m_visual_fakes_differ_only_inside_their_segments(root):
    for entry, note, real_note, subset in _pairs(root, "visual_modified"):
        real = read_clip(root / "av1m" / subset / entry["original"])
        fake = read_clip(root / "av1m" / subset / entry["file"])
        lead = round(note["leading_silence"] * FPS)  # fake frame k + lead shows real frame k
        assert fake.num_frames == real.num_frames + lead
        box = lambda clip, k, x, y: clip.video[k, y - 8 : y + 8, x - 10 : x + 10].astype(float)  # noqa: E731
        mouth = np.round(real_note["mouth_centre"]).astype(int)
        diff = np.array([np.abs(box(fake, k + lead, x, y) - box(real, k, x, y)).mean()
                         for k, (x, y) in enumerate(mouth)])
        inside = np.zeros(real.num_frames, bool)
        for a, b in entry["visual_fake_segments"]:
            inside[round(a * FPS) - lead : round(b * FPS) - lead] = True
        assert inside.any()
        if lead == 0:  # identical frames before the first fake span are encoded identically
            assert np.all(diff[: np.argmax(inside)] < 0.5)
        assert diff[inside].mean() > 2 * diff[~inside].mean()
        assert diff[~inside].mean() < 4.0  # after a fake span: the same frames, up to compression drift


@pytest.mark.slow
def test_av1m_audio_fakes_differ_only_inside_their_segments(root):
    for entry, note, _, subset in _pairs(root, "audio_modified"):
        real = read_clip(root / "av1m" / subset / entry["original"]).audio
        fake = read_clip(root / "av1m" / subset / entry["file"]).audio
        lead = round(note["leading_silence"] * SR)
        n = min(len(real), len(fake) - lead)
        diff = fake[lead : lead + n] - real[:n]
        t = np.arange(n) / SR + note["leading_silence"]
        inside, near = np.zeros(n, bool), np.zeros(n, bool)
        for a, b in entry["audio_fake_segments"]:
            inside |= (t >= a + 0.02) & (t <= b - 0.02)
            near |= (t >= a - 0.1) & (t <= b + 0.1)  # AAC frames (64 ms) smear the splice edges
        rms = lambda x: np.sqrt(np.mean(x**2))  # noqa: E731
        assert rms(diff[inside]) > 10 * rms(diff[~near])
        assert rms(diff[~near]) < 0.1 * rms(real[:n])


def _high_band_share(audio: np.ndarray, cutoff: float = 6200.0) -> float:
    """Share of the spectral energy above ``cutoff`` Hz."""
    spec = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    return float(spec[freqs > cutoff].sum() / spec.sum())


@pytest.mark.slow
def test_cloned_speech_lacks_the_band_reals_have(root):
    """The planted audio cue (avdd.synth.common.CLONE_RATES), read back from the mp4 files: the
    replaced words of AV1M-like fakes and whole FAVC-like fakes have (almost) no energy above
    the TTS models' band, where real speech keeps some."""
    real_words, fake_words = [], []
    for entry, note, _, subset in _pairs(root, "audio_modified"):
        real = read_clip(root / "av1m" / subset / entry["original"]).audio
        fake = read_clip(root / "av1m" / subset / entry["file"]).audio
        lead = note["leading_silence"]
        for a, b in entry["audio_fake_segments"]:
            i, j = round((a + 0.03) * SR), round((b - 0.03) * SR)
            fake_words.append(_high_band_share(fake[i:j]))
            real_words.append(_high_band_share(real[i - round(lead * SR):j - round(lead * SR)]))
    # Word by word the shares overlap (a vowel-only real word has little high band; a word
    # the editor sped up moves the TTS band edge up by up to 4/3), the typical word not: a
    # replaced word has less of it than the real word at its place, most of the time.
    fake_words, real_words = np.asarray(fake_words), np.asarray(real_words)
    assert len(fake_words) >= 4
    assert np.mean(fake_words < real_words) >= 0.75
    assert np.median(fake_words) < 0.5 * np.median(real_words)
    shares = {0: [], 1: []}
    for note in _notes(root, "favc"):
        shares[note["label"]].append(_high_band_share(read_clip(_file(root, "favc", note)).audio))
    assert shares[0] and shares[1] and max(shares[1]) < 0.2 * min(shares[0])


def test_leading_silence_is_silent_with_a_still_mouth(root):
    checked = 0
    for domain in ("av1m", "favc"):
        for note in [n for n in _notes(root, domain) if n["leading_silence"] > 0]:
            assert note["label"] == 1  # the shortcut is a property of fakes only
            clip = read_clip(_file(root, domain, note))
            lead = note["leading_silence"]
            start = clip.audio[: int((lead - 0.02) * SR)]
            assert 20 * np.log10(np.sqrt(np.mean(start**2)) + 1e-9) < -45  # near-silence
            assert note["words"][0][1] >= lead
            if domain == "av1m":  # untouched frames: the mouth stays closed and still
                spread = _mouth_std(clip, np.asarray(note["mouth_centre"]))
                n_lead = round(lead * FPS)
                assert np.ptp(spread[:n_lead]) < 0.25 * np.ptp(spread[n_lead:])
            checked += 1
    assert checked > 0
