"""Where the workbook keeps things: repo root, shipped data, caches and per-profile outputs."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def cache_dir() -> Path:
    """Git-ignored cache for converted models and curated datasets (override: WORKBOOK_CACHE; empty means unset,
    not the current folder)."""
    path = Path(os.environ.get("WORKBOOK_CACHE") or REPO_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def outputs_dir(profile: str, *parts: str) -> Path:
    """outputs/<profile>/...: every run leaves its figures and results here (override: WORKBOOK_OUTPUTS; empty
    means unset). Each name must be a plain folder name, so nothing is written outside the outputs folder."""
    root = Path(os.environ.get("WORKBOOK_OUTPUTS") or REPO_ROOT / "outputs")
    path = root
    for part in (profile, *parts):
        part = str(part)
        if not part or part in (".", "..") or "/" in part or "\\" in part or os.path.isabs(part):
            raise ValueError(f"{part!r} is not a plain folder name (no '/', no '..'): profiles and run names stay "
                             f"inside the outputs folder {root}")
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


USER_ERRORS = ("ProfileError", "ConfigError")  # raised for the user's own settings: a message, not a traceback


def run_cli(main) -> int:
    """Run a command-line entry point: an error in the user's settings (an unknown profile, a setting out of range)
    prints its message and exits with status 2; anything else keeps its traceback, which a bug report needs."""
    import sys

    try:
        return main()
    except Exception as error:
        if type(error).__name__ not in USER_ERRORS:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
