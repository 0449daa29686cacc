"""Every figure of the workbook, in one style: each notebook saves its plots with `save_figure`, so every run
leaves them in outputs/<profile>/figures/. The plots take plain results (dataclasses or results.json
entries) and an optional matplotlib axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.paths import outputs_dir

if TYPE_CHECKING:
    from helpers.benchmark import BenchResult
    from helpers.evaluation import EvalResult
    from helpers.inference import PriceDistribution
    from helpers.sweeps import SweepRun

OUTCOME_COLORS = {"hit": "tab:green", "near": "tab:orange", "miss": "tab:red"}


def save_figure(fig, profile: str, name: str) -> Path:
    """Save a matplotlib figure as PNG under outputs/<profile>/figures/; returns the path relative to the repository
    (what a printed line should show: the same on every machine), or absolute where outputs live elsewhere."""
    from helpers.paths import shown

    path = outputs_dir(profile, "figures") / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return shown(path)


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


# ---- evaluation: predictions against truth, and models against each other ----


def plot_scatter(result: EvalResult, ax=None, limit: float | None = None):
    """Prediction vs truth, coloured hit / near / miss, with the y = x line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    top = limit or max(max(result.truths), max(result.predictions)) * 1.05
    for outcome, color in OUTCOME_COLORS.items():
        xs = [t for t, o in zip(result.truths, result.outcomes) if o == outcome]
        ys = [p for p, o in zip(result.predictions, result.outcomes) if o == outcome]
        ax.scatter(xs, ys, s=6, alpha=0.6, color=color, label=f"{outcome} ({len(xs) / result.n:.0%})")
    ax.plot([0, top], [0, top], color="0.3", lw=1)
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="true price ($)", ylabel="predicted price ($)",
           title=f"{result.model}\nMAE ${result.mae:,.2f}, RMSLE {result.rmsle:.2f}, hits {result.hit_rate:.0%}")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_running_error(results: Sequence[EvalResult], ax=None):
    """Mean absolute error over the first k items: shows when an estimate has settled."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for result in results:
        total, running = 0.0, []
        for i, (p, t) in enumerate(zip(result.predictions, result.truths), 1):
            total += abs(p - t)
            running.append(total / i)
        ax.plot(range(1, len(running) + 1), running, label=result.model)
    ax.set(xlabel="items scored", ylabel="running MAE ($)", title="running error")
    ax.legend(fontsize=8)
    return ax


KIND_COLORS = {"baseline": "tab:blue", "base-llm": "tab:gray", "fine-tuned": "tab:purple", "oracle": "tab:green"}


def plot_comparison(entries: Sequence[dict], ax=None, metric: str = "mae"):
    """One bar per results.json entry (best first), 95% CI whiskers, coloured by kind; oracles as a line."""
    import matplotlib.pyplot as plt

    if not entries:
        raise ValueError("no results to compare: run the notebooks that record results first (04, 05, 07)")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.45 * len(entries) + 1.5))
    models = sorted((e for e in entries if e["kind"] != "oracle"), key=lambda e: e[metric], reverse=True)
    labels = [f"{e['model']} (n={e['n']}, {e.get('unparseable', 0)} filled)" for e in models]
    values = [e[metric] for e in models]
    ax.barh(labels, values, color=[KIND_COLORS.get(e["kind"], "tab:blue") for e in models])
    if metric == "mae":
        low = [v - e["mae_ci95"][0] for v, e in zip(values, models)]
        high = [e["mae_ci95"][1] - v for v, e in zip(values, models)]
        ax.errorbar(values, range(len(models)), xerr=[low, high], fmt="none", color="0.2", capsize=2, lw=1)
    right = [e["mae_ci95"][1] if metric == "mae" else v for v, e in zip(values, models)]
    for y, (x, v) in enumerate(zip(right, values)):
        ax.text(x + 0.01 * max(right), y, f"{v:,.2f}" if metric != "hit_rate" else f"{v:.0%}", va="center",
                fontsize=8)
    for e in entries:
        if e["kind"] == "oracle":
            ax.axvline(e[metric], color=KIND_COLORS["oracle"], ls="--", label=f"{e['model']}: {e[metric]:,.2f}")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in KIND_COLORS.items() if k != "oracle"]
    ax.legend(handles + ax.get_legend_handles_labels()[0],
              [k for k in KIND_COLORS if k != "oracle"] + ax.get_legend_handles_labels()[1], fontsize=8,
              loc="lower right")
    ax.set(xlabel={"mae": "mean absolute error ($, lower is better)", "rmsle": "RMSLE (lower is better)",
                   "hit_rate": "hit rate (higher is better)"}.get(metric, metric),
           title="every model on the test split")
    return ax


def plot_groups(entries: Sequence[dict], group: str = "by_band", ax=None):
    """MAE per price band (or category) for a few results side by side."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    keys = list(dict.fromkeys(k for e in entries for k in e[group]))
    width = 0.8 / max(1, len(entries))
    for i, e in enumerate(entries):
        xs = np.arange(len(keys)) + i * width
        ax.bar(xs, [e[group].get(k, {}).get("mae", np.nan) for k in keys], width,
               label=e["model"], color=KIND_COLORS.get(e["kind"]) if len(entries) <= 1 else None)
    ax.set_xticks(np.arange(len(keys)) + width * (len(entries) - 1) / 2, keys,
                  rotation=0 if group == "by_band" else 60, ha="center" if group == "by_band" else "right",
                  fontsize=8)
    ax.set(ylabel="MAE ($)", title=f"error {'by price band' if group == 'by_band' else 'by category'}")
    ax.legend(fontsize=8)
    return ax


