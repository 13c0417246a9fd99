"""Generate the synthetic audio-visual deepfake benchmark (``avdd synth``).

Each domain module plans its clips in the parent process (identities, splits, which clip gets
which manipulation) and renders them in worker processes; every clip draws from its own seeded
generator, so the output does not depend on the number of workers or the order they finish.
Metadata files are written per domain once its clips exist, ``synth_annotations.jsonl`` last;
``ROOT/synth_config.json`` is written at the very end and marks a complete benchmark.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

from avdd.processes import forking
from avdd.progress import Meter
from avdd.synth import av1m, avlips, dfe, favc
from avdd.synth.config import DOMAINS, VERSION, SynthConfig

__all__ = ["generate"]

MODULES = {"av1m": av1m, "favc": favc, "avlips": avlips, "dfe": dfe}
CONFIG_FILE, PARTIAL_FILE = "synth_config.json", ".synth_partial.json"
_WORK_ORDER = ("av1m", "favc", "dfe", "avlips")  # costliest tasks first: fewer stragglers at the end


def _stamp(cfg: SynthConfig) -> dict:
    from avdd import __version__

    return {"generator": "avdd.synth", "version": VERSION, "config": cfg.to_json(), "avdd": __version__}


def _same(stored: dict, stamp: dict) -> bool:
    """Same generator, version and config (timing fields aside)."""
    return all(stored.get(k) == stamp[k] for k in ("generator", "version", "config"))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _render(job: tuple) -> tuple[str, int, list[dict]]:
    domain, task, cfg, root = job
    try:
        return domain, task["index"], MODULES[domain].render_task(task, cfg, root)
    except Exception as err:  # name the clip: worker tracebacks are otherwise hard to place
        raise RuntimeError(f"synth: {domain} clip {task['index']} ({task.get('rel')}) failed: {err!r}") from err


def _one_blas_thread():
    """One BLAS/OpenMP thread: the workers already fill the cores, and a fixed thread count
    keeps floating-point sums (hence pixels) independent of ``workers``."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - output then may differ between worker counts
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _init_worker() -> None:
    _one_blas_thread()  # the limit holds for the worker's lifetime


def _in_process(jobs: list[tuple]):
    with _one_blas_thread():
        yield from map(_render, jobs)


def _run(jobs: list[tuple], workers: int, progress: bool):
    """Yield ``_render`` results, in worker completion order."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="synth", unit="clip", file=sys.stderr)
    pool = None
    if workers <= 1:
        results = _in_process(jobs)
    else:
        # fork where it is safe (Linux): workers start instantly and need no importable
        # __main__. espeak-ng is loaded and unloaded around every utterance (see tts.py), so
        # a fork never inherits a live library.
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with forking():
            pool = multiprocessing.get_context(method).Pool(workers, initializer=_init_worker)
        results = pool.imap_unordered(_render, jobs, chunksize=1)
    try:
        for result in results:
            if bar is not None:
                bar.update(1)
            yield result
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()


def generate(out: str | Path, config: SynthConfig | None = None, *, workers: int = 2,
             overwrite: bool = False, progress: bool = False, **overrides) -> Path:
    """Write the synthetic benchmark under ``out`` (layout: docs/CONTRACTS.md).

    Args:
        out: benchmark root ROOT; domains go to ``ROOT/<domain>/``.
        config: all generation knobs (default :class:`SynthConfig`).
        workers: rendering processes (1 renders in this process); does not change the output.
        overwrite: replace a benchmark that ``out`` holds with a different config.
        progress: show a progress bar on stderr.
        **overrides: fields of :class:`SynthConfig` to change, e.g. ``seed=1, scale=0.1``.

    Returns:
        ``out`` as a Path. If ``ROOT/synth_config.json`` already records the same config, nothing
        is done; an interrupted run with the same config resumes after its completed domains.

    Raises:
        FileExistsError: ``out`` holds a benchmark of another config and ``overwrite`` is False.
    """
    cfg = dataclasses.replace(config or SynthConfig(), **overrides)
    root = Path(out)
    stamp = _stamp(cfg)
    done, partial = _read(root / CONFIG_FILE), _read(root / PARTIAL_FILE)
    if done is not None and _same(done, stamp):
        return root
    if done is not None and not overwrite:
        raise FileExistsError(
            f"{root} holds a synthetic benchmark made with another config ({root / CONFIG_FILE}); "
            "pass overwrite=True (CLI: --overwrite) or choose another output folder")
    if done is None and partial is None:  # never delete folders this generator did not write
        foreign = [d for d in DOMAINS if (root / d).is_dir() and any((root / d).iterdir())]
        if foreign:
            raise FileExistsError(f"{root} already has {foreign} folders not written by avdd synth; "
                                  "choose an empty or new output folder")
    elif done is not None or not _same(partial, stamp):
        for domain in DOMAINS:
            shutil.rmtree(root / domain, ignore_errors=True)
        (root / CONFIG_FILE).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / PARTIAL_FILE).write_text(json.dumps(stamp, indent=1))

    todo = [d for d in _WORK_ORDER if d in cfg.domains and not (root / d / "synth_annotations.jsonl").exists()]
    started = time.time()
    plans = {}
    for domain in todo:
        shutil.rmtree(root / domain, ignore_errors=True)  # a half-written domain starts afresh
        plans[domain] = MODULES[domain].plan(cfg)
    jobs = [(d, task, cfg, root) for d in todo for task in plans[d]]
    results: dict[str, dict[int, list[dict]]] = {d: {} for d in todo}
    meter = Meter(f"synthesising the benchmark ({', '.join(todo)})", len(jobs), "tasks")
    for domain, index, records in _run(jobs, workers, progress):
        meter.update()
        results[domain][index] = records
        if len(results[domain]) == len(plans[domain]):
            _finalise(domain, [r for i in sorted(results[domain]) for r in results[domain][i]], cfg, root)
    meter.close()
    stamp["seconds"] = round(time.time() - started, 1)
    stamp["workers"] = workers
    (root / CONFIG_FILE).write_text(json.dumps(stamp, indent=1))
    (root / PARTIAL_FILE).unlink(missing_ok=True)
    return root


def _finalise(domain: str, records: list[dict], cfg: SynthConfig, root: Path) -> None:
    """Domain metadata, then the annotations (their presence marks the domain complete)."""
    MODULES[domain].finalise(records, cfg, root)
    path = root / domain / "synth_annotations.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(record["annotation"]) + "\n")
    os.replace(tmp, path)
