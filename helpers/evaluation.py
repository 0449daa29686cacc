"""One evaluation harness for every model in the workbook: metrics, hit colouring, plots, results file.

A prediction is a **hit** when it is within $40 or 20% of the true price, a **near miss** within $80
or 40%, otherwise a **miss**. Predictions that are missing or unparseable are counted and scored as a
stated fallback price (the training split's median, passed by the caller), so one bad answer never crashes a run.
"""

from __future__ import annotations

import contextlib
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
    ids: list[str] = field(default_factory=list, repr=False)  # the items' ids, when they have one (paired comparisons)

    def summary(self) -> str:
        bad = (f", {self.unparseable} unparseable filled with the training median ${self.fallback:.2f}"
               if self.unparseable else ", 0 filled")
        return (f"{self.model}: MAE ${self.mae:,.2f} (95% CI {self.mae_ci95[0]:,.2f}-{self.mae_ci95[1]:,.2f}), "
                f"RMSLE {self.rmsle:.3f}, hits {self.hit_rate:.1%}, near {self.near_rate:.1%} on {self.n} items{bad}")

    def record(self) -> dict:
        """The entry written to results.json (without the per-item lists)."""
        data = asdict(self)
        for key in ("predictions", "truths", "outcomes", "ids"):
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
    index = getattr(predictions, "index", None)
    if index is not None and not callable(index) and list(index) != list(range(len(index))):
        raise TypeError("predictions is a pandas Series with its own index: evaluate() pairs predictions with items by "
                        "position, so put them in the items' order first (e.g. series.reindex(item_ids).tolist()).")
    if fallback is not None and not (isinstance(fallback, int | float) and math.isfinite(fallback) and fallback >= 0):
        raise ValueError(f"fallback={fallback!r}: unreadable answers are scored as this price, so it must be a finite "
                         "number >= 0 (train_median(data))")
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
        predictions=preds, truths=truths, outcomes=outcomes, ids=[str(row["id"]) for row in rows if "id" in row],
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


@contextlib.contextmanager
def _exclusive(path: Path):
    """One writer at a time for `path`, across processes (a notebook and a command-line evaluation at once): an
    advisory lock on a file beside it. Where the OS has no fcntl (Windows) writers are not serialised, but the
    unique temporary files below still keep every file whole."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace_atomically(path: Path, text: str) -> None:
    """Write to a temporary file of this process's own and rename it over `path`: readers see the old file or the
    new one, never half of one, and two writers never share a temporary file."""
    import os
    import uuid

    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def record_result(result: EvalResult, path: Path | None = None) -> Path:
    """Add or replace this model's entry (same model, dataset, split, profile) in results.json.

    Read, changed and written under a lock, through a temporary file renamed over the old one: concurrent writers
    keep every entry, and an interrupted run never leaves half a file.
    """
    path = path or results_path(result.profile)
    key = (result.model, result.dataset, result.split, result.profile)
    with _exclusive(path):
        entries = _read_results(path)
        entries = [e for e in entries if (e["model"], e["dataset"], e["split"], e["profile"]) != key]
        entries.append(result.record())
        _replace_atomically(path, json.dumps(entries, indent=2))
    if result.ids and len(result.ids) == len(result.predictions):
        _write_predictions(result, path.parent / "predictions")
    return path


def load_results(profile: str, path: Path | None = None) -> list[dict]:
    return _read_results(path or results_path(profile))


def _predictions_file(folder: Path, model: str, split: str) -> Path:
    import hashlib
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:60]
    return folder / f"{slug}-{hashlib.sha1(model.encode()).hexdigest()[:6]}-{split}.json"


def _write_predictions(result: EvalResult, folder: Path) -> None:
    """The per-item predictions beside results.json, keyed by item id: what a paired comparison needs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _predictions_file(folder, result.model, result.split)
    _replace_atomically(path, json.dumps({"model": result.model, "split": result.split,
                                          "predictions": dict(zip(result.ids, result.predictions))}))


def load_predictions(profile: str, model: str, split: str = "test", path: Path | None = None) -> dict[str, float]:
    """item id -> prediction recorded for `model` (by record_result); a clear error when it was never recorded."""
    folder = (path or results_path(profile)).parent / "predictions"
    file = _predictions_file(folder, model, split)
    if not file.is_file():
        raise FileNotFoundError(f"No recorded predictions of {model!r} on {split} in {folder}: run the notebook that "
                                "evaluates it first (07 for the generative adapters, 08 for the price heads).")
    return json.loads(file.read_text())["predictions"]


def paired_difference(errors_a: Sequence[float], errors_b: Sequence[float], n_boot: int = 2_000,
                      seed: int = 0) -> dict:
    """MAE(a) - MAE(b) on the same items, with a 95% paired-bootstrap interval: items are resampled together, so
    what both models find hard cancels out (intervals of the two MAEs alone overlap far more than this one).
    Negative: a is better."""
    import numpy as np

    a, b = np.asarray(errors_a, dtype=float), np.asarray(errors_b, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"paired_difference needs two equal-length lists of errors, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, a.size, size=(n_boot, a.size))
    diffs = (a[draws] - b[draws]).mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": float((a - b).mean()), "low": float(low), "high": float(high), "n": int(a.size),
            "share_a_better": float((diffs < 0).mean())}


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


