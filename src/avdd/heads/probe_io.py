"""Saving and loading trained linear probes in a safe format (no pickle).

A probe file is a safetensors file holding ``weight`` (D,) float32 and ``bias`` (1,) float32;
its string metadata carries JSON: the estimator's parameters, learned scalars (best epoch,
history) and whatever the caller records (backbone spec and config, feature dimension,
training data, metrics, provenance). ``safetensors`` never executes code on load, so a probe
shared by someone else is safe to open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from avdd.heads.probe import LinearProbe

__all__ = ["save_probe", "load_probe", "probe_metadata", "import_official_probe", "PROBE_FORMAT"]

PROBE_FORMAT = "avdd-linear-probe/1"


def save_probe(probe: LinearProbe, path: str | os.PathLike, **metadata: Any) -> Path:
    """Write a fitted probe to ``path`` (``.safetensors``), atomically.

    Args:
        probe: a fitted :class:`LinearProbe`.
        **metadata: JSON-able context, e.g. ``backbone="wav2vec2"``, ``train="av1m"``,
            ``metrics={...}``, ``provenance={...}``.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "format": PROBE_FORMAT,
        "params": probe.get_params(),
        "dim": int(probe.n_features_in_),
        "best_epoch": int(probe.best_epoch_),
        "history": probe.history_,
        "metadata": metadata,
    }
    tensors = {"weight": np.ascontiguousarray(probe.coef_, np.float32),
               "bias": np.array([probe.intercept_], np.float32)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"avdd": json.dumps(head, default=_jsonable)})
    os.replace(tmp, path)
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def probe_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a probe file (without loading the weights)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe file {path} not found")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - any parse failure means "not a probe file"
        raise ValueError(f"{path} is not a safetensors probe file ({e})") from e
    if "avdd" not in meta:
        raise ValueError(f"{path} has no avdd probe header: not written by avdd.save_probe")
    head = json.loads(meta["avdd"])
    if head.get("format") != PROBE_FORMAT:
        raise ValueError(f"{path}: probe format {head.get('format')!r}, expected {PROBE_FORMAT}")
    return head


def load_probe(path: str | os.PathLike) -> tuple[LinearProbe, dict[str, Any]]:
    """Read a probe written by :func:`save_probe`.

    Returns:
        ``(probe, metadata)``: a fitted :class:`LinearProbe` (usable for
        ``decision_function``/``frame_logits``) and the caller's metadata.
    """
    from safetensors.numpy import load_file

    head = probe_metadata(path)
    tensors = load_file(str(path))
    weight, bias = tensors["weight"], tensors["bias"]
    if weight.shape != (head["dim"],) or bias.shape != (1,):
        raise ValueError(f"{path}: weight {weight.shape} / bias {bias.shape} do not match "
                         f"the recorded dimension {head['dim']}")
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        bad = int((~np.isfinite(weight)).sum()) + int(not np.isfinite(bias).all())
        raise ValueError(f"{path}: the probe holds {bad} non-finite value(s) (NaN or inf), so "
                         "every score would be meaningless; retrain it or use another file")
    probe = LinearProbe(**head["params"])
    probe.coef_ = weight.astype(np.float32)
    probe.intercept_ = float(bias[0])
    probe.best_epoch_ = head["best_epoch"]
    probe.history_ = head["history"]
    probe.n_features_in_ = head["dim"]
    probe.classes_ = np.array([0, 1])
    return probe, head["metadata"]


# --- Importing the official release (github bit-ml/ssr-dfd) -------------------------------
#
# The authors' probe is a Lightning module (``linear_probing/model.py``): ``head =
# nn.Linear(feats_dim, 1)`` applied to every frame of L2-normalised features (``apply_l2: True``
# in their configs, "always used in our experiments"), then ``logsumexp`` over time, trained
# with cross-entropy on ``[-s, s]``. So their score is s = logsumexp_t(w.x_t/||x_t|| + b)
# = b + logsumexp_t(w.x_t/||x_t||), which is exactly ``LinearProbe.decision_function``, and
# P(fake) = softmax([-s, s])[1] = sigmoid(2 s) as in ``predict_proba``: no sign or scale change.

