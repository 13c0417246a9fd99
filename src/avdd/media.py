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

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["Clip", "MediaError", "MissingStream", "OutOfMemory", "VideoHeader", "read_clip",
           "count_frames", "frameless_clip", "read_header", "stream_video", "write_clip"]

#: Decoded full-size RGB bytes a window of a long clip may hold (64 MiB: 97 frames of
#: 640 x 360, 2 of 3840 x 2160); read when used, so a test may lower it.
STREAM_BYTES = 64 * 2**20
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
    frames that are kept are converted to RGB (conversion dominates decoding cost), and
    ``resize`` (if any) runs once per kept source frame, so a full-size RGB frame exists one
    at a time. Frames wait in ``out`` until the consumer takes them (:meth:`take`).
    """

    def __init__(self, fps: float, resize=None):
        self.fps = fps
        self.resize = resize
        self.out: list[np.ndarray] = []
        self.count = 0  # frames emitted so far (taken or waiting in ``out``)
        self._prev = None  # (time, av.VideoFrame, cached rgb array or None)

    def _emit_prev(self) -> None:
        t, frame, arr = self._prev
        if arr is None:
            arr = _rgb(frame, self.resize)
            self._prev = (t, frame, arr)
        self.out.append(arr)
        self.count += 1

    def push(self, t: float, frame) -> None:
        if self._prev is not None:
            mid = 0.5 * (self._prev[0] + t)
            while self.count / self.fps < mid - 1e-9:
                self._emit_prev()
        self._prev = (t, frame, None)

    def finish(self, last_duration: float) -> None:
        """Emit the frames up to the stream's end (and drop any beyond it still waiting)."""
        if self._prev is None:
            return
        n_out = max(1, round((self._prev[0] + last_duration) * self.fps))
        while self.count < n_out:
            self._emit_prev()
        extra = min(self.count - n_out, len(self.out))
        if extra > 0:
            del self.out[len(self.out) - extra:]
            self.count -= extra

    def take(self) -> list[np.ndarray]:
        """The waiting frames, removed from the buffer."""
        taken, self.out = self.out, []
        return taken


class _AllFrames(_NearestFrames):
    """Every decoded frame, in presentation order: the stream's own rate (``fps=None``)."""

    def __init__(self, resize=None):
        super().__init__(0.0, resize)

    def push(self, t: float, frame) -> None:
        self.out.append(_rgb(frame, self.resize))
        self.count += 1

    def finish(self, last_duration: float) -> None:
        pass


# ``resize`` of a decode that only counts frames: no frame is converted to RGB.
_COUNT_ONLY = object()
_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


def _rgb(frame, resize) -> np.ndarray:
    if resize is _COUNT_ONLY:
        return _NO_PIXELS
    arr = frame.to_ndarray(format="rgb24")
    return arr if resize is None else resize(arr)


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


class OutOfMemory(MemoryError):
    """Decoding a clip ran out of memory; the message names the file, how much was decoded
    and what to do. Not a :class:`MediaError`: the file is not at fault."""


def _out_of_memory(path: Path, vstream, picker, fps: float | None, err: BaseException
                   ) -> OutOfMemory:
    frames = picker.count if picker is not None else 0
    shape = (picker.out[-1].shape if picker is not None and picker.out
             else (vstream.height, vstream.width) if vstream is not None else None)
    if shape is None:
        what = "the audio stream"
    else:
        what = f"{frames} frames at {shape[1]}x{shape[0]}"
        if vstream is not None and vstream.duration and fps:
            total = float(vstream.duration * vstream.time_base) * fps
            gib = total * shape[0] * shape[1] * 3 / 2**30
            what += f" of about {total:,.0f} ({gib:,.1f} GiB of RGB for the whole clip)"
    return OutOfMemory(
        f"{path}: out of memory while decoding {what} ({type(err).__name__}: {err}). The file "
        "is not at fault: free memory or raise the memory limit, use a backbone that reads "
        "video in windows (`stream_frames`, e.g. CLIP or VideoMAE), or cut the clip into "
        "shorter pieces.")


