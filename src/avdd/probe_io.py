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

from .probe import LinearProbe

__all__ = ["save_probe", "load_probe", "probe_metadata", "PROBE_FORMAT"]

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
    probe = LinearProbe(**head["params"])
    probe.coef_ = weight.astype(np.float32)
    probe.intercept_ = float(bias[0])
    probe.best_epoch_ = head["best_epoch"]
    probe.history_ = head["history"]
    probe.n_features_in_ = head["dim"]
    probe.classes_ = np.array([0, 1])
    return probe, head["metadata"]