def _lightning_safe_globals() -> list:
    """Classes a Lightning checkpoint may pickle beside the tensors, mapped to inert stand-ins
    so that ``torch.load(weights_only=True)`` reads them without importing Lightning or running
    any of the file's code; anything else is refused."""
    import collections

    class Namespace:
        """Stand-in for ``argparse.Namespace`` (attributes only, no behaviour)."""

    attr_dict = collections.OrderedDict  # AttributeDict is a dict subclass: keep its items
    return [(attr_dict, "lightning.fabric.utilities.data.AttributeDict"),
            (attr_dict, "lightning_fabric.utilities.data.AttributeDict"),
            (attr_dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
            (attr_dict, "lightning.pytorch.utilities.parsing.AttributeDict"),
            (Namespace, "argparse.Namespace")]


def _load_lightning_checkpoint(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_lightning_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - not even a torch zip file
            unsafe = []
        allowed = {name for _, name in _lightning_safe_globals()}
        unsafe = [u for u in unsafe if u not in allowed]
        if unsafe:
            raise ValueError(
                f"{path}: refusing to unpickle {', '.join(unsafe)} (loading it could run code). "
                "Import only checkpoints that hold tensors, dicts and Lightning hyper-parameters; "
                "re-save the probe with `torch.save({'state_dict': model.state_dict()}, ...)` "
                "where you trust the file") from e
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({e}); expected a "
                         "Lightning .ckpt as released in github bit-ml/ssr-dfd") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{path}: no 'state_dict' in the checkpoint; expected a Lightning .ckpt "
                         "with state_dict['head.weight'] (1, D) and state_dict['head.bias'] (1,)")
    return ckpt


def _head(path: Path, state: dict[str, Any]) -> tuple[np.ndarray, float]:
    """The linear head's (D,) weight and scalar bias, as numpy float32."""
    keys = [k for k in state if k == "head.weight" or k.endswith(".head.weight")]
    if len(keys) != 1:
        raise ValueError(f"{path}: expected one 'head.weight' in the state_dict, found "
                         f"{keys or 'none'} among {sorted(state)[:8]}")
    w, b = state[keys[0]], state.get(keys[0][: -len("weight")] + "bias")
    if b is None or tuple(w.shape)[:1] != (1,) or w.ndim != 2 or tuple(b.shape) != (1,):
        raise ValueError(f"{path}: head weight {tuple(w.shape)} / bias "
                         f"{None if b is None else tuple(b.shape)}; expected (1, D) and (1,), "
                         "i.e. nn.Linear(D, 1)")
    return w.detach().float().numpy()[0].copy(), float(b.detach().float()[0])


def _epoch(path: Path, ckpt: dict[str, Any]) -> int:
    """Lightning's 0-based epoch of the checkpoint (from the file or its ``epoch=NN`` name);
    -1 when neither records it (the released files were stripped of ``epoch``)."""
    import re

    if isinstance(ckpt.get("epoch"), int):
        return int(ckpt["epoch"])
    m = re.search(r"epoch=(\d+)", path.name)
    return int(m.group(1)) if m else -1


def import_official_probe(ckpt_path: str | os.PathLike, out_path: str | os.PathLike,
                          backbone: str) -> Path:
    """Convert a probe checkpoint of the official release into an avdd probe file.

    Args:
        ckpt_path: Lightning ``.ckpt`` (``state_dict['head.weight'] (1, D)``,
            ``state_dict['head.bias'] (1,)``, optional ``epoch``, ``hyper_parameters`` ...),
            read with ``torch.load(weights_only=True)``: only tensors, containers and Lightning's
            hyper-parameter containers (as inert stand-ins) are accepted.
        out_path: the ``.safetensors`` probe to write (:func:`save_probe` format).
        backbone: spec string of the backbone whose features the probe was trained on (e.g.
            ``"wav2vec2"`` for the released ``wav2vec2/model-epoch=48.ckpt``, D = 3840); recorded
            so that ``avdd score`` builds the right feature extractor.

    Returns:
        ``out_path``. The probe's video score is b + logsumexp_t(w.x_t/||x_t||), identical to
        the official ``LinearModel.forward`` on L2-normalised features.
    """
    import hashlib

    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (the released probes are "
                                "linear_probing/checkpoints/*/model-epoch=NN.ckpt in bit-ml/ssr-dfd)")
    ckpt = _load_lightning_checkpoint(path)
    w, b = _head(path, ckpt["state_dict"])
    hp = ckpt.get("hyper_parameters") or {}
    mh = (hp.get("config") or {}).get("model_hparams", {}) if isinstance(hp, dict) else {}
    if mh.get("feats_dim") not in (None, len(w)):
        raise ValueError(f"{path}: hyper_parameters say feats_dim={mh['feats_dim']} but the "
                         f"head has {len(w)} inputs; the checkpoint is inconsistent")
    probe = LinearProbe()
    probe.coef_, probe.intercept_ = w.astype(np.float32), b
    probe.best_epoch_, probe.history_ = _epoch(path, ckpt), []
    probe.n_features_in_, probe.classes_ = len(w), np.array([0, 1])
    return save_probe(
        probe, out_path, backbone=backbone, source=str(path.resolve()),
        source_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        release="official release (github bit-ml/ssr-dfd, Lightning checkpoint)",
        input_type=mh.get("input_type"),
        lightning_version=ckpt.get("pytorch-lightning_version"),
        note="score = b + logsumexp_t(w.x_t/||x_t||), P(fake) = sigmoid(2 score), as upstream")
