"""Where the study's cached results live.

Every result table and probe of the study is cached under the profile's cache folder, keyed by
what computed it, so a rerun after a plotting change recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from avdd.config import Profile


def result_path(profile: Profile, name: str, config: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    return profile.cache_dir / "results" / f"{name}-{key[:12]}.csv"
