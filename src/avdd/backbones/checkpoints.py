"""Reading fairseq checkpoints (AV-HuBERT) without fairseq and without running pickled code.

A fairseq ``.pt`` file is ``torch.save({'model': state_dict, 'cfg': ..., 'task_state': ...,
...})``. Beside the tensors it pickles objects of fairseq, omegaconf, sentencepiece and
argparse; unpickling those normally imports the libraries and lets the file call any function
it names. Three ways in, safest first:

1. ``torch.load(weights_only=True)`` (tensors, containers and ``argparse.Namespace`` only):
   works for files that hold nothing else, and for our own converted files.
2. ``trust=True``: a restricted unpickler. Classes of the config libraries above are replaced
   by :class:`InertStub` (it accepts any arguments and state and does nothing), torch's tensor
   rebuild functions and a short list of plain builtins/containers are allowed, and every other
   global (``os.system``, ``builtins.eval``, ``subprocess.*``, ...) is refused. Nothing is
   imported while loading. This still parses an untrusted byte stream with Python's pickle
   machine, so use it only on files from a source you trust (the AV-HuBERT model zoo).
3. :func:`convert_to_safetensors` once (with ``trust=True``), then load the ``.safetensors``
   file: safetensors holds raw tensors and a string metadata dict, nothing executable.

Why one module: every checkpoint any family reads goes through these loaders, so what may be
unpickled (and what a refusal says) is decided in one place.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import io
import json
import pickle
import re
import types
import zipfile
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avdd.backbones.hub import WeightsNotFound

# Top-level modules whose classes become inert stubs. fairseq/omegaconf/sentencepiece/argparse
# are what fairseq checkpoints pickle (configs, dictionaries, tokenizers); omegaconf metadata
# pickles ``typing.Any``; fairseq's ``extra_state`` can hold numpy scalars; AV-HuBERT's own task
# and model configs live in ``avhubert``/``hubert*`` modules.
STUB_MODULES = frozenset({"fairseq", "omegaconf", "sentencepiece", "argparse", "typing",
                          "numpy", "avhubert", "hubert", "hubert_pretraining", "hubert_asr"})

_torch_utils = torch._utils  # noqa: SLF001 - the rebuild functions torch.save refers to

# The only real callables a trusted load may reach: plain data types, and the functions that
# torch.save uses to rebuild tensors from storages.
SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{("builtins", t.__name__): t for t in (dict, list, tuple, set, frozenset, int, float,
                                             complex, bool, str, bytes, bytearray, slice)},
    **{("collections", t.__name__): t for t in (OrderedDict, defaultdict, Counter, deque)},
    ("_codecs", "encode"): _codecs.encode,  # protocol 2 pickles bytes this way
    **{("torch._utils", n): getattr(_torch_utils, n)
       for n in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                 "_rebuild_parameter_with_state") if hasattr(_torch_utils, n)},
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    **{("torch", n): getattr(torch, n) for n in ("float64", "float32", "float16", "bfloat16",
                                                 "int64", "int32", "int16", "int8", "uint8",
                                                 "bool", "complex64", "complex128")},
}


StateDict = dict[str, torch.Tensor]
ConfigOrFn = Mapping[str, Any] | Callable[[StateDict], Mapping[str, Any]]


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the fix."""


class UntrustedCheckpoint(CheckpointError):
    """The file pickles objects beyond tensors and was not marked as trusted."""


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that the restricted unpickler does not allow."""


class InertStub:
    """Stands in for a pickled class of a config library: takes any constructor arguments and
    any state, keeps nothing and runs nothing. Subclassed per pickled name for readable reprs.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> InertStub:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    # Pickled dict/list subclasses are filled item by item (SETITEMS/APPENDS opcodes).
    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<inert {type(self).__module__}.{type(self).__qualname__}>"


_STUBS: dict[tuple[str, str], type] = {}


def stub_class(module: str, name: str) -> type:
    """The inert stand-in for ``module.name`` (one class per name, created on first use)."""
    key = (module, name)
    if key not in _STUBS:
        _STUBS[key] = type(name.rpartition(".")[2], (InertStub,),
                           {"__module__": module, "__qualname__": name})
    return _STUBS[key]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals are only :data:`SAFE_GLOBALS` or stubs for
    :data:`STUB_MODULES`; it never imports a module. Anything else raises
    :class:`RefusedGlobal` before it could be called."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 2 (torch.save's default) writes Python 2 names (``__builtin__.unicode`` for
        # ``str``); map them back as pickle's own find_class does, without importing anything.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        if module.split(".")[0] in STUB_MODULES:
            return stub_class(module, name)
        raise RefusedGlobal(f"refused to load global {module}.{name}: not a tensor, a plain "
                            "container or a known config class")


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