# ---- inference: the model's price distribution ----


def plot_price_distribution(dist: PriceDistribution, truth: float | None = None, greedy: float | None = None,
                            ax=None, limit: int = 1000):
    """The model's probabilities over prices (binned), with the truth and the three point estimates."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    bins = np.linspace(0, limit, 51)
    ax.hist(dist.values, bins=bins, weights=dist.probs, color="tab:purple", alpha=0.6, label="model probability")
    marks = {"truth": (truth, "black", "-"), "greedy": (greedy, "tab:red", ":"),
             "expected (mean)": (dist.expected, "tab:blue", "--"), "median": (dist.median, "tab:green", "--")}
    for name, (value, color, style) in marks.items():
        if value is not None:
            ax.axvline(value, color=color, ls=style, lw=1.5, label=f"{name} ${value:,.0f}")
    ax.set(xlabel="price ($)", ylabel="probability", xlim=(0, limit))
    ax.legend(fontsize=8)
    return ax


# ---- the payoff ladder and the data curve ----


def plot_ladder(rows: Sequence[dict], course: Sequence[tuple[str, float]] | None = None, ax=None):
    """Our models (bars with 95% CI) and, in a separate labelled group, the course's real-data figures
    (default: `helpers.ladder.COURSE_REAL_DATA`)."""
    import matplotlib.pyplot as plt

    if course is None:
        from helpers.ladder import COURSE_REAL_DATA as course

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.42 * (len(rows) + len(course)) + 2))
    labels = [f"{r['step']}: {r['model']}" for r in rows] + [f"[course, real data] {name}" for name, _ in course]
    values = [r["mae"] for r in rows] + [v for _, v in course]
    colors = [KIND_COLORS.get(r["kind"], "tab:blue") for r in rows] + ["0.75"] * len(course)
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, values, color=colors)
    ax.errorbar([r["mae"] for r in rows], ys[: len(rows)],
                xerr=[[r["mae"] - r["ci_low"] for r in rows], [r["ci_high"] - r["mae"] for r in rows]],
                fmt="none", color="0.2", capsize=2, lw=1)
    right = [r["ci_high"] for r in rows] + [v for _, v in course]  # labels clear of the whiskers
    for y, v, x in zip(ys, values, right):
        ax.text(x, y, f" ${v:,.2f}", va="center", fontsize=8)
    ax.set_yticks(ys, labels, fontsize=8)
    if course:
        ax.axhline(ys[len(rows) - 1] - 0.5, color="0.5", lw=0.8, ls=":")
    n = rows[0]["n"] if rows else 0
    ax.set(xlabel="mean absolute error ($), 95% CI", title=f"the payoff ladder: our models on the same {n} test "
           "items; grey: the course's figures on real data (cited)")
    return ax


def plot_data_curve(curve: dict, ax=None):
    """MAE against training examples for each method (log x), from benchmarks/results/.../data_curve.json."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for method, points in curve["methods"].items():
        xs = [p["n_train"] for p in points]
        ys = [p["mae"] for p in points]
        ax.plot(xs, ys, marker="o", label=method)
    if curve.get("oracle_mae"):
        ax.axhline(curve["oracle_mae"], color="tab:green", ls="--", label="noise-floor oracle")
    ax.set_xscale("log")
    ax.set(xlabel="training examples", ylabel=f"test MAE ($, {curve.get('n_test', '?')} items)",
           title="when does fine-tuning pay?")
    ax.legend(fontsize=8)
    return ax


