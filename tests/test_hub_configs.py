"""Shipped architecture configs of the paper's checkpoints (src/avdd/data/configs): the
``-random`` backbones build offline from them, a local or cached hub config still wins, and the
architectures match the published parameter counts.

Full-size networks are built on the ``meta`` device (shapes only, no memory for weights): real
XLS-R 2B weights alone would take 8.6 GB of fp32.
"""

from __future__ import annotations

import json

import pytest
import torch

from avdd.backbones import get_backbone, hub
from avdd.backbones.hub import SHIPPED_CONFIGS, WeightsNotFound, resolve_config, shipped_config

# registry name, hub name, feature dim, frame rate, published parameter count, tolerance.
# XLS-R 2B: 2.16 B (Wav2Vec2Model); CLIP ViT-L/14 vision tower + projection: 303 M;
# VideoMAE-large encoder: 304 M.
FAMILIES = {
    "wav2vec2-random": ("facebook/wav2vec2-xls-r-2b", 2 * 1920, 25.0, 2.16e9, 0.01e9),
    "clip-random": ("openai/clip-vit-large-patch14", 768, 25.0, 303e6, 1.5e6),
    "videomae-random": ("MCG-NJU/videomae-large", 1024, 12.5, 304e6, 1.5e6),
}


@pytest.fixture
def offline(monkeypatch):
    """No network: a hub name resolves from the local cache only."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def no_hub(monkeypatch):
    """As on a machine whose hub cache lacks every config, whatever this machine has cached."""
    def missing(loader, name, what, **kwargs):
        raise WeightsNotFound(f"{what}: {name} is not cached")

    monkeypatch.setattr(hub, "from_pretrained", missing)


def build_on_meta(name: str):
    """The backbone with its network on the meta device: real code path, no weight memory."""
    with torch.device("meta"):
        return get_backbone(name)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_shipped_config_is_a_file_of_plain_json():
    assert set(SHIPPED_CONFIGS) == {hub_name for hub_name, *_ in FAMILIES.values()}
    for hub_name in SHIPPED_CONFIGS:
        path = shipped_config(hub_name)
        assert path is not None and path.is_file()
        fields = json.loads(path.read_text())
        assert "model_type" in fields
    assert shipped_config("facebook/wav2vec2-base") is None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_random_backbone_builds_offline_from_the_shipped_config(name, no_hub):
    hub_name, dim, fps, published, tol = FAMILIES[name]
    bb = build_on_meta(name)
    cfg = bb.config()
    assert (bb.dim, bb.fps) == (dim, fps)
    assert cfg["arch_source"] == "shipped" and cfg["model"] == hub_name
    # The hub name, not this machine's path to the file, goes into the cache key.
    assert cfg["arch"]["_name_or_path"] == hub_name
    json.dumps(cfg)  # a JSON-able cache key
    assert abs(n_params(bb.net) - published) < tol, n_params(bb.net)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_random_backbone_with_hf_hub_offline(name, offline):
    # The real offline path: the shipped config, or a cached hub config where this machine has
    # one; either way the same architecture.
    hub_name, dim, fps, *_ = FAMILIES[name]
    bb = build_on_meta(name)
    assert (bb.dim, bb.fps) == (dim, fps)
    assert bb.config()["arch_source"] in ("hub", "shipped")


def test_a_cached_hub_config_takes_precedence(monkeypatch):
    from transformers import CLIPVisionConfig

    cached = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, image_size=56, patch_size=14,
                              projection_dim=16)
    monkeypatch.setattr(hub, "from_pretrained", lambda loader, name, what, **kw: cached)
    config, source = resolve_config("openai/clip-vit-large-patch14",
                                    CLIPVisionConfig.from_pretrained, "CLIP config")
    assert (config, source) == (cached, "hub")
    bb = get_backbone("clip-random")
    assert bb.dim == 16 and bb.config()["arch_source"] == "hub"


def test_a_local_directory_takes_precedence(tmp_path, offline):
    from transformers import VideoMAEConfig

    from avdd.backbones.videomae import tiny_config

    tiny_config().save_pretrained(tmp_path)
    config, source = resolve_config(str(tmp_path), VideoMAEConfig.from_pretrained,
                                    "VideoMAE config")
    assert source == "hub" and config.hidden_size == 32


def test_unshipped_hub_names_still_fail_with_the_download_hint(no_hub):
    from transformers import AutoConfig

    with pytest.raises(WeightsNotFound, match="not cached"):
        resolve_config("facebook/wav2vec2-base", AutoConfig.from_pretrained, "Wav2Vec2 config")


@pytest.mark.parametrize("name", ["wav2vec2-tiny-random", "clip-tiny-random",
                                  "videomae-tiny-random"])
def test_tiny_backbones_record_no_arch_source(name):
    # Their config() is their cache key: it must stay what it was before configs were shipped.
    cfg = get_backbone(name).config()
    assert "arch_source" not in cfg and cfg["model"] == "config"


def test_shipped_fields_are_the_published_architectures(no_hub):
    from transformers import AutoConfig, CLIPVisionConfig, VideoMAEConfig

    w2v, _ = resolve_config("facebook/wav2vec2-xls-r-2b", AutoConfig.from_pretrained, "")
    assert (w2v.hidden_size, w2v.num_hidden_layers, w2v.num_attention_heads,
            w2v.intermediate_size) == (1920, 48, 16, 7680)
    assert w2v.do_stable_layer_norm and w2v.feat_extract_norm == "layer" and w2v.conv_bias
    assert (w2v.num_conv_pos_embeddings, w2v.num_conv_pos_embedding_groups) == (128, 16)
    assert list(w2v.conv_stride) == [5, 2, 2, 2, 2, 2, 2]  # 320-sample hop: 50 Hz

    clip, _ = resolve_config("openai/clip-vit-large-patch14",
                             CLIPVisionConfig.from_pretrained, "")
    assert (clip.hidden_size, clip.num_hidden_layers, clip.num_attention_heads,
            clip.intermediate_size, clip.image_size, clip.patch_size,
            clip.projection_dim) == (1024, 24, 16, 4096, 224, 14, 768)
    assert clip.hidden_act == "quick_gelu" and clip.layer_norm_eps == 1e-5

    vmae, _ = resolve_config("MCG-NJU/videomae-large", VideoMAEConfig.from_pretrained, "")
    assert (vmae.hidden_size, vmae.num_hidden_layers, vmae.num_attention_heads,
            vmae.intermediate_size, vmae.num_frames, vmae.tubelet_size) == \
        (1024, 24, 16, 4096, 16, 2)
    # No mean pooling: the pre-trained encoder ends in its own LayerNorm.
    assert vmae.use_mean_pooling is False and vmae.qv_bias is True
    assert (vmae.decoder_hidden_size, vmae.decoder_num_hidden_layers) == (512, 12)


def test_an_uncached_hub_name_fails_at_once_unless_downloads_are_allowed(monkeypatch):
    """Issue 14.13: a pretrained hub name spent ~26 s retrying an unreachable hub before its
    (clear) error. Without AVDD_HUB_DOWNLOAD=1 the loader is asked for local files only."""
    from avdd.backbones.hub import DOWNLOAD_ENV, WeightsNotFound, from_pretrained

    seen = {}

    def loader(name, **kw):
        seen.update(kw)
        raise OSError("not cached")

    monkeypatch.delenv(DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(WeightsNotFound, match=f"(?s)hf download org/model.*{DOWNLOAD_ENV}=1"):
        from_pretrained(loader, "org/model", "test model")
    assert seen == {"local_files_only": True}
    seen.clear()
    monkeypatch.setenv(DOWNLOAD_ENV, "1")
    with pytest.raises(WeightsNotFound):
        from_pretrained(loader, "org/model", "test model")
    assert seen == {}  # downloads allowed: the loader may go online
