"""Result tables with provenance, and the paper's reference numbers.

Every table the book shows is written with a JSON sidecar saying how it was made: the profile
(synthetic or real data), the backbones' weights (handcrafted, random or pretrained), the
configuration, the git commit and the package versions.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

#: Packages whose versions change numbers.
_PACKAGES = ("avdd", "torch", "numpy", "scipy", "scikit-learn", "av", "pandas", "transformers")


def git_state() -> dict[str, Any]:
    """Commit and dirtiness of the source tree avdd is imported from (``unknown`` outside git)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True, timeout=10).stdout
        return {"git_sha": sha, "git_dirty": bool(dirty.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "git_dirty": None}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(**context: Any) -> dict[str, Any]:
    """A provenance record: ``context`` (profile, data, weights, config…) + git + versions."""
    return {
        **context,
        **git_state(),
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save_table(df: pd.DataFrame, path: Path, prov: dict[str, Any]) -> Path:
    """Write ``df`` as CSV and ``prov`` beside it as ``<name>.provenance.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    path.with_suffix(".provenance.json").write_text(json.dumps(prov, indent=2, default=str))
    return path


def load_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    path = Path(path)
    prov_file = path.with_suffix(".provenance.json")
    prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
    return pd.read_csv(path), prov


