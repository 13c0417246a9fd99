"""Decode and encode audio-visual clips with PyAV (no ffmpeg CLI, no torchaudio/torchvision).

Every backbone in this project reads video at 25 fps and audio at 16 kHz mono, so decoding
normalises both here, once:

* video frames are resampled to ``fps`` by presentation timestamp (nearest source frame, which
  duplicates or drops frames: a 3 s clip at 30 fps or 24 fps gives 75 frames at 25 fps);
  ``fps=None`` keeps every decoded frame at the stream's own rate instead (what the paper's
  extractors read: none of them resamples video; :attr:`Clip.native` says so);
* audio is resampled to ``sample_rate`` mono with PyAV's ``AudioResampler``;
* both are aligned on the video stream's start time, so audio sample 0 is the time of video
  frame 0 (AAC encoders prepend "priming" samples; mp4 edit lists or a non-zero audio
  start time would otherwise shift speech against the lips). The same origin is used whether
  or not the video is decoded, and audio is never cut to the video's length, so an audio
  backbone gets the same samples whatever else a job decodes.

Encoding writes H.264 (yuv420p) + AAC mp4 files, the format of the real datasets.

Why one module: decoding, its checks of a file (the messages a user sees) and encoding share
the one convention above (rates, stream alignment); the synthetic benchmark writes exactly
what every backbone reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["Clip", "MediaError", "MissingStream", "read_clip", "write_clip"]

_TRUNCATED_FRACTION = 0.9  # fewer decoded frames than this share of the header's count = truncated
# FFmpeg's text-art demuxers accept any bytes (a .txt "decodes" as ANSI art): not media for us.
_TEXT_FORMATS = {"tty", "bin", "xbin", "idf", "adf"}


class MediaError(ValueError):
    """A media file cannot be used; the message names the file and what to do about it."""


class MissingStream(MediaError):
    """The file is fine but lacks the audio or video stream that was asked for."""


@dataclass(frozen=True, eq=False)
class Clip:
    """A decoded clip.

    Attributes:
        video: ``(T, H, W, 3)`` uint8 RGB frames at ``fps``; ``(0, 0, 0, 3)`` when not read.
        audio: ``(N,)`` float32 mono samples in [-1, 1] at ``sample_rate``; ``(0,)`` when not
            read. Sample 0 is the time of video frame 0.
        fps: video frame rate (frames per second).
        sample_rate: audio sample rate (Hz).
        path: the file it was read from, if any.
        native: True when ``video`` holds the stream's own frames (``read_clip(fps=None)``:
            no rate conversion; ``fps`` is then the stream's average rate), False when the
            frames were resampled to ``fps``.
    """

    video: np.ndarray
    audio: np.ndarray
    fps: float = 25.0
    sample_rate: int = 16000
    path: Path | None = None
    native: bool = False

    @property
    def num_frames(self) -> int:
        """Number of video frames T."""
        return int(self.video.shape[0])

    @property
    def duration(self) -> float:
        """Duration in seconds: T / fps when video is present, else N / sample_rate."""
        if self.num_frames:
            return self.num_frames / self.fps
        return len(self.audio) / self.sample_rate


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, not a media file. Point to the .mp4 file itself.")
    if not path.exists():
        raise MediaError(f"{path}: no such file. Check the dataset root and the split list's paths.")
    if not path.is_file():  # a FIFO, a device (/dev/zero), a socket: no size, maybe no end
        raise MediaError(f"{path}: is not a regular file (a pipe or a device); copy it to a file.")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is empty (0 bytes); the download or copy was probably "
                         "interrupted. Copy it again, or remove it from the split list.")


def _corrupt(path: Path, err: Exception) -> MediaError:
    return MediaError(
        f"{path}: cannot be decoded ({err}). It is not a media file, or it is truncated or "
        "corrupt: download or copy it again, or remove it from the split list."
    )


def _stream_start(stream) -> float | None:
    if stream.start_time is None:
        return None
    return float(stream.start_time * stream.time_base)


def _frame_time(frame, index: int, rate: float) -> float:
    """Presentation time of a decoded frame in seconds (index / rate when it has no pts)."""
    if frame.pts is None or frame.time_base is None:
        return index / rate
    return float(frame.pts * frame.time_base)


class _NearestFrames:
    """Resample a stream of timestamped frames to a fixed rate by nearest timestamp.

    Source frame i stands for output times in [(t_{i-1} + t_i) / 2, (t_i + t_{i+1}) / 2); the
    output has round(end * fps) frames, where end = last time + last frame's duration. Only
    frames that are kept are converted to RGB (conversion dominates decoding cost).
    """

    def __init__(self, fps: float):
        self.fps = fps
        self.out: list[np.ndarray] = []
        self._prev = None  # (time, av.VideoFrame, cached rgb array or None)

    def _emit_prev(self) -> None:
        t, frame, arr = self._prev
        if arr is None:
            arr = frame.to_ndarray(format="rgb24")
            self._prev = (t, frame, arr)
        self.out.append(arr)

    def push(self, t: float, frame) -> None:
        if self._prev is not None:
            mid = 0.5 * (self._prev[0] + t)
            while len(self.out) / self.fps < mid - 1e-9:
                self._emit_prev()
        self._prev = (t, frame, None)

    def finish(self, last_duration: float) -> np.ndarray:
        if self._prev is None:
            return np.zeros((0, 0, 0, 3), np.uint8)
        n_out = max(1, round((self._prev[0] + last_duration) * self.fps))
        while len(self.out) < n_out:
            self._emit_prev()
        return np.stack(self.out[:n_out])


class _AllFrames:
    """Every decoded frame, in presentation order: the stream's own rate (``fps=None``)."""

    def __init__(self):
        self.out: list[np.ndarray] = []

    def push(self, t: float, frame) -> None:
        self.out.append(frame.to_ndarray(format="rgb24"))

    def finish(self, last_duration: float) -> np.ndarray:
        return np.stack(self.out) if self.out else np.zeros((0, 0, 0, 3), np.uint8)


