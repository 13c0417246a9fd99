"""``describe(spec)``: what ``get_backbone(spec)`` would build, without building it.

Feature stores are keyed by a hash of the backbone's config, and the runner now keys them by
``describe(spec).config``: a description that differs from the built backbone in one value (or
in one type: ``1`` and ``1.0`` hash differently) would orphan every existing store. So every
registered name, and specs with arguments and with (tiny, fabricated) checkpoint files and
model directories, is checked against the built backbone field by field.

Full-size random architectures are built on the ``meta`` device (shapes only: XLS-R 2B's
weights alone would take 8.6 GB); ``from_pretrained`` refuses the meta device, so specs that
name a directory or file build on the CPU (their models are tiny).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time

import pytest
import torch
from test_autoavsr import to_v1
from test_backbones_pretrained import vit_to_timm

from avdd.backbones import (
    BackboneInfo,
    available,
    avhubert,
    braven,
    clear_descriptions,
    describe,
    fsfm,
    get_backbone,
    register,
)
from avdd.backbones.base import parse_spec
from avdd.backbones.hub import WeightsNotFound
from avdd.config import DEMO_BACKBONES
from avdd.features.extract import backbone_key, compute_signature

#: Full-size random architectures whose configs ship with avdd, so they describe offline.
FULL_SIZE = ("wav2vec2-random", "clip-random", "videomae-random")

#: Pretrained backbones whose weights every test machine has and that are cheap to build
#: (GE2E: 1.4 M parameters from the resemblyzer wheel the Makefile installs).
SMALL_PRETRAINED = ("ge2e",)

#: Specs with arguments: each changes some value of the config.
WITH_ARGUMENTS = (
    "wav2vec2-tiny-random:seed=1", "wav2vec2-tiny-random:layer=1",
    "mouth-pixels:fps=30", "clip-tiny-random:fps=30",
    "videomae-tiny-random:trailing=pad", "fsfm-tiny-random:fps=12.5",
    "fsfm-tiny-random:faces=dlib",
    "braven-v-tiny-random:trim_silence=true", "autoavsr-av-tiny-random:trim_silence=1",
    "braven-v-tiny-random:landmarks=dlib", "autoavsr-vsr-tiny-random:crop=autoavsr",
    "autoavsr-vsr-tiny-random:landmarks=mediapipe-face",
    "avhubert-av-tiny-random:landmarks=synthetic,trim_silence=true",
)


@pytest.fixture(autouse=True)
def offline_and_fresh(monkeypatch):
    """No network (a hub name resolves from the local cache only) and no description cached
    by another test (they may have patched the hub)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clear_descriptions()
    yield
    clear_descriptions()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Tiny checkpoint files and model directories in every format a family reads, by the
    spec argument that names them."""
    from safetensors.torch import save_file
    from transformers import Wav2Vec2FeatureExtractor

    root = tmp_path_factory.mktemp("checkpoints")
    out = {}

    # transformers directories (save_pretrained), as `hf download` leaves them.
    w2v = get_backbone("wav2vec2-tiny-random")
    w2v.net.save_pretrained(root / "w2v")
    # do_normalize=False: a description that ignored the feature extractor would say True.
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(root / "w2v")
    for name in ("clip", "videomae"):
        bb = get_backbone(f"{name}-tiny-random")
        bb.net.save_pretrained(root / name)
        bb.processor.save_pretrained(root / name)
        out[name] = str(root / name)
    out["w2v"] = str(root / "w2v")

    # FSFM release files: pretraining (norm) and fine-tuned (fc_norm) layouts; safetensors.
    for final in ("fc_norm", "norm"):
        src = fsfm.FSFMRandom(config=fsfm.vit_config(32, 2, 4, 32, 16), seed=3, pool=final)
        state = vit_to_timm(src.net.state_dict(), final)
        torch.save({"model": state, "args": argparse.Namespace(model="vit_base")},
                   root / f"fsfm-{final}.pth")
        out[f"fsfm-{final}"] = str(root / f"fsfm-{final}.pth")
    save_file(state, str(root / "fsfm.safetensors"))
    out["fsfm-safetensors"] = str(root / "fsfm.safetensors")

    # BRAVEn: the release layout (encoder.* plus the ASR heads, which are dropped).
    for m in ("video", "audio"):
        net = braven.BRAVEnRandom(config=braven.tiny_config(m), seed=1).net
        state = {f"encoder.{k}": v for k, v in net.state_dict().items()}
        torch.save({**state, "decoder.embed.weight": torch.zeros(3, 2)}, root / f"bv-{m}.pth")
        out[f"braven-{m}"] = str(root / f"bv-{m}.pth")

    # Auto-AVSR: the main layout (VSR, ASR) and the v1.0.0 layout (AV: only released there),
    # wrapped as Lightning saves them.
    for short, m in (("vsr", "video"), ("asr", "audio"), ("av", "av")):
        state = get_backbone(f"autoavsr-{short}-tiny-random").net.state_dict()
        state = to_v1(state, m) if m == "av" else state
        torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}},
                   root / f"aa-{short}.pth")
        out[f"autoavsr-{short}"] = str(root / f"aa-{short}.pth")

    # AV-HuBERT: a plain fairseq-layout file (heads are not stored: heads=4 in the spec) and
    # its safetensors conversion (heads in the metadata).
    net = avhubert.AVHubertRandom(config=avhubert.tiny(), seed=7).net
    torch.save({"model": net.state_dict()}, root / "avh.pt")
    avhubert.convert_checkpoint(root / "avh.pt", root / "avh.safetensors", heads=4)
    out["avhubert"] = str(root / "avh.pt")
    out["avhubert-safetensors"] = str(root / "avh.safetensors")
    return out


def file_specs(files: dict[str, str]) -> list[str]:
    """Specs of every pretrained family, pointing at the fabricated files."""
    return [
        f"wav2vec2:model={files['w2v']}", f"wav2vec2:model={files['w2v']},layer=1",
        f"wav2vec2-random:model={files['w2v']}", f"clip:model={files['clip']}",
        f"clip:model={files['clip']},fps=30", f"videomae:model={files['videomae']}",
        f"videomae-random:model={files['videomae']},trailing=drop",
        f"fsfm:checkpoint={files['fsfm-fc_norm']},heads=4",
        f"fsfm:checkpoint={files['fsfm-norm']}", f"fsfm:checkpoint={files['fsfm-safetensors']}",
        f"braven-v:checkpoint={files['braven-video']}",
        f"braven-a:checkpoint={files['braven-audio']},trim_silence=true",
        *(f"autoavsr-{s}:checkpoint={files[f'autoavsr-{s}']}" for s in ("vsr", "asr", "av")),
        *(f"avhubert-{s}:checkpoint={files['avhubert']},heads=4" for s in ("a", "v", "av")),
        f"avhubert-v:checkpoint={files['avhubert-safetensors']},landmarks=synthetic",
    ]


def build(spec: str):
    """``get_backbone(spec)``; on the meta device unless it names a directory or file or
    loads weights of its own (:data:`SMALL_PRETRAINED`: copying them into meta tensors would
    read them for nothing)."""
    name, kwargs = parse_spec(spec)
    if "model" in kwargs or "checkpoint" in kwargs or name in SMALL_PRETRAINED:
        return get_backbone(spec)
    with torch.device("meta"):
        return get_backbone(spec)


def store_json(cfg: dict) -> str:
    """The bytes the store key hashes (features.extract.backbone_key)."""
    return json.dumps(cfg, sort_keys=True, default=str)


def assert_describes(spec: str) -> None:
    bb = build(spec)
    info = describe(spec)
    assert info.config == bb.config()
    assert store_json(info.config) == store_json(bb.config())  # 1 == 1.0, but not as JSON
    assert info == BackboneInfo.of(bb, spec)  # name, family, modality, weights, dim, fps, ...
    assert (info.needs_audio, info.needs_video) == (bb.needs_audio, bb.needs_video)


@pytest.mark.slow
@pytest.mark.parametrize("name", available())
def test_description_is_the_built_backbone_or_fails_as_its_build(name):
    try:
        info = describe(name)
    except (ValueError, WeightsNotFound) as err:
        # Pretrained names need a checkpoint= argument (ValueError naming it), or a hub
        # download that is not cached here: the build must refuse them the same way (their
        # files: the test below). It fails before allocating anything; from_pretrained
        # refuses the meta device.
        with pytest.raises(type(err)):
            get_backbone(name)
        return
    if info.weights == "pretrained" and name not in SMALL_PRETRAINED:
        # A hub checkpoint cached on this machine: from_pretrained cannot build on the meta
        # device, and on the CPU XLS-R 2B alone is 8.6 GB (tiny directories: the test below).
        pytest.skip(f"{name}: a cached pretrained checkpoint, not built here")
    assert_describes(name)


@pytest.mark.parametrize("spec", WITH_ARGUMENTS)
def test_description_of_specs_with_arguments(spec):
    assert_describes(spec)
    assert describe(spec).config != describe(parse_spec(spec)[0]).config


@pytest.mark.slow
def test_description_of_checkpoint_files_and_model_directories(files):
    for spec in file_specs(files):
        assert_describes(spec)
    assert describe(f"wav2vec2:model={files['w2v']}").config["normalize"] is False
    assert describe(f"fsfm:checkpoint={files['fsfm-norm']}").config["pool"] == "norm"
    assert describe(f"avhubert-v:checkpoint={files['avhubert-safetensors']}").config[
        "arch"]["heads"] == 4


def test_describe_builds_no_network_and_reads_no_weights(files, monkeypatch):
    # Imports first: importing a library is not building a model.
    from safetensors import torch as safetensors_torch
    from transformers import (  # noqa: F401
        AutoConfig,
        AutoFeatureExtractor,
        CLIPVisionConfig,
        VideoMAEConfig,
        ViTConfig,
    )

    def no_module(self, *args, **kwargs):
        raise AssertionError(f"describe built a torch module ({type(self).__name__})")

    real_load = torch.load

    def mapped_load(*args, **kwargs):
        assert kwargs.get("mmap"), "describe read a checkpoint's weights instead of mapping it"
        return real_load(*args, **kwargs)

    def no_load_file(*args, **kwargs):
        raise AssertionError("describe read a safetensors file's weights")

    monkeypatch.setattr(torch.nn.Module, "__init__", no_module)
    monkeypatch.setattr(torch, "load", mapped_load)
    monkeypatch.setattr(safetensors_torch, "load_file", no_load_file)
    for spec in (*DEMO_BACKBONES, *FULL_SIZE, *WITH_ARGUMENTS, *file_specs(files)):
        describe(spec)
    with pytest.raises(AssertionError, match="built a torch module"):
        get_backbone("wav2vec2-tiny-random")  # the patch does catch a build


@pytest.mark.parametrize("name", ["videomae-random", "wav2vec2-random"])
def test_describe_is_quick_with_hf_hub_offline(name):
    describe("wav2vec2-tiny-random")  # the one-off transformers import is not measured
    t0 = time.perf_counter()
    info = describe(name)
    seconds = time.perf_counter() - t0
    # Building VideoMAE-large takes ~16 s here, and a hub lookup that retries ~23 s.
    assert seconds < 5, f"describe({name!r}) took {seconds:.1f} s"
    assert info.config["arch_source"] in ("hub", "shipped") and info.weights == "random"


def test_uncached_hub_name_fails_at_once_with_the_download_hint():
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFound, match="hf download MCG-NJU/videomae-large"):
        describe("videomae")
    assert time.perf_counter() - t0 < 5


def test_unknown_name_and_bad_spec_fail_as_get_backbone():
    with pytest.raises(KeyError) as built:
        get_backbone("no-such-model")
    with pytest.raises(KeyError) as described:
        describe("no-such-model")
    assert str(described.value) == str(built.value) and "available: " in str(built.value)
    with pytest.raises(ValueError, match="expected NAME:key=value"):
        describe("logmel:oops")
    with pytest.raises(ValueError, match="no_such_argument"):
        describe("wav2vec2-tiny-random:no_such_argument=1")


@pytest.mark.parametrize("spec,message", [
    # Issue 14.9: each of these raised TypeError/IndexError deep inside, or was accepted.
    ("clip:model=", "model= is empty; give a str value"),
    ("wav2vec2-tiny-random:seed=abc", "seed='abc' is not an integer (int)"),
    ("clip-tiny-random:seed=1.5", "seed='1.5' is not an integer (int)"),
    ("logmel:foo=1", "logmel has no argument 'foo'; it takes no arguments"),
    ("logmel:fps=0", "logmel has no argument 'fps'"),
    ("fsfm", "fsfm needs checkpoint=... (str | pathlib.Path)"),
    ("clip-tiny-random:fps=nan", "fps='nan' must be a finite number"),
    ("avhubert-v-tiny-random:trim_silence=maybe", "is not a boolean; give true or false"),
    ("fsfm-random:config=x", "config (Any) cannot be set in a spec string"),
    ("wav2vec2-tiny-random:sede=1", "it takes seed (int), layer (int | None)"),
])
def test_every_spec_value_is_checked_against_the_typed_arguments(spec, message):
    for call in (describe, get_backbone):
        with pytest.raises(ValueError, match=re.escape(message)):
            call(spec)


def test_spec_values_are_cast_to_the_arguments_types():
    assert describe("clip-tiny-random:seed=7").config["seed"] == 7
    assert describe("avhubert-v-tiny-random:trim_silence=true").config["trim_silence"] is True
    assert describe("avhubert-v-tiny-random:trim_silence=0").config["trim_silence"] is False
    with pytest.raises(ValueError, match="a backbone spec is a string"):
        describe(5)


def test_each_call_gets_its_own_config():
    describe("wav2vec2-tiny-random").config["arch"]["hidden_size"] = 999
    assert describe("wav2vec2-tiny-random").config["arch"]["hidden_size"] == 32


def test_descriptions_are_cached_until_cleared(tmp_path):
    net = get_backbone("braven-v-tiny-random").net
    path = tmp_path / "braven.pth"
    torch.save(net.state_dict(), path)
    spec = f"braven-v:checkpoint={path}"
    first = describe(spec)
    path.unlink()
    assert describe(spec) == first  # read once per process
    clear_descriptions()
    with pytest.raises(WeightsNotFound, match="not found"):
        describe(spec)


def test_register_refuses_a_factory_describe_cannot_follow():
    def factory(*, seed: int = 0):
        raise AssertionError("never built")

    def unbuilt(*, seed: int = 1):
        raise AssertionError("never described")

    with pytest.raises(TypeError, match="must take the same arguments"):
        register("test-mismatched", unbuilt=unbuilt)(factory)
    with pytest.raises(TypeError, match="unbuilt"):
        register("test-undescribed")(factory)
    assert "test-mismatched" not in available() and "test-undescribed" not in available()


# -- the runner keys its stores as before --------------------------------------------------

@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", DEMO_BACKBONES)
def test_store_keys_from_descriptions_are_the_old_keys(name, precision):
    bb = get_backbone(name)
    # The key as features.extract computed it from the built backbone before describe().
    cfg = bb.config() if precision == "fp32" else {**bb.config(), "precision": precision}
    old = f"{bb.name}-{hashlib.sha256(store_json(cfg).encode()).hexdigest()[:8]}"
    assert backbone_key(describe(name), precision) == old
    assert backbone_key(bb, precision) == old
    for device, batch in ((None, 1), ("cpu", 4)):
        assert compute_signature(describe(name), device, batch) == \
            compute_signature(bb, device, batch)


@pytest.mark.slow
def test_the_runner_refuses_a_model_its_description_does_not_match(tiny_profile, monkeypatch):
    import dataclasses

    import avdd.features.extract as extract

    real = extract.describe

    def drifted(spec: str) -> BackboneInfo:  # an `unbuilt` out of step with its constructor
        info = real(spec)
        return dataclasses.replace(info, config={**info.config, "n_mels": 81})

    monkeypatch.setattr(extract, "describe", drifted)
    with pytest.raises(RuntimeError, match="differs from describe"):
        extract.extract(tiny_profile, ["logmel"], "favc", "train", limit=1, progress=False)
    assert not (tiny_profile.cache_dir / "features").exists()  # no store was written
