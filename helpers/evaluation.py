"""One evaluation harness for every model in the workbook: metrics, hit colouring, plots, results file.

A prediction is a **hit** when it is within $40 or 20% of the true price, a **near miss** within $80
or 40%, otherwise a **miss**. Predictions that are missing or unparseable are counted and scored as a
stated fallback price (the training split's median, passed by the caller), so one bad answer never crashes a run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.curation import PRICE_BANDS, price_band
from helpers.paths import outputs_dir
from helpers.prices import parse_price_text

HIT_ABS, HIT_REL = 40.0, 0.20
NEAR_ABS, NEAR_REL = 80.0, 0.40
COLORS = {"hit": "tab:green", "near": "tab:orange", "miss": "tab:red"}
KINDS = ("baseline", "base-llm", "fine-tuned", "oracle")
MAX_PREDICTION = 1e6  # a "price" above a million dollars is an answer gone wrong: counted as unreadable


def classify(prediction: float, truth: float) -> str:
    """'hit' (error under $40 or under 20%), 'near' (under $80 or 40%) or 'miss'."""
    error = abs(prediction - truth)
    if error < HIT_ABS or error < HIT_REL * truth:
        return "hit"
    if error < NEAR_ABS or error < NEAR_REL * truth:
        return "near"
    return "miss"


def as_price(value) -> float | None:
    """A usable number, or None for missing / unparseable / non-finite / absurd (> MAX_PREDICTION) predictions."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        number = parse_price_text(value)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return number if number is not None and math.isfinite(number) and number <= MAX_PREDICTION else None


@dataclass
class EvalResult:
    model: str
    kind: str
    dataset: str
    split: str
    profile: str
    n: int
    mae: float
    rmsle: float
    hit_rate: float
    near_rate: float
    mae_ci95: tuple[float, float]
    unparseable: int
    fallback: float | None
    seconds: float
    by_band: dict[str, dict] = field(default_factory=dict)
    by_category: dict[str, dict] = field(default_factory=dict)
    predictions: list[float] = field(default_factory=list, repr=False)
    truths: list[float] = field(default_factory=list, repr=False)
    outcomes: list[str] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        bad = (f", {self.unparseable} unparseable filled with the training median ${self.fallback:.2f}"
               if self.unparseable else ", 0 filled")
        return (f"{self.model}: MAE ${self.mae:,.2f} (95% CI {self.mae_ci95[0]:,.2f}-{self.mae_ci95[1]:,.2f}), "
                f"RMSLE {self.rmsle:.3f}, hits {self.hit_rate:.1%}, near {self.near_rate:.1%} on {self.n} items{bad}")

    def record(self) -> dict:
        """The entry written to results.json (without the per-item lists)."""
        data = asdict(self)
        for key in ("predictions", "truths", "outcomes"):
            data.pop(key)
        data["mae_ci95"] = list(self.mae_ci95)
        return data