# ---- the hyperparameter lab ----


def plot_sweep(results: list[SweepRun], sweep: str, ax=None):
    """Validation loss per swept value (bars), with parameters, time or speed on a second axis; the epochs
    sweep plots its validation curve with the best checkpoint marked."""
    import matplotlib.pyplot as plt

    from helpers.sweeps import SECOND_AXIS, SECOND_LABEL, of

    runs = of(results, sweep)
    if not runs:
        raise ValueError(f"no results for sweep {sweep!r}: run it first (run_sweeps(..., only=[{sweep!r}]))")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    if sweep == "epochs":
        run = runs[0]
        xs, ys = zip(*run.val_curve)
        ax.plot(xs, ys, marker="o", label="validation loss")
        if run.extra.get("train_curve"):
            ax.plot(*zip(*run.extra["train_curve"]), alpha=0.6, label="training loss")
        ax.axvline(run.best_epoch, color="tab:green", ls="--", label=f"best: epoch {run.best_epoch:g}")
        ax.set(xlabel="epoch", ylabel="validation loss", title=run.label)
        ax.legend(fontsize=8)
        return ax
    labels = [r.label for r in runs]
    ax.bar(labels, [r.final_val_loss for r in runs], color="tab:purple", alpha=0.75)
    low = min(r.final_val_loss for r in runs)
    high = max(r.final_val_loss for r in runs)
    ax.set_ylim(low - (high - low) * 0.6 - 1e-3, high + (high - low) * 0.3 + 1e-3)
    ax.set(ylabel="validation loss after training", title=sweep)
    key = SECOND_AXIS.get(sweep)
    if key:
        twin = ax.twinx()
        values = [getattr(r, key) / (1e6 if key == "trainable" else 1) for r in runs]
        twin.plot(labels, values, color="tab:orange", marker="s")
        twin.set_ylabel(SECOND_LABEL[key], color="tab:orange")
    return ax


# ---- training speed ----


