"""media.py: PyAV decode/encode round trips, frame-rate and sample-rate conversion, loud errors."""

from __future__ import annotations

import av
import numpy as np
import pytest

from avdd.media import Clip, MediaError, OutOfMemory, read_clip, stream_video, write_clip

SR = 16000


def _grey_ramp(n: int, h: int = 64, w: int = 96) -> np.ndarray:
    """Frames whose grey level encodes the frame index (40 + 2 i), so picks can be checked."""
    levels = (40 + 2 * np.arange(n)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, h, w, 3)).copy()


def _sine(freq: float, seconds: float, rate: int = SR) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _peak_hz(audio: np.ndarray, rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * rate / len(audio))


def _levels(clip: Clip) -> np.ndarray:
    return clip.video[:, 8:-8, 8:-8].mean(axis=(1, 2, 3))


def test_round_trip(tmp_path):
    path = write_clip(tmp_path / "a.mp4", _grey_ramp(75), _sine(440, 3.0))
    clip = read_clip(path)
    assert clip.video.shape == (75, 64, 96, 3) and clip.video.dtype == np.uint8
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert clip.fps == 25.0 and clip.sample_rate == SR and clip.path == path
    assert clip.duration == pytest.approx(3.0)
    assert abs(len(clip.audio) / SR - clip.duration) < 0.005
    np.testing.assert_allclose(_levels(clip), 40 + 2 * np.arange(75), atol=3)
    assert _peak_hz(clip.audio) == pytest.approx(440, abs=3)
    assert np.abs(clip.audio).max() <= 1.0


def test_audio_is_aligned_with_video(tmp_path):
    """A click at 1.00 s is decoded at 1.00 s: AAC priming is removed by the stream start time."""
    audio = np.zeros(3 * SR, np.float32)
    audio[SR : SR + 160] = np.random.default_rng(0).normal(0, 0.5, 160)
    clip = read_clip(write_clip(tmp_path / "click.mp4", _grey_ramp(75), audio))
    onset = np.argmax(np.abs(clip.audio) > 0.1) / SR
    assert onset == pytest.approx(1.0, abs=0.003)


def test_30_fps_is_resampled_to_25(tmp_path):
    clip = read_clip(write_clip(tmp_path / "b.mp4", _grey_ramp(90), _sine(300, 3.0), fps=30))
    assert clip.video.shape[0] == 75
    nearest = np.round(np.arange(75) * 30 / 25).astype(int)  # source frame nearest to k / 25 s
    np.testing.assert_allclose(_levels(clip), 40 + 2 * nearest, atol=3)


def test_native_rate_keeps_every_frame(tmp_path):
    """fps=None: every decoded frame at the stream's own rate, as the paper's extractors read
    video (none of them resamples)."""
    clip = read_clip(write_clip(tmp_path / "n.mp4", _grey_ramp(60), _sine(300, 2.0), fps=30), fps=None)
    assert clip.video.shape[0] == 60 and clip.fps == 30.0 and clip.native
    np.testing.assert_allclose(_levels(clip), 40 + 2 * np.arange(60), atol=3)
    assert not read_clip(tmp_path / "n.mp4").native  # resampled to 25 fps
    assert abs(len(clip.audio) / SR - 2.0) < 0.01  # audio is not tied to the video rate


def test_audio_is_the_same_with_or_without_the_video(tmp_path):
    """Audio is never cut to the video's length, and is aligned on the same origin whether
    or not the video is decoded: an audio backbone sees the same samples in every job."""
    path = write_clip(tmp_path / "long.mp4", _grey_ramp(50), _sine(300, 2.6))  # 2 s video
    joint, alone = read_clip(path), read_clip(path, video=False)
    np.testing.assert_array_equal(joint.audio, alone.audio)
    assert abs(len(joint.audio) / SR - 2.6) < 0.01 and joint.duration == pytest.approx(2.0)


def test_24_fps_duplicates_frames(tmp_path):
    clip = read_clip(write_clip(tmp_path / "c.mp4", _grey_ramp(72), _sine(300, 3.0), fps=24))
    assert clip.video.shape[0] == 75


def test_8khz_stereo_audio_becomes_16khz_mono(tmp_path):
    stereo = np.stack([_sine(300, 2.0, 8000), _sine(300, 2.0, 8000)], axis=1)
    clip = read_clip(write_clip(tmp_path / "d.mp4", _grey_ramp(50), stereo, sample_rate=8000))
    assert clip.sample_rate == SR and clip.audio.ndim == 1
    assert abs(len(clip.audio) / SR - 2.0) < 0.01
    assert _peak_hz(clip.audio) == pytest.approx(300, abs=3)


def test_44k_audio_only_read(tmp_path):
    path = write_clip(tmp_path / "e.mp4", _grey_ramp(50), _sine(1000, 2.0, 44100), sample_rate=44100)
    clip = read_clip(path, video=False)
    assert clip.video.shape[0] == 0 and clip.duration == pytest.approx(2.0, abs=0.01)
    assert _peak_hz(clip.audio) == pytest.approx(1000, abs=3)


def test_write_rejects_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_clip(tmp_path / "odd.mp4", np.zeros((5, 63, 64, 3), np.uint8), None)


def _assert_media_error(path, **kwargs):
    with pytest.raises(MediaError) as info:
        read_clip(path, **kwargs)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_missing_file(tmp_path):
    assert "no such file" in _assert_media_error(tmp_path / "nope.mp4")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    assert "empty" in _assert_media_error(path)


def test_not_a_media_file(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 50)
    _assert_media_error(path)
    _assert_media_error(path, audio=False)  # FFmpeg would "decode" text as ANSI art


