"""Where the workbook keeps things: repo root, shipped data, caches and per-profile outputs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def cache_dir() -> Path:
    """Git-ignored cache for converted models and curated datasets (override: WORKBOOK_CACHE)."""
    path = Path(os.environ.get("WORKBOOK_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def outputs_dir(profile: str, *parts: str) -> Path:
    """outputs/<profile>/...: every run leaves its figures and results here (override: WORKBOOK_OUTPUTS)."""
    root = Path(os.environ.get("WORKBOOK_OUTPUTS", REPO_ROOT / "outputs"))
    path = root / profile
    for part in parts:
        path = path / part
    path.mkdir(parents=True, exist_ok=True)
    return path


def shown(path: str | os.PathLike) -> Path:
    """A path as a notebook should print it: relative to the repository when inside it, else unchanged."""
    path = Path(path)
    try:
        return path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return path