def train_median(data) -> float:
    """The training split's median price: the fallback for unreadable answers (no test labels used)."""
    prices = sorted(float(p) for p in (data["train"]["price"] if "train" in data else data["price"]))
    if not prices:
        raise ValueError("train_median() got an empty training split")
    return prices[len(prices) // 2]


def _group(values: Sequence[tuple[str, float, float, str]]) -> dict[str, dict]:
    groups: dict[str, list] = {}
    for key, pred, truth, outcome in values:
        groups.setdefault(key, []).append((pred, truth, outcome))
    return {
        key: {
            "n": len(rows),
            "mae": sum(abs(p - t) for p, t, _ in rows) / len(rows),
            "hit_rate": sum(o == "hit" for _, _, o in rows) / len(rows),
        }
        for key, rows in groups.items()
    }


def evaluate(
    predictions: Sequence | Callable[[dict], object],
    items: Sequence[dict] | object,
    model: str,
    kind: str = "baseline",
    dataset: str = "sample",
    split: str = "test",
    profile: str = "default",
    fallback: float | None = None,
    seconds: float | None = None,
) -> EvalResult:
    """Score predictions (a list, or a function of one item) against items with `price` (and `category`).

    Missing / unparseable predictions count in `unparseable` and are scored as `fallback`, which must
    come from the training data (`train_median(data)`): filling with the scored items' own median would
    use the very labels being predicted. Negative predictions are clipped to 0.
    """
    rows = [dict(item) for item in items]
    if not rows:
        raise ValueError("evaluate() got no items: check the split you passed (it is empty).")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if isinstance(predictions, str | bytes):
        raise TypeError("predictions is one string: pass a list with one prediction per item (e.g. [text]).")
    bad_truths = [i for i, row in enumerate(rows) if as_price(row.get("price")) is None or float(row["price"]) < 0]
    if bad_truths:
        raise ValueError(f"{len(bad_truths)} of {len(rows)} items have no valid true price (missing, NaN or negative; "
                         f"first at position {bad_truths[0]}): curate the split first (helpers.curation.curate drops them).")
    started = time.perf_counter()
    raw = [predictions(row) for row in rows] if callable(predictions) else list(predictions)
    if len(raw) != len(rows):
        raise ValueError(f"{len(raw)} predictions for {len(rows)} items")
    elapsed = time.perf_counter() - started if seconds is None else seconds
    truths = [float(row["price"]) for row in rows]
    parsed = [as_price(value) for value in raw]
    unparseable = sum(p is None for p in parsed)
    if fallback is None:
        if unparseable:
            raise ValueError(
                f"{unparseable} of {len(parsed)} predictions are missing or unparseable and no fallback was given: "
                "pass fallback=train_median(data) (the training split's median price, never the scored items')."
            )
    preds = [max(0.0, fallback if p is None else p) for p in parsed]  # fallback stays None when unused
    errors = [abs(p - t) for p, t in zip(preds, truths)]
    n = len(errors)
    mae = sum(errors) / n
    sd = math.sqrt(sum((e - mae) ** 2 for e in errors) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    rmsle = math.sqrt(sum((math.log1p(p) - math.log1p(t)) ** 2 for p, t in zip(preds, truths)) / n)
    outcomes = [classify(p, t) for p, t in zip(preds, truths)]
    categories = [str(row.get("category", "all")) for row in rows]
    return EvalResult(
        model=model, kind=kind, dataset=dataset, split=split, profile=profile, n=n, mae=mae, rmsle=rmsle,
        hit_rate=outcomes.count("hit") / n, near_rate=outcomes.count("near") / n,
        mae_ci95=(max(0.0, mae - half), mae + half), unparseable=unparseable, fallback=fallback,
        seconds=round(elapsed, 2),
        by_band=dict(sorted(_group([(price_band(t), p, t, o) for p, t, o in zip(preds, truths, outcomes)]).items(),
                            key=lambda kv: PRICE_BANDS.index(kv[0]))),
        by_category=dict(sorted(_group([(c, p, t, o) for c, p, t, o in zip(categories, preds, truths, outcomes)]).items())),
        predictions=preds, truths=truths, outcomes=outcomes,
    )


# --------------------------------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------------------------------


def results_path(profile: str) -> Path:
    return outputs_dir(profile) / "results.json"


def _read_results(path: Path) -> list[dict]:
    """The entries of a results file; a damaged one is moved aside (and said), never a crash."""
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            raise ValueError("not a list of results")
        return entries
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError) as error:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(aside)
        print(f"warning: {path} was damaged ({type(error).__name__}); moved to {aside.name} and started a new one. "
              "Re-run the notebooks that record results (04, 05, 07) to fill it again.")
        return []


def record_result(result: EvalResult, path: Path | None = None) -> Path:
    """Add or replace this model's entry (same model, dataset, split, profile) in results.json.

    Written to a temporary file and renamed, so an interrupted run never leaves half a file.
    """
    path = path or results_path(result.profile)
    entries = _read_results(path)
    key = (result.model, result.dataset, result.split, result.profile)
    entries = [e for e in entries if (e["model"], e["dataset"], e["split"], e["profile"]) != key]
    entries.append(result.record())
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2))
    tmp.replace(path)
    return path


def load_results(profile: str, path: Path | None = None) -> list[dict]:
    return _read_results(path or results_path(profile))


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


def plot_scatter(result: EvalResult, ax=None, limit: float | None = None):
    """Prediction vs truth, coloured hit / near / miss, with the y = x line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    top = limit or max(max(result.truths), max(result.predictions)) * 1.05
    for outcome, color in COLORS.items():
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