def test_truncated_file(tmp_path):
    data = write_clip(tmp_path / "full.mp4", _grey_ramp(75), _sine(440, 3.0)).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    assert "truncated" in _assert_media_error(path)


def test_truncated_faststart_file(tmp_path):
    """With the index first, a cut file decodes partially: caught by the announced frame count."""
    path = tmp_path / "fast.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for frame in rng.integers(0, 255, (50, 64, 64, 3), dtype=np.uint8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    assert "truncated" in _assert_media_error(cut, audio=False)


def test_missing_streams(tmp_path):
    audio_only = write_clip(tmp_path / "audio.mp4", None, _sine(440, 1.0))
    assert "no video stream" in _assert_media_error(audio_only)
    video_only = write_clip(tmp_path / "video.mp4", _grey_ramp(25), None)
    assert "no audio stream" in _assert_media_error(video_only)
    assert read_clip(video_only, audio=False).video.shape[0] == 25
    assert read_clip(audio_only, video=False).audio.size > 0


def test_zero_decoded_frames(tmp_path):
    """A video stream whose packets decode to nothing."""
    path = tmp_path / "garbage.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
        for i in range(5):
            packet = av.Packet(bytes(200))
            packet.stream, packet.pts, packet.dts, packet.time_base = video, i, i, video.time_base
            container.mux(packet)
    assert "zero frames" in _assert_media_error(path, audio=False)


@pytest.mark.parametrize("fps,window,min_last", [(25.0, 16, 1), (25.0, 16, 12), (None, 7, 1)])
def test_windows_are_the_frames_of_the_whole_clip(tmp_path, fps, window, min_last):
    # 30 fps → 25 fps drops frames by timestamp across window boundaries; native keeps all.
    path = write_clip(tmp_path / "a.mp4", _grey_ramp(71), None, fps=30)
    whole = read_clip(path, audio=False, fps=fps)
    pieces = list(stream_video(path, window=window, fps=fps, min_last=min_last))
    sizes = [p.num_frames for p in pieces]
    # 59 frames at 25 fps: 16, 16, 16, 11 (a tail of 11 < 12 is merged: 16, 16, 27)
    assert all(s == window for s in sizes[:-1]) and min_last <= sizes[-1] < window + min_last
    assert np.array_equal(np.concatenate([p.video for p in pieces]), whole.video)
    assert {(p.fps, p.native) for p in pieces} == {(whole.fps, whole.native)}


def test_a_decode_resize_is_applied_to_every_frame_and_the_rest_is_unchanged(tmp_path):
    path = write_clip(tmp_path / "a.mp4", _grey_ramp(20, 360, 640), _sine(440, 0.8))
    seen = []

    def halve(frame):
        seen.append(frame.shape)
        return np.ascontiguousarray(frame[::4, ::4])

    whole = read_clip(path)
    small = read_clip(path, resize=halve)
    assert small.video.shape == (20, 90, 160, 3) and set(seen) == {(360, 640, 3)}
    assert np.array_equal(small.video, whole.video[:, ::4, ::4])
    assert np.array_equal(small.audio, whole.audio)
    (piece,) = stream_video(path, window=50, resize=halve)
    assert np.array_equal(piece.video, small.video)


@pytest.mark.slow
def test_processor_resize_at_decode_leaves_clip_and_videomae_inputs_unchanged():
    from avdd.backbones import clip as clip_family
    from avdd.backbones import videomae
    from avdd.backbones.layers.frames import shortest_edge_resize

    rng = np.random.default_rng(0)
    for family, edge in ((clip_family, 56), (clip_family, 224), (videomae, 32)):
        proc = family.processor_for(edge)
        resize = shortest_edge_resize(proc)
        for h, w in ((128, 128), (360, 640), (97, 131), (40, 30)):
            frames = rng.integers(0, 256, (4, h, w, 3), dtype=np.uint8)
            small = np.stack([resize(f) for f in frames])
            assert min(small.shape[1:3]) == min(edge, h, w)  # never larger than asked
            if family is clip_family:
                a, b = (proc(images=list(x), input_data_format="channels_last",
                             return_tensors="pt")["pixel_values"] for x in (frames, small))
            else:
                a, b = (proc([x], input_data_format="channels_last",
                             return_tensors="pt")["pixel_values"] for x in (frames, small))
            assert np.array_equal(a.numpy(), b.numpy()), (family.__name__, edge, h, w)


def test_running_out_of_memory_is_reported_as_memory_not_as_a_corrupt_file(tmp_path,
                                                                           monkeypatch):
    import avdd.media as media

    path = write_clip(tmp_path / "a.mp4", _grey_ramp(30), None)

    def no_memory(frames):
        return np.empty(2**62, np.uint8)  # numpy's own _ArrayMemoryError

    monkeypatch.setattr(media, "_stack", no_memory)
    with pytest.raises(OutOfMemory) as err:
        read_clip(path, audio=False)
    msg = str(err.value)
    assert not isinstance(err.value, MediaError) and "corrupt" not in msg
    assert str(path) in msg and "out of memory" in msg and "30 frames at 96x64" in msg

    def ffmpeg_enomem(self, *args, **kwargs):  # FFmpeg's ENOMEM while decoding
        raise av.error.MemoryError(12, "Cannot allocate memory")
        yield

    monkeypatch.setattr(media._Decode, "_windows", ffmpeg_enomem)
    with pytest.raises(OutOfMemory, match="out of memory while decoding 0 frames"):
        list(stream_video(path, window=8))
