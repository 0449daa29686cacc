"""The payoff ladder: every model on the same test items, the course's cited figures beside them, and where the data
curve crosses a baseline. (Scoring a model's decodings is in helpers.inference; the shipped adapter in helpers.adapters.)

Notebook 07 ends with one table and one chart: the base model, the adapter trained on this machine, an
adapter trained at gpu-profile scale on an H100 (shipped in `adapters/`, so a laptop evaluates it in
minutes), the classical baselines, the noise-floor oracle and, apart, the course's published figures on
real Amazon data. Each LLM's decoding (greedy, median or expected price) is chosen on the validation
split; the test split only reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from helpers.adapters import SHIPPED_ADAPTER, shipped_provenance  # noqa: F401 (notebook 08 imports it from here)

# Published by the course this workbook follows, on its 250 real Amazon test items (not measured here).
COURSE_REAL_DATA = (
    ("constant (average price)", 145.51),
    ("bag-of-words + linear regression", 113.60),
    ("word2vec + random forest", 96.34),
    ("GPT-4o, prompted, no fine-tuning (frontier model)", 76.00),
    ("fine-tuned Llama 3.1 8B (QLoRA)", 47.80),
)
COURSE_SOURCE = "the LLM-engineering course's published results on 250 real Amazon test items (not our measurement)"


def adapter_records_name(model_short: str, adapter_dir: str | Path) -> str:
    """The name notebook 07 records an adapter's scores under.

    Notebook 06's adapter is "<model> + QLoRA", the name notebook 08 looks for. When 06 has not run, 07 scores the
    shipped adapter in its place; recording those scores under 06's name would put the full-scale adapter on the
    ladders as the CPU one, so the stand-in gets a name of its own.
    """
    if Path(adapter_dir).resolve() == SHIPPED_ADAPTER.resolve():
        return f"{model_short} + shipped QLoRA adapter, standing in for notebook 06's"
    return f"{model_short} + QLoRA"


# --------------------------------------------------------------------------------------------------
# Table and chart
# --------------------------------------------------------------------------------------------------


def ladder_rows(entries: Sequence[dict], order: Sequence[tuple[str, str]]) -> list[dict]:
    """[(step, model name)] -> rows with MAE, CI, RMSLE, hit rate, filled answers; all on the same items."""
    by_name = {e["model"]: e for e in entries}
    rows = []
    for step, name in order:
        if name not in by_name:
            raise KeyError(f"{name!r} is not in the results: run the cell that evaluates it first")
        e = by_name[name]
        rows.append({"step": step, "model": name, "n": e["n"], "mae": e["mae"], "ci_low": e["mae_ci95"][0],
                     "ci_high": e["mae_ci95"][1], "rmsle": e["rmsle"], "hit_rate": e["hit_rate"],
                     "filled": e.get("unparseable", 0), "kind": e["kind"]})
    sizes = {row["n"] for row in rows}
    if len(sizes) != 1:
        raise ValueError(f"ladder rows are on different numbers of items {sorted(sizes)}: compare on the same items")
    return rows


def crossing(curve: dict, a: str, b: str) -> float | None:
    """The training size where method `a` first gets below method `b` (log-linear interpolation), or None."""
    import math

    pa = {p["n_train"]: p["mae"] for p in curve["methods"][a]}
    pb = {p["n_train"]: p["mae"] for p in curve["methods"][b]}
    sizes = sorted(set(pa) & set(pb))
    for lo, hi in zip(sizes, sizes[1:]):
        d_lo, d_hi = pa[lo] - pb[lo], pa[hi] - pb[hi]
        if d_lo > 0 >= d_hi:
            t = d_lo / (d_lo - d_hi)
            return math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))
    if sizes and pa[sizes[0]] <= pb[sizes[0]]:
        return float(sizes[0])
    return None
