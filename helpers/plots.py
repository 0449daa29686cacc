"""Figures: every run leaves its plots in outputs/<profile>/figures/."""

from __future__ import annotations

from pathlib import Path

from helpers.paths import outputs_dir


def save_figure(fig, profile: str, name: str) -> Path:
    """Save a matplotlib figure as PNG under outputs/<profile>/figures/ and return the path."""
    path = outputs_dir(profile, "figures") / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def plot_loss_curves(log_history: list[dict], best_checkpoint: str | None = None, ax=None, title: str = "training"):
    """Train and validation loss against the step, with the kept (best) checkpoint marked."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    val = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if train:
        ax.plot(*zip(*train), label="train loss", alpha=0.7)
    if val:
        ax.plot(*zip(*val), marker="o", label="validation loss")
    if best_checkpoint:
        best_step = int(Path(best_checkpoint).name.split("-")[-1])
        ax.axvline(best_step, color="tab:green", ls="--", label=f"best checkpoint (step {best_step})")
    ax.set(xlabel="step", ylabel="loss (completion tokens)", title=title)
    ax.legend()
    return ax
