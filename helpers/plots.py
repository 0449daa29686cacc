"""Figures: every run leaves its plots in outputs/<profile>/figures/."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import outputs_dir


def save_figure(fig, profile: str, name: str) -> Path:
    """Save a matplotlib figure as PNG under outputs/<profile>/figures/ and return the path."""
    path = outputs_dir(profile, "figures") / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