def read_clip(
    path: str | Path,
    *,
    fps: float | None = 25.0,
    sample_rate: int = 16000,
    video: bool = True,
    audio: bool = True,
) -> Clip:
    """Decode a media file into a :class:`Clip` at ``fps`` and ``sample_rate``.

    Args:
        path: media file (mp4, mkv, avi, ... anything FFmpeg reads).
        fps: output video rate; frames are picked by nearest timestamp. None: every decoded
            frame, no resampling (``Clip.fps`` = the stream's average rate, ``Clip.native``).
        sample_rate: output audio rate (Hz); audio is downmixed to mono.
        video: decode the first video stream (required to exist when True).
        audio: decode the first audio stream (required to exist when True).

    Returns:
        Clip with ``video (T, H, W, 3) uint8`` and ``audio (N,) float32``. Audio sample 0 is
        aligned to the video stream's start (leading audio before it is dropped, a late audio
        start is zero-padded), whether or not the video is decoded; the AAC padding after the
        audio stream's own end is dropped. Audio is not cut to the video's length (N may
        exceed T / fps * sample_rate): consumers that need a common length cut both streams
        themselves, so the audio of a file is the same in every read.

    Raises:
        MediaError: missing, empty, unreadable or truncated file; a requested stream is absent;
            a requested stream decodes to nothing.
    """
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise _corrupt(path, err) from err
    with container:
        vstream, astream = _streams(path, container, video, audio)
        native = fps is None
        if native:
            fps = _rate(vstream) if vstream is not None else 25.0
        frames, v_start, chunks, a_start = _decode(
            path, container, vstream if video else None, astream if audio else None, fps,
            sample_rate, native)
        if video:
            _check_frames(path, frames, vstream, fps)
        # One origin for the audio whether or not the video was decoded (the stream's start;
        # the first decoded frame's time only when the stream declares none), so that audio
        # backbones see the same samples in every job.
        origin = _stream_start(vstream) if vstream is not None else None
        if origin is None:
            origin = v_start
        wav = _audio(path, chunks, a_start, origin, astream, sample_rate) if audio else np.zeros(0, np.float32)
    return Clip(video=frames, audio=np.clip(wav, -1.0, 1.0), fps=float(fps), sample_rate=sample_rate,
                path=path, native=native and video)


