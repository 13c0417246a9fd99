"""The GE2E speaker encoder (Resemblyzer's pretrained weights) and its random-init twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avdd.backbones import clear_descriptions, describe, get_backbone
from avdd.backbones import ge2e as ge2e_module
from avdd.backbones.ge2e import (
    GE2EConfig,
    hz_to_slaney,
    load_weights,
    mel_frames,
    raise_volume,
    slaney_mel_filterbank,
    slaney_to_hz,
    weights_path,
)
from avdd.backbones.hub import WeightsNotFound
from avdd.media import Clip

SR = 16000
CFG = GE2EConfig()


def clip_of(audio: np.ndarray) -> Clip:
    return Clip(video=np.zeros((0, 0, 0, 3), np.uint8), audio=audio.astype(np.float32))


def tone(freq: float, seconds: float, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def encoders() -> tuple:
    """``(pretrained, random twin)``, built once for the module."""
    return get_backbone("ge2e"), get_backbone("ge2e-random")


# -- the weights ------------------------------------------------------------------------------
def test_weights_load_with_weights_only_and_have_the_documented_shapes(monkeypatch):
    real = torch.load
    calls = []

    def checked(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked)
    state = load_weights(weights_path())
    assert calls == [True]
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    expected = {"linear.weight": (256, 256), "linear.bias": (256,)}
    for layer in range(3):
        expected |= {f"lstm.weight_ih_l{layer}": (1024, 40 if layer == 0 else 256),
                     f"lstm.weight_hh_l{layer}": (1024, 256),
                     f"lstm.bias_ih_l{layer}": (1024,), f"lstm.bias_hh_l{layer}": (1024,)}
    assert shapes == expected  # GE2E's similarity w, b (loss parameters) are dropped


def test_the_built_encoder_holds_the_file_weights(encoders):
    pretrained, random_twin = encoders
    state = load_weights(weights_path())
    net = pretrained.net.state_dict()
    assert all(torch.equal(net[k], v) for k, v in state.items())
    assert not torch.equal(random_twin.net.state_dict()["linear.weight"], state["linear.weight"])


def test_a_missing_resemblyzer_fails_with_the_install_command(monkeypatch):
    monkeypatch.setattr(ge2e_module.importlib.util, "find_spec", lambda name: None)
    clear_descriptions()
    try:
        for attempt in (lambda: get_backbone("ge2e"), lambda: describe("ge2e")):
            with pytest.raises(WeightsNotFound) as err:
                attempt()
            message = str(err.value)
            assert "pip install --no-deps resemblyzer==0.1.4" in message
            assert "\n" not in message
        describe("ge2e-random")  # the random twin needs no weights
    finally:
        clear_descriptions()


# -- the front end ----------------------------------------------------------------------------
def test_slaney_scale_is_linear_below_1khz_and_logarithmic_above():
    assert hz_to_slaney(1000.0) == pytest.approx(15.0)
    assert hz_to_slaney(500.0) == pytest.approx(7.5)
    assert hz_to_slaney(6400.0) == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 4000.0, 8000.0])
    assert slaney_to_hz(hz_to_slaney(hz)) == pytest.approx(hz)


def test_filters_have_unit_area_in_hz():
    bank = slaney_mel_filterbank(SR, 400, 40)
    assert bank.shape == (40, 201)
    # Slaney normalisation: each triangle's area is 1 (bins 40 Hz apart); upper bands span
    # many bins, so the discrete sum is close to the continuous area.
    assert bank[20:].sum(axis=1) * (SR / 400) == pytest.approx(np.ones(20), rel=0.02)


@pytest.mark.parametrize("band", [5, 30])
def test_a_sine_at_a_band_centre_lands_in_that_band(band):
    # Centres in closed form: 42 edges equally spaced over [0, mel(8 kHz)] Slaney mels, with
    # mel(8 kHz) = 15 + 27 ln(8) / ln(6.4); below 15 mels 1 mel = 200/3 Hz, above it
    # f = 1000 * 6.4 ** ((m - 15) / 27).
    top = 15 + 27 * math.log(8) / math.log(6.4)
    m = (band + 1) * top / 41
    freq = m * 200 / 3 if m < 15 else 1000 * 6.4 ** ((m - 15) / 27)
    mel = mel_frames(tone(freq, 1.0), CFG)
    energy = mel[4:-4].mean(axis=0)  # away from the edges
    assert int(np.argmax(energy)) == band
    assert energy[band - 1:band + 2].sum() > 0.95 * energy.sum()
    # Power, not log: doubling the amplitude of a loud tone (no loudness gain) quadruples it.
    loud = mel_frames(tone(freq, 1.0, 0.2), CFG)[4:-4].mean(0)
    louder = mel_frames(tone(freq, 1.0, 0.4), CFG)[4:-4].mean(0)
    assert louder[band] == pytest.approx(4 * loud[band], rel=1e-4)


def test_quiet_audio_is_raised_to_minus_30_dbfs_and_loud_audio_kept():
    quiet = tone(440, 0.5, 0.001)
    raised = raise_volume(quiet, -30.0)
    assert 20 * np.log10(np.sqrt(np.mean(raised.astype(np.float64) ** 2))) == pytest.approx(-30)
    loud = tone(440, 0.5, 0.5)
    assert np.array_equal(raise_volume(loud, -30.0), loud)
    assert np.array_equal(raise_volume(np.zeros(100, np.float32), -30.0), np.zeros(100))


def test_one_mel_step_per_10ms_four_per_output_frame():
    assert mel_frames(np.zeros(16000, np.float32), CFG).shape == (100, 40)
    assert mel_frames(np.zeros(16001, np.float32), CFG).shape == (104, 40)
    assert mel_frames(np.zeros(0, np.float32), CFG).shape == (4, 40)


# -- the features -----------------------------------------------------------------------------
@pytest.mark.parametrize(("samples", "frames"), [(16000, 25), (16001, 26), (40000, 63),
                                                 (100, 1)])
@pytest.mark.slow
def test_output_is_25hz_256d_unit_rows(encoders, samples, frames):
    audio = np.random.default_rng(0).normal(0, 0.05, samples).astype(np.float32)
    for bb in encoders:
        f = bb(clip_of(audio))
        assert f.shape == (frames, 256) and f.dtype == np.float32
        assert np.linalg.norm(f, axis=1) == pytest.approx(np.ones(frames), abs=1e-5)
        assert bb.fps == 25.0 and bb.dim == 256 and bb.modality == "audio"


@pytest.mark.slow
def test_deterministic_and_batched_as_one_by_one(encoders):
    pretrained = encoders[0]
    rng = np.random.default_rng(1)
    a, b = (rng.normal(0, 0.05, 24000).astype(np.float32) for _ in range(2))
    first = pretrained(clip_of(a))
    assert np.array_equal(first, pretrained(clip_of(a)))
    assert np.array_equal(first, get_backbone("ge2e")(clip_of(a)))
    batched = pretrained.batch([clip_of(a), clip_of(b)], [None, None])
    assert pretrained.batch_key(clip_of(a)) == pretrained.batch_key(clip_of(b))
    assert np.allclose(batched[0], first, atol=1e-5)
    assert np.allclose(batched[1], pretrained(clip_of(b)), atol=1e-5)


def test_random_twin_is_seeded_and_differs_from_the_pretrained(encoders):
    pretrained, random_twin = encoders
    audio = tone(300, 1.0) + tone(1200, 1.0, 0.05)
    f = random_twin(clip_of(audio))
    assert np.array_equal(f, get_backbone("ge2e-random:seed=0")(clip_of(audio)))
    assert not np.allclose(f, get_backbone("ge2e-random:seed=1")(clip_of(audio)))
    assert not np.allclose(f, pretrained(clip_of(audio)), atol=1e-2)
    state = get_backbone("ge2e-random").net.state_dict()
    assert all(torch.equal(v, random_twin.net.state_dict()[k]) for k, v in state.items())


def test_describe_matches_the_build_without_building(monkeypatch, encoders):
    pretrained, random_twin = encoders

    def no_module(self, *args, **kwargs):
        raise AssertionError("describe built a torch module")

    clear_descriptions()
    monkeypatch.setattr(torch.nn.Module, "__init__", no_module)
    try:
        infos = {spec: describe(spec) for spec in ("ge2e", "ge2e-random", "ge2e-random:seed=3")}
    finally:
        monkeypatch.undo()
        clear_descriptions()
    assert infos["ge2e"].config == pretrained.config()
    assert infos["ge2e-random"].config == random_twin.config()
    assert infos["ge2e-random:seed=3"].config["seed"] == 3
    assert infos["ge2e"].weights == "pretrained" and infos["ge2e-random"].weights == "random"
    assert infos["ge2e"].config["source"] == "resemblyzer==0.1.4:resemblyzer/pretrained.pt"
    assert (infos["ge2e"].dim, infos["ge2e"].fps, infos["ge2e"].modality) == (256, 25.0, "audio")


# -- what the training added: speaker information ------------------------------------------------
@pytest.fixture(scope="module")
def two_speakers():
    """Four sentences, each spoken by two espeak-ng voices of equal rate, pitch and range
    (they differ in timbre: a male and a female variant): ``(A, B)`` lists of waveforms."""
    from avdd.synth.tts import Voice, random_words, synthesize

    rng = np.random.default_rng(1)
    texts = [random_words(rng, 8) for _ in range(4)]
    return tuple([synthesize(t, Voice(v, 165, 50, 50)).audio for t in texts]
                 for v in ("en-us+m3", "en-us+f2"))


def utterance_embeddings(bb, waves) -> np.ndarray:
    """``(n, 256)``: each clip's frames averaged and L2-normalised."""
    e = np.array([bb(clip_of(w)).mean(axis=0) for w in waves])
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_pretrained_encoder_knows_the_speaker_and_its_random_twin_less(encoders, two_speakers):
    """Every pair of one speaker's sentences must be closer than any sentence is to the other
    speaker saying it: true of the speaker-verification weights, not of the same network at
    random init, whose speaker separation is also under two thirds of theirs. A deliberate
    bug in the front end (a log mel, HTK instead of Slaney filters) or in the weight loading
    breaks the first."""
    off = ~np.eye(4, dtype=bool)
    separation = {}
    for bb in encoders:
        a, b = (utterance_embeddings(bb, w) for w in two_speakers)
        same_speaker = np.concatenate([(a @ a.T)[off], (b @ b.T)[off]])
        same_words = np.diag(a @ b.T)  # other speaker, same sentence
        other = (a @ b.T)[off]  # other speaker, other sentence
        spread = np.concatenate([same_speaker, other]).std()
        separation[bb.name] = (same_speaker.mean() - other.mean()) / spread
        if bb.weights == "pretrained":
            assert same_speaker.min() > same_words.max() + 0.05
        else:
            assert same_speaker.min() < same_words.max()
    # Scale-free: the random twin's cosines are all near 1, so compare in spreads.
    assert separation["ge2e"] > 1.5 * separation["ge2e-random"]
