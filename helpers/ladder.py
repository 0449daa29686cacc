"""The payoff ladder: every model on the same test items, and the adapter shipped in the repository.

Notebook 07 ends with one table and one chart: the base model, the adapter trained on this machine, an
adapter trained at gpu-profile scale on an H100 (shipped in `adapters/`, so a laptop evaluates it in
minutes), the classical baselines, the noise-floor oracle and, apart, the course's published figures on
real Amazon data. Each LLM's decoding (greedy, median or expected price) is chosen on the validation
split; the test split only reports.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from helpers.paths import REPO_ROOT, shown
from helpers.provenance import TRAINING_FILE
from helpers.provenance import from_dict as provenance_from_dict
from helpers.provenance import read as read_provenance

SHIPPED_ADAPTER = REPO_ROOT / "adapters" / "smollm2-135m-price-gpu"
DECODINGS = ("greedy", "median price", "expected price")

# Published by the course this workbook follows, on its 250 real Amazon test items (not measured here).
COURSE_REAL_DATA = (
    ("constant (average price)", 145.51),
    ("bag-of-words + linear regression", 113.60),
    ("word2vec + random forest", 96.34),
    ("GPT-4o, prompted, no fine-tuning (frontier model)", 76.00),
    ("fine-tuned Llama 3.1 8B (QLoRA)", 47.80),
)
COURSE_SOURCE = "the LLM-engineering course's published results on 250 real Amazon test items (not our measurement)"


def score_decodings(model, tokenizer, items, fallback: float, label: str, profile: str, split: str,
                    dataset: str = "sample", batch_size: int = 8, progress: bool = True,
                    only: Sequence[str] = DECODINGS) -> dict:
    """decoding -> EvalResult for greedy, median-price and expected-price decoding (or `only` some) of one model."""
    import time

    from helpers.evaluation import evaluate
    from helpers.inference import predict_prices, price_distributions

    unknown = set(only) - set(DECODINGS)
    if unknown:
        raise ValueError(f"unknown decoding(s) {sorted(unknown)}: choose from {DECODINGS}")
    common = {"kind": "fine-tuned", "dataset": dataset, "profile": profile, "split": split, "fallback": fallback}
    out = {}
    if "greedy" in only:
        started = time.perf_counter()
        greedy, _ = predict_prices(model, tokenizer, items["prompt"], batch_size=batch_size, progress=progress)
        out["greedy"] = evaluate(greedy, items, f"{label} (greedy)", seconds=time.perf_counter() - started, **common)
    if {"median price", "expected price"} & set(only):
        started = time.perf_counter()
        dists = price_distributions(model, tokenizer, items["prompt"], batch_size=batch_size, progress=progress)
        seconds = time.perf_counter() - started
        for name in ("median price", "expected price"):
            if name in only:
                values = [d.median if name == "median price" else d.expected for d in dists]
                out[name] = evaluate(values, items, f"{label} ({name})", seconds=seconds, **common)
    return out


def choose_decoding(validation: dict) -> str:
    """The decoding with the lowest validation MAE (never chosen on test)."""
    return min(validation, key=lambda name: validation[name].mae)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship_adapter(adapter_dir: str | Path, out_dir: str | Path = SHIPPED_ADAPTER, extra: dict | None = None,
                 provenance: str = TRAINING_FILE) -> Path:
    """Copy a trained adapter as bf16 safetensors plus its config and provenance (no tokenizer, no base).

    bf16 halves the fp32 training copy; LoRA weights lose nothing that shows at 4-bit inference (the
    recorded MAE is measured on the bf16 copy itself).
    """
    import torch
    from safetensors.torch import load_file, save_file

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()},
              str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None  # the training machine's path means nothing elsewhere
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    info = read_provenance(adapter_dir / provenance)
    info.with_fields(**{"commit": git_commit(), "weights_dtype": "bfloat16", **(extra or {})}).write(out_dir / provenance)
    return out_dir


def shipped_provenance(adapter_dir: str | Path = SHIPPED_ADAPTER) -> dict:
    """The shipped adapter's provenance, or a clear error saying what is missing."""
    path = Path(adapter_dir) / TRAINING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No shipped adapter at {adapter_dir}: the repository should contain it "
                                "(git checkout -- adapters/); it is trained with `bash benchmarks/gpu_run.sh ladder`.")
    values = json.loads(path.read_text())
    provenance_from_dict(values, str(shown(path)))
    return values  # checked against Provenance, returned as written


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