def _streams(path: Path, container, video: bool, audio: bool):
    """The first video and audio streams (None if absent); raises if a requested one is missing."""
    names = container.format.name
    if names in _TEXT_FORMATS or not (container.streams.video or container.streams.audio):
        raise _corrupt(path, ValueError(f"no audio/video stream; FFmpeg guessed {names!r}"))
    if names == "image2" or names.endswith("_pipe"):  # FFmpeg's still-image demuxers
        raise MediaError(f"{path}: is a still image ({names!r}), not a video. Use the video file.")
    vstream = container.streams.video[0] if container.streams.video else None
    astream = container.streams.audio[0] if container.streams.audio else None
    if video and vstream is None:
        raise MissingStream(f"{path}: has no video stream. Read it with video=False, or use the video file.")
    if audio and astream is None:
        raise MissingStream(f"{path}: has no audio stream. Read it with audio=False (video-only models), "
                         "or use a file with its soundtrack.")
    return vstream, astream


def _check_frames(path: Path, frames: np.ndarray, vstream, fps: float) -> None:
    if frames.shape[0] == 0:
        raise MediaError(f"{path}: the video stream decoded to zero frames; the file is empty or corrupt. "
                         "Download or copy it again, or remove it from the split list.")
    expected = vstream.frames * fps / _rate(vstream)  # the header's frame count, at the output rate
    if vstream.frames and frames.shape[0] < _TRUNCATED_FRACTION * expected:
        raise MediaError(f"{path}: decoded {frames.shape[0]} frames at {fps:g} fps but the header announces "
                         f"{vstream.frames} at the source rate; the file is truncated. Download or copy it again.")


def _audio(path: Path, chunks, a_start, v_start, astream, sample_rate: int) -> np.ndarray:
    """Resampled chunks -> one array aligned on the video start, without the AAC tail padding."""
    wav = _align_audio(chunks, a_start, v_start, sample_rate)
    if astream.duration:  # the stream's own length: drops the encoder's padding of the last AAC frame
        end = float((astream.duration + (astream.start_time or 0)) * astream.time_base)
        origin = v_start if v_start is not None else (a_start or 0.0)
        wav = wav[: round((end - origin) * sample_rate)]
    if wav.size == 0:
        raise MediaError(f"{path}: the audio stream decoded to zero samples; the file is corrupt. "
                         "Read it with audio=False, or download or copy it again.")
    return wav


def _rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _decode(path, container, vstream, astream, fps, sample_rate, native=False):
    """Demux the requested streams once; returns (frames, video start, audio chunks, audio start)."""
    streams = [s for s in (vstream, astream) if s is not None]
    picker = _AllFrames() if native else _NearestFrames(fps)
    v_start = a_start = None
    last_duration = 1.0 / _rate(vstream) if vstream is not None else 0.0
    n_video = 0
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate) if astream else None
    if vstream is not None:
        vstream.thread_type = "AUTO"  # frame threading: several times faster on long clips
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is vstream:
                    t = _frame_time(frame, n_video, _rate(vstream))
                    v_start = t if v_start is None else v_start
                    picker.push(t - v_start, frame)
                    if frame.duration and frame.time_base is not None:
                        last_duration = float(frame.duration * frame.time_base)
                    n_video += 1
                else:
                    if a_start is None:
                        a_start = frame.time if frame.time is not None else (_stream_start(astream) or 0.0)
                    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        if resampler is not None:
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except av.error.FFmpegError as err:
        raise _corrupt(path, err) from err
    return picker.finish(last_duration), v_start, chunks, a_start


def _align_audio(chunks, a_start, v_start, sample_rate) -> np.ndarray:
    wav = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0,), np.float32)
    if a_start is None or v_start is None or wav.size == 0:
        return wav
    offset = round((a_start - v_start) * sample_rate)
    if offset > 0:  # audio starts after the first frame: silence until it does
        return np.concatenate([np.zeros(offset, np.float32), wav])
    return wav[-offset:]  # audio starts before the first frame (priming, pre-roll): drop it