def read_clip(
    path: str | Path,
    *,
    fps: float | None = 25.0,
    sample_rate: int = 16000,
    video: bool = True,
    audio: bool = True,
    resize: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Clip:
    """Decode a media file into a :class:`Clip` at ``fps`` and ``sample_rate``.

    Args:
        path: media file (mp4, mkv, avi, ... anything FFmpeg reads).
        fps: output video rate; frames are picked by nearest timestamp. None: every decoded
            frame, no resampling (``Clip.fps`` = the stream's average rate, ``Clip.native``).
        sample_rate: output audio rate (Hz); audio is downmixed to mono.
        video: decode the first video stream (required to exist when True).
        audio: decode the first audio stream (required to exist when True).
        resize: applied to each kept ``(H, W, 3)`` uint8 RGB frame as it is decoded (a
            backbone's :attr:`~avdd.backbones.Backbone.frame_resize`), so that only one
            full-size frame is in memory at a time; None keeps the decoded size.

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
        OutOfMemory: the decoded clip does not fit in memory (the message says how large it
            is; :func:`stream_video` decodes in windows).
    """
    path = Path(path)
    with _open(path) as container:
        vstream, astream = _streams(path, container, video, audio)
        native = fps is None
        if native:
            fps = _rate(vstream) if vstream is not None else 25.0
        dec = _Decode(path, container, vstream if video else None, astream if audio else None,
                      fps, sample_rate, native, resize)
        frames = dec.frames()
        if video:
            _check_frames(path, len(frames), vstream, fps)
        wav = dec.audio(vstream, astream) if audio else np.zeros(0, np.float32)
    return Clip(video=frames, audio=np.clip(wav, -1.0, 1.0), fps=float(fps), sample_rate=sample_rate,
                path=path, native=native and video)


def stream_video(
    path: str | Path,
    *,
    window: int,
    fps: float | None = 25.0,
    resize: Callable[[np.ndarray], np.ndarray] | None = None,
    min_last: int = 1,
) -> Iterator[Clip]:
    """Decode the video stream in consecutive windows of ``window`` frames: memory is bounded
    by the window, not by the clip.

    The frames are those of ``read_clip(path, fps=fps, audio=False, resize=resize)``, in
    order, split at frames ``window``, ``2 * window``, ...; the last window holds the rest and
    is merged into the one before it when it would have fewer than ``min_last`` frames (a
    model that needs ``min_last`` frames then never gets a shorter tail). Each window is a
    :class:`Clip` without audio, at the same ``fps`` (and ``native`` flag) as ``read_clip``.

    Raises:
        MediaError: as :func:`read_clip`; a truncated file is detected at its end, after the
            windows before it were yielded (a consumer must not keep partial results).
        OutOfMemory: as :func:`read_clip`.
    """
    if window < 1 or min_last < 1:
        raise ValueError(f"window ({window}) and min_last ({min_last}) must be >= 1")
    path = Path(path)
    native = fps is None
    with _open(path) as container:
        dec, vstream, fps = _video_only(path, container, fps, resize)
        # Held back: a tail of min_last - 1 frames to merge, and the one frame the stream's
        # end may still drop (see _NearestFrames.finish).
        count = 0
        for frames in dec.windows(window, keep=min_last):
            count += len(frames)
            yield Clip(video=_stack(frames), audio=np.zeros(0, np.float32), fps=float(fps),
                       path=path, native=native)
        _check_frames(path, count, vstream, fps)


@dataclass(frozen=True)
class VideoHeader:
    """What a file's video stream declares, read without decoding a frame.

    Attributes:
        width, height: frame size (px) of the decoded frames.
        seconds: the stream's declared duration (0.0 when it declares none).
        rate: the stream's average frame rate (``Clip.fps`` of a native read).
    """

    width: int
    height: int
    seconds: float
    rate: float

    def frame_bytes(self) -> int:
        """Bytes of one decoded ``(H, W, 3)`` uint8 RGB frame."""
        return self.width * self.height * 3


def read_header(path: str | Path) -> VideoHeader:
    """The first video stream's declared size and duration (:class:`VideoHeader`).

    Raises:
        MediaError: as :func:`read_clip` (missing, empty, unreadable file, no video stream).
    """
    path = Path(path)
    with _open(path) as container:
        vstream, _ = _streams(path, container, True, False)
        if vstream.duration and vstream.time_base:
            seconds = float(vstream.duration * vstream.time_base)
        elif container.duration:
            seconds = container.duration / av.time_base
        else:
            seconds = 0.0
        ctx = vstream.codec_context
        return VideoHeader(int(ctx.width), int(ctx.height), seconds, _rate(vstream))


def count_frames(path: str | Path, *, fps: float | None = 25.0) -> int:
    """``read_clip(path, fps=fps, audio=False).num_frames``, decoding the stream without
    converting any frame to RGB (the same frame picking; nothing is held).

    Raises:
        MediaError: as :func:`read_clip` (a truncated file included).
    """
    path = Path(path)
    with _open(path) as container:
        dec, vstream, fps = _video_only(path, container, fps, _COUNT_ONLY)
        count = sum(len(w) for w in dec.windows(_COUNT_WINDOW))
        _check_frames(path, count, vstream, fps)
    return count


_COUNT_WINDOW = 1024  # frames of a counting decode per list (references to one empty array)


def frameless_clip(path: str | Path, frames: int, *, fps: float | None = 25.0,
                   audio: np.ndarray | None = None, sample_rate: int = 16000) -> Clip:
    """A :class:`Clip` of ``path`` that counts ``frames`` video frames but holds no pixels
    (``video`` is ``(frames, 0, 0, 3)``, zero bytes), for a model that reads only the length of
    the video beside a region computed from it a window at a time (the lip models' mouth
    crops, :mod:`avdd.roi.stream`). ``fps`` None: the stream's own rate, as ``read_clip``'s
    native read (``Clip.native``)."""
    rate = float(fps) if fps is not None else read_header(path).rate
    wav = np.zeros(0, np.float32) if audio is None else audio
    return Clip(video=np.zeros((frames, 0, 0, 3), np.uint8), audio=wav, fps=rate,
                sample_rate=sample_rate, path=Path(path), native=fps is None)


def _video_only(path: Path, container, fps: float | None, resize):
    """A decoder of the first video stream alone: ``(decoder, stream, output rate)`` (the
    stream's own rate when ``fps`` is None)."""
    vstream, _ = _streams(path, container, True, False)
    native = fps is None
    if native:
        fps = _rate(vstream)
    return _Decode(path, container, vstream, None, fps, 16000, native, resize), vstream, fps


@contextlib.contextmanager
def _open(path: Path):
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise _corrupt(path, err) from err
    with container:
        yield container


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


def _check_frames(path: Path, count: int, vstream, fps: float) -> None:
    if count == 0:
        raise MediaError(f"{path}: the video stream decoded to zero frames; the file is empty or corrupt. "
                         "Download or copy it again, or remove it from the split list.")
    expected = vstream.frames * fps / _rate(vstream)  # the header's frame count, at the output rate
    if vstream.frames and count < _TRUNCATED_FRACTION * expected:
        raise MediaError(f"{path}: decoded {count} frames at {fps:g} fps but the header announces "
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


class _Decode:
    """One pass over the requested streams: video frames as they are picked (in windows, or
    all at once), audio chunks collected on the way."""

    def __init__(self, path, container, vstream, astream, fps, sample_rate, native, resize):
        self.path, self.container, self.vstream, self.astream = path, container, vstream, astream
        self.fps = fps
        self.picker = (_AllFrames(resize) if native else _NearestFrames(fps, resize)
                       ) if vstream is not None else None
        self.v_start = self.a_start = None
        self.chunks: list[np.ndarray] = []
        self.resampler = (av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                          if astream else None)
        self.sample_rate = sample_rate

    def frames(self) -> np.ndarray:
        """Every frame, ``(T, H, W, 3)`` (``(0, 0, 0, 3)`` without video)."""
        frames = [f for w in self.windows(None) for f in w]
        try:
            return _stack(frames)
        except MemoryError as err:
            raise self._oom(err) from err

    def windows(self, window: int | None, keep: int = 1) -> Iterator[list[np.ndarray]]:
        """Lists of ``window`` frames as they fill (None: one list at the end), then the rest,
        which has at least ``keep`` frames unless the whole stream has fewer."""
        try:
            yield from self._windows(window, keep)
        except MemoryError as err:  # numpy's _ArrayMemoryError and FFmpeg's ENOMEM alike
            raise self._oom(err) from err
        except av.error.FFmpegError as err:
            raise _corrupt(self.path, err) from err

    def _oom(self, err: BaseException) -> OutOfMemory:
        return _out_of_memory(self.path, self.vstream, self.picker, self.fps, err)

    def _windows(self, window: int | None, keep: int) -> Iterator[list[np.ndarray]]:
        vstream, astream, picker = self.vstream, self.astream, self.picker
        streams = [s for s in (vstream, astream) if s is not None]
        last_duration = 1.0 / _rate(vstream) if vstream is not None else 0.0
        n_video = 0
        if vstream is not None:
            vstream.thread_type = "AUTO"  # frame threading: several times faster on long clips
        for packet in self.container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is vstream:
                    t = _frame_time(frame, n_video, _rate(vstream))
                    self.v_start = t if self.v_start is None else self.v_start
                    picker.push(t - self.v_start, frame)
                    if frame.duration and frame.time_base is not None:
                        last_duration = float(frame.duration * frame.time_base)
                    n_video += 1
                    # +1: the stream's end may still drop the newest frame (finish)
                    while window is not None and len(picker.out) >= window + keep + 1:
                        yield picker.out[:window]
                        del picker.out[:window]
                else:
                    if self.a_start is None:
                        self.a_start = (frame.time if frame.time is not None
                                        else (_stream_start(astream) or 0.0))
                    self.chunks.extend(f.to_ndarray().reshape(-1)
                                       for f in self.resampler.resample(frame))
        if self.resampler is not None:
            self.chunks.extend(f.to_ndarray().reshape(-1) for f in self.resampler.resample(None))
        if picker is not None:
            picker.finish(last_duration)
            while window is not None and len(picker.out) >= window + keep:
                yield picker.out[:window]
                del picker.out[:window]
            if picker.out:
                yield picker.take()

    def audio(self, vstream, astream) -> np.ndarray:
        """The collected audio aligned on the video stream's start (after :meth:`frames`)."""
        # One origin for the audio whether or not the video was decoded (the stream's start;
        # the first decoded frame's time only when the stream declares none), so that audio
        # backbones see the same samples in every job.
        origin = _stream_start(vstream) if vstream is not None else None
        if origin is None:
            origin = self.v_start
        try:
            return _audio(self.path, self.chunks, self.a_start, origin, astream, self.sample_rate)
        except MemoryError as err:
            raise self._oom(err) from err


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