def plot_speed(results: list[BenchResult], ax=None):
    """Tokens/s per configuration (bars) with its validation loss written on each bar."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 0.5 * len(results) + 1.2))[1]
    names = [r.name for r in results][::-1]
    speeds = [r.tokens_per_s for r in results][::-1]
    bars = ax.barh(names, speeds, color="tab:blue")
    for bar, r in zip(bars, results[::-1]):
        mfu = f", MFU {r.mfu:.1%}" if r.mfu is not None else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r.tokens_per_s:,.0f} tok/s, val loss "
                f"{r.loss:.3f}{mfu}", va="center", fontsize=8)
    ax.set(xlabel="training tokens per second (real tokens)", title=f"training speed on {results[0].device}")
    ax.set_xlim(0, max(speeds) * 1.6)
    return ax


def plot_parameter_groups(groups: dict[str, int], ax=None, title: str = "parameters by role"):
    """Horizontal bars in millions, each labelled with its share of the total."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3))[1]
    names, counts = list(groups), [groups[n] / 1e6 for n in groups]
    total = sum(counts)
    bars = ax.barh(names[::-1], counts[::-1], color="tab:blue")
    for bar, count in zip(bars, counts[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {count:,.1f} M ({count / total:.0%})",
                va="center", fontsize=9)
    ax.set(xlabel="parameters (millions)", title=title, xlim=(0, max(counts) * 1.35))
    return ax


# ---- the diagnosis (notebook 07) and the price head (notebook 08) ----


def plot_two_distributions(dists: Sequence[PriceDistribution], items: Sequence[dict], ax=None):
    """Two items' price distributions on one log-price axis, each with its true price: does the model tell them
    apart?"""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    bins = np.geomspace(1, 1_000, 41)
    for dist, item, color in zip(dists, items, ("tab:blue", "tab:red")):
        ax.hist(np.clip(dist.values, 1, 999), bins=bins, weights=dist.probs, color=color, alpha=0.45,
                label=f"{item['category']}: {item['title'][:40]}")
        ax.axvline(item["price"], color=color, lw=2, label=f"true ${item['price']:,.2f}")
        if dist.median is not None:
            ax.axvline(dist.median, color=color, lw=1.2, ls="--", label=f"median ${dist.median:,.0f}")
    ax.set_xscale("log")
    ax.set(xlabel="price ($, log scale)", ylabel="model probability", title="two unrelated items")
    ax.legend(fontsize=7)
    return ax


def plot_answer_losses(rows: Sequence[dict], ax=None):
    """Cross-entropy per answer position: the fine-tuned model against a model that never reads the text."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    positions = [r for r in rows if r["position"] != "whole answer"]
    xs = np.arange(len(positions))
    ax.bar(xs - 0.2, [r["text-blind nats"] for r in positions], 0.4, color="0.6", label="text-blind (answer counts)")
    ax.bar(xs + 0.2, [r["model nats"] for r in positions], 0.4, color="tab:purple", label="fine-tuned model")
    ax.set_xticks(xs, [f"token {r['position']}" for r in positions])
    ax.set(ylabel="mean nats per token", title="what reading the description buys, answer token by token")
    ax.legend(fontsize=8)
    return ax


def plot_paired_differences(differences: dict[str, dict], ax=None):
    """MAE differences on the same items with 95% paired-bootstrap intervals; left of zero: the first model wins."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 * len(differences) + 1.5))
    labels = list(differences)[::-1]
    for y, label in enumerate(labels):
        d = differences[label]
        color = "tab:green" if d["high"] < 0 else "tab:red" if d["low"] > 0 else "0.5"
        ax.errorbar(d["difference"], y, xerr=[[d["difference"] - d["low"]], [d["high"] - d["difference"]]],
                    fmt="o", color=color, capsize=3)
        ax.text(d["high"], y, f"  {d['difference']:+,.2f}", va="center", fontsize=8)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set(xlabel="difference in MAE ($), 95% paired bootstrap", title="who beats whom on the same items")
    return ax


def plot_head_training(log_history: list[dict], best_checkpoint: str | None = None, ax=None):
    """The head's training loss (L1 on standardised log price) and its validation MAE in dollars, by step."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    val = [(e["step"], e["eval_mae"]) for e in log_history if "eval_mae" in e]
    if train:
        ax.plot(*zip(*train), color="tab:blue", label="training loss (L1, log scale units)")
    ax.set(xlabel="step", ylabel="training loss")
    right = ax.twinx()
    if val:
        right.plot(*zip(*val), color="tab:orange", marker="o", label="validation MAE ($)")
    right.set_ylabel("validation MAE ($)")
    if best_checkpoint:
        step = int(str(best_checkpoint).rsplit("-", 1)[-1])
        ax.axvline(step, color="0.4", ls=":", label=f"kept: step {step}")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    ax.set_title("price head: loss and validation MAE")
    return ax


# ---- the GPU sweeps by validation MAE (notebook 09) ----


def plot_gpu_sweep(rows: list[dict], sweep: str, ax=None):
    """Validation MAE per swept value with its 95% interval and the seed noise as a band around the best; the
    epochs sweep plots each epoch's checkpoint."""
    import matplotlib.pyplot as plt

    from helpers.sweeps import seed_noise

    runs = [r for r in rows if r["sweep"] == sweep]
    if not runs:
        raise ValueError(f"no GPU results for sweep {sweep!r}: run benchmarks/sweep_mae.py with it")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    if sweep == "epochs":
        points = runs[0]["by_epoch"]
        ax.plot([p["epoch"] for p in points], [p["val_mae"] for p in points], marker="o", color="tab:purple")
        ax.set(xlabel="epoch (checkpoint)", ylabel="validation MAE ($)", title=f"epochs ({runs[0]['label']})")
        return ax
    labels = [r["label"] for r in runs]
    maes = [r["val_mae"] for r in runs]
    errors = [[m - r.get("val_mae_ci95", [m, m])[0] for m, r in zip(maes, runs)],
              [r.get("val_mae_ci95", [m, m])[1] - m for m, r in zip(maes, runs)]]
    ax.bar(labels, maes, yerr=errors, capsize=3, color="tab:purple", alpha=0.75)
    noise = seed_noise(rows)
    if noise:
        ax.axhspan(min(maes), min(maes) + noise, color="tab:green", alpha=0.2, label=f"seed noise ${noise:.2f}")
        ax.legend(fontsize=8)
    ax.set(ylabel="validation MAE ($)", title=sweep)
    ax.tick_params(axis="x", labelsize=8)
    return ax