def write_clip(
    path: str | Path,
    video: np.ndarray | None,
    audio: np.ndarray | None,
    *,
    fps: float = 25,
    sample_rate: int = 16000,
    crf: int = 23,
    preset: str = "veryfast",
    audio_bitrate: int | None = None,
    aac_coder: str = "fast",
    threads: int = 0,
) -> Path:
    """Encode frames and samples into an mp4 (H.264 yuv420p + AAC).

    Args:
        path: output file (parent folders are created).
        video: ``(T, H, W, 3)`` uint8 RGB with even H and W (yuv420p halves the chroma), or
            None for an audio-only file.
        audio: ``(N,)`` mono or ``(N, C)`` float samples in [-1, 1] (C = 1 or 2), or None for
            a video-only file.
        fps: frame rate of ``video``.
        sample_rate: sample rate of ``audio`` (Hz); AAC keeps it (8-48 kHz).
        crf: x264 constant rate factor (0 lossless, 23 default, 51 worst).
        preset: x264 speed preset; "veryfast" is ~1.5x slower than "ultrafast" but keeps
            CABAC and deblocking, so artefacts resemble those of real uploads.
        audio_bitrate: AAC bit rate (bits/s); None keeps the encoder default.
        aac_coder: FFmpeg AAC coder; "fast" encodes ~2x faster than the default "twoloop" at
            a slightly lower quality per bit.
        threads: encoder threads (0 = automatic; 1 is best when many processes encode).

    Returns:
        The path written.
    """
    path = Path(path)
    if video is None and audio is None:
        raise ValueError(f"{path}: nothing to write (video and audio are both None)")
    if video is not None:
        video = np.asarray(video)
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or len(video) == 0:
            raise ValueError(f"{path}: video must be a non-empty (T, H, W, 3) uint8 array, "
                             f"got {video.dtype} {video.shape}")
        if video.shape[1] % 2 or video.shape[2] % 2:
            raise ValueError(f"{path}: H.264 yuv420p needs even frame sizes, "
                             f"got {video.shape[2]}x{video.shape[1]}; crop or pad")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        audio = audio[:, None] if audio.ndim == 1 else audio
        if audio.ndim != 2 or audio.shape[1] not in (1, 2) or len(audio) == 0:
            raise ValueError(f"{path}: audio must be a non-empty (N,) or (N, 1|2) array, got {audio.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        # All streams must exist before the first packet is muxed (the header is written then).
        vstream = astream = None
        if video is not None:
            vstream = _video_stream(container, video, fps, crf, preset, threads)
        if audio is not None:
            astream = _audio_stream(container, audio, sample_rate, audio_bitrate, aac_coder)
        # Encode in time order so the muxer interleaves without buffering a whole stream.
        events = [(i / fps, 0, i) for i in range(len(video))] if vstream is not None else []
        step = (astream.codec_context.frame_size or 1024) if astream is not None else 1
        events += [(i / sample_rate, 1, i) for i in range(0, len(audio), step)] if astream is not None else []
        for _, kind, index in sorted(events):
            if kind == 0:
                rgb = np.ascontiguousarray(video[index])
                packets = vstream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
            else:
                packets = astream.encode(_audio_frame(audio[index : index + step], sample_rate, index))
            for packet in packets:
                container.mux(packet)
        for stream in (vstream, astream):
            for packet in stream.encode(None) if stream is not None else ():
                container.mux(packet)
    return path


def _video_stream(container, video, fps, crf, preset, threads):
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = video.shape[2], video.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": str(crf), "preset": preset}
    stream.codec_context.thread_count = threads
    return stream


def _audio_stream(container, audio, sample_rate, bitrate, coder):
    stream = container.add_stream("aac", rate=sample_rate, options={"aac_coder": coder})
    stream.layout = "mono" if audio.shape[1] == 1 else "stereo"
    if bitrate:
        stream.bit_rate = bitrate
    return stream


def _audio_frame(chunk: np.ndarray, sample_rate: int, pts: int):
    """(n, C) float samples -> an AAC-ready planar float frame starting at sample ``pts``."""
    layout = "mono" if chunk.shape[1] == 1 else "stereo"
    planar = np.ascontiguousarray(np.clip(chunk, -1.0, 1.0).T)  # (C, n): fltp is channel-planar
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
    frame.sample_rate, frame.pts = sample_rate, pts
    return frame