# What torch.load(pickle_module=...) needs: ``Unpickler`` (subclassed by torch to resolve
# storages first), ``load`` (legacy format) and ``__name__``.
restricted_pickle = types.ModuleType("avdd_restricted_pickle")
restricted_pickle.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler` (plain pickles, no torch storages)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _unsupported_global(err: Exception) -> str | None:
    """The class or function a weights-only load refused (None: it failed for another
    reason, e.g. the file is no pickle at all)."""
    # "GLOBAL x.Y was not an allowed global", or "unsupported GLOBAL posix.system whose module
    # posix is blocked" (torch words it differently for blocked modules).
    m = re.search(r"GLOBAL ([\w.]+)", str(err))
    return m.group(1) if m else None


#: What torch.load raises on a file that is no pickle or zip checkpoint at all (a text file,
#: a truncated download), as opposed to a checkpoint that pickles more than tensors.
NOT_A_CHECKPOINT: tuple[type[Exception], ...] = (
    KeyError, EOFError, IndexError, RuntimeError, ValueError, AttributeError, UnicodeDecodeError)


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    reason = re.search(r"WeightsUnpickler error: ([^\n]+)", str(err))
    detail = reason.group(1) if reason else f"{type(err).__name__}: {err}"
    return CheckpointError(f"{path}: is not a checkpoint torch.load can read ({detail[:200]}); "
                           "check the path, or download or copy the file again")


def load_weights_only(path: Path, *, mmap: bool = False, allow: Sequence[type] = (),
                      advice: str) -> Any:
    """``torch.load(path, weights_only=True)`` (plus the classes in ``allow``) with messages
    that name the file: a :class:`CheckpointError` naming the first pickled class or function
    beyond tensors, followed by ``advice`` (what to do if the file is trusted), or saying that
    the file is no checkpoint at all (a text file, a truncated download)."""
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        culprit = _unsupported_global(err)
        if culprit is None:
            raise _unreadable(path, err) from err
        raise CheckpointError(f"{path}: refused, it pickles {culprit} beyond tensors, and "
                              f"loading it would run that code {advice}") from err
    except NOT_A_CHECKPOINT as err:
        raise _unreadable(path, err) from err


def _torch_load(path: Path, trust: bool) -> Any:
    mmap = zipfile.is_zipfile(path)  # map the ~6 GB file instead of reading it into memory
    try:
        import argparse

        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        culprit = _unsupported_global(err)
        if culprit is None:
            raise _unreadable(path, err) from err
        if not trust:
            raise UntrustedCheckpoint(
                f"{path}: refused. Besides tensors the file pickles Python objects (first one: "
                f"{culprit}); unpickling them can run arbitrary code, so it is not done "
                "silently. If the file comes from a source you trust (e.g. the AV-HuBERT model "
                "zoo), either add trust_checkpoint=true to the backbone spec (e.g. "
                "avhubert-v:checkpoint=PATH,trust_checkpoint=true) / trust_checkpoint=True in "
                "Python (a restricted unpickler that turns fairseq, "
                "omegaconf, sentencepiece and argparse objects into inert stubs and refuses any "
                "other code), or convert it once with `avdd convert-checkpoint SRC DST --trust-checkpoint` to a "
                ".safetensors file that loads safely from then on."
            ) from err
    except NOT_A_CHECKPOINT as err:
        raise _unreadable(path, err) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap,
                          pickle_module=restricted_pickle)
    except RefusedGlobal as err:
        raise CheckpointError(f"{path}: refused even as a trusted file: {err}. This is not a "
                              "plain fairseq checkpoint; do not load it.") from err


def load_fairseq_state(path: str | Path, *, trust: bool,
                       lazy: bool = False) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a fairseq checkpoint, or all tensors of a ``.safetensors``.

    Args:
        path: a fairseq ``.pt`` (``{'model': state_dict, ...}``) or a ``.safetensors`` file.
        trust: allow the restricted unpickler when plain ``weights_only`` loading is refused.
        lazy: for reading shapes only: a ``.safetensors`` file gives meta tensors
            (:func:`safetensors_shapes`). A zip-format ``.pt`` is memory-mapped either way.
    Returns:
        ``{name: tensor}`` with the file's own key names (no mapping here).
    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpoint: the file pickles objects and ``trust`` is False.
        CheckpointError: a global outside the allow-list, or no tensor state dict in the file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        if lazy:
            return safetensors_shapes(path)
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = _torch_load(path, trust)
    state = obj.get("model", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: no state dict found (expected {{'model': state_dict}})")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: 'model' holds non-tensor entries: {bad[:5]}")
    return dict(state)


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
                       "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
                       "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                       "BOOL": torch.bool}


def safetensors_shapes(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file as a ``meta`` tensor of its shape and dtype,
    read from the file's header without its data: what a loader needs to infer an architecture
    from the shapes (:func:`avdd.backbones.describe`), and nothing it could compute with."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        out = {}
        for key in f.keys():
            sl = f.get_slice(key)
            out[key] = torch.empty(sl.get_shape(), dtype=_SAFETENSORS_DTYPES[sl.get_dtype()],
                                   device="meta")
        return out


def safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` file (``{}`` if it has none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def convert_to_safetensors(
    src: str | Path, dst: str | Path, *, trust: bool,
    transform: Callable[[StateDict], StateDict] | None = None,
    config: ConfigOrFn | None = None,
) -> Path:
    """Write the ``model`` tensors of ``src`` to ``dst`` (safetensors), loadable safely later.

    Args:
        src: fairseq ``.pt`` file. dst: output ``.safetensors`` path.
        trust: as in :func:`load_fairseq_state` (conversion of a fairseq file needs it).
        transform: applied to the state dict first (e.g. key mapping, dropping the decoder).
        config: the architecture (or a function of the transformed state giving it), stored
            as JSON under the ``config`` metadata key.
    Returns:
        ``dst`` as a path. Metadata: ``source`` (file name), ``config`` (JSON), ``format``.
    """
    from safetensors.torch import save_file

    state = load_fairseq_state(src, trust=trust)
    if transform is not None:
        state = transform(state)
    if callable(config):
        config = config(state)
    dst = Path(dst).expanduser()
    dst.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage; mmap-backed views are copied here.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    meta = {"format": "pt", "source": Path(src).name, "config": json.dumps(dict(config or {}))}
    save_file(tensors, str(dst), metadata=meta)
    return dst


# -- state dicts of released checkpoints (BRAVEn, Auto-AVSR, GE2E) --------------------------
# Lightning, torch tutorials, fairseq-ish, and Resemblyzer's GE2E encoder ("model_state").
_WRAPPERS = ("state_dict", "model_state_dict", "model", "model_state")

_MAX_NAMED = 20  # keys listed in a mismatch message before "... and N more"

def unwrap_state(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """A state dict out of a raw or wrapped checkpoint object.

    Descends through ``state_dict`` / ``model_state_dict`` / ``model`` / ``model_state``
    entries, keeps the tensors and strips a ``module.`` (DDP) or ``model.`` (a Lightning
    module holding the network as ``self.model``) prefix shared by every key.
    """
    while isinstance(obj, dict):
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} \
        if isinstance(obj, dict) else {}
    if not state:
        raise CheckpointError(f"{source}: no state dict of tensors found (expected a plain "
                              "state dict or one under 'state_dict'/'model').")
    stripped = True
    while stripped:
        stripped = False
        for prefix in ("module.", "model."):
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped = True
    return state

def read_state_dict(path: str | Path, what: str, download: str, *,
                    lazy: bool = False) -> dict[str, torch.Tensor]:
    """Read an ESPnet-style ``.pth`` without running pickled code, and unwrap it.

    Args:
        path: the checkpoint file.
        what: the model, for messages (``"BRAVEn"``).
        download: where the file comes from, for the missing-file message.
        lazy: memory-map a zip-format file instead of reading it, for a caller that reads only
            the tensors' shapes (:func:`avdd.backbones.describe`): their data are then never
            read.
    Raises:
        WeightsNotFound: no such file; the message says what to download.
        CheckpointError: the file pickles more than tensors, or holds no state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFound(f"{what}: checkpoint {path} not found. Download {download} "
                              f"and pass checkpoint=PATH to the backbone.")
    obj = load_weights_only(
        path, mmap=lazy and zipfile.is_zipfile(path),
        advice="(e.g. a Lightning checkpoint's hyper-parameters). If you trust the file, "
               "convert it once in a separate environment: torch.save(torch.load(p, "
               "weights_only=False)['state_dict'], 'clean.pth'), then pass the clean file.")
    return unwrap_state(obj, str(path))

def _named(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMED])
    return shown + (f" ... and {len(keys) - _MAX_NAMED} more" if len(keys) > _MAX_NAMED else "")

def load_checked(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``net.load_state_dict(state)``, raising :class:`CheckpointError` that names every
    missing and unexpected key (BatchNorm ``num_batches_tracked`` may be absent: unused in
    eval)."""
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{source}: weights do not fit the model: {err}") from err
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{source}: state dict does not match the model; missing keys: "
                              f"{_named(missing) or 'none'}; unexpected keys: "
                              f"{_named(list(result.unexpected_keys)) or 'none'}")
