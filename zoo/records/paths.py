"""Where zoo keeps things: the user cache (downloads, prepared data) and the runs folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``."""
    if env := os.environ.get("ZOO_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "zoo"


def downloads_dir() -> Path:
    """Data sets found nowhere else are downloaded here (the 'user cache' of the search order)."""
    return cache_dir() / "downloads"


def prepared_dir() -> Path:
    return cache_dir() / "prepared"


def runs_dir() -> Path:
    """``$ZOO_RUNS_DIR``, else ``./runs``."""
    return Path(os.environ.get("ZOO_RUNS_DIR", "runs")).expanduser()


def safe_name(name: str, fallback: str = "item") -> str:
    """``name`` as a file name: runs of anything but letters, digits, ``.``, ``-`` and ``_``
    become one ``_``."""
    import re

    return re.sub(r"[^\w.-]+", "_", name) or fallback
