"""The price head on a GPU (issue 27): its settings chosen on validation, the shipped head, and its data curve.

Run on a CUDA machine from the repository root (`bash benchmarks/gpu_run.sh head STAGE ...` sets the paths):
    python benchmarks/head_gpu.py prepare                 # convert the model, build the gpu splits (cached)
    python benchmarks/head_gpu.py sweep OUT LR...         # the CPU recipe (4-bit base, 1,600 examples) at each
                                                          #   learning rate (and HEAD_SWEEP_SET settings): validation MAE
    python benchmarks/head_gpu.py train OUT               # the gpu profile's head: train, score, ship to OUT/head
    python benchmarks/head_gpu.py curve OUT N...          # the same recipe on the first N examples, same test items
    python benchmarks/head_gpu.py recheck OUT HEAD        # a shipped head's test MAE with an fp32 and a bf16 base

Only validation MAE chooses anything; test MAE is reported. Every stage appends to a JSON file in OUT.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.data import load_splits  # noqa: E402
from helpers.evaluation import evaluate  # noqa: E402
from helpers.profiles import detect_device, get_profile  # noqa: E402
from helpers.provenance import HEAD_FILE  # noqa: E402
from helpers.provenance import read as read_provenance  # noqa: E402

PROFILE = get_profile("gpu")
CPU_PROFILE = "default"  # whose head recipe `sweep` runs (its 1,600 examples, 4-bit base)
LADDER_ITEMS = 250  # the default profile's ladder scores the first 250 test items
SCRATCH = Path(os.environ.get("HEAD_SCRATCH", "/tmp/head"))


def _device() -> str:
    import torch

    return f"{detect_device().name}, torch {torch.__version__}"


def _append(path: Path, entry: dict) -> None:
    entries = json.loads(path.read_text()) if path.exists() else []
    entries.append(entry)
    path.write_text(json.dumps(entries, indent=2) + "\n")
    print(json.dumps(entry), flush=True)


def _test_scores(model, tokenizer, scale, test) -> dict:
    from helpers.price_head import predict

    started = time.perf_counter()
    prices = predict(model, tokenizer, test["prompt"], scale, batch_size=128, progress=False)
    seconds = time.perf_counter() - started
    full = evaluate(prices, test, "head", kind="fine-tuned", profile="gpu")
    first = evaluate(prices[:LADDER_ITEMS], test.select(range(LADDER_ITEMS)), "head", kind="fine-tuned", profile="gpu")
    return {"n=1000": round(full.mae, 2), f"n={LADDER_ITEMS}": round(first.mae, 3), "seconds": round(seconds, 1),
            "predictions_first_250": [round(p, 2) for p in prices[:LADDER_ITEMS]]}


def _run(config, name: str) -> dict:
    """Train one head: its validation MAE by step, speed and memory."""
    from helpers.price_head import train_head

    profile = PROFILE if name.startswith(("gpu", "curve")) else get_profile(CPU_PROFILE)
    data, _ = load_splits(profile)
    result = train_head(profile, config, SCRATCH / name, data=data)
    entry = {"name": name, "config": {k: v for k, v in config.__dict__.items() if k != "target_modules"},
             "n_train": min(config.n_train or len(data["train"]), len(data["train"])),
             "best_val_mae": round(result.best_val_mae, 2), "best_checkpoint": Path(result.best_checkpoint).name,
             "val_mae_by_step": [(e["step"], round(e["eval_mae"], 2)) for e in result.log_history if "eval_mae" in e],
             "seconds": round(result.seconds, 1), "tokens_per_second": round(result.tokens_per_second),
             "peak_gpu_gib": result.peak_memory_gb and round(result.peak_memory_gb, 2), "device": _device()}
    entry["head_dir"] = result.head_dir
    return entry


def prepare() -> None:
    data, report = load_splits(PROFILE)
    print({name: len(split) for name, split in data.items()}, "generated:", report.get("generated_records"))


def sweep(out: Path, rates: list[float]) -> None:
    """The default (CPU) profile's head recipe on this GPU: 4-bit base, its 1,600 examples, one epoch; validation
    MAE on all 1,000 validation items for each learning rate (HEAD_SWEEP_SET="loss=huber" changes more)."""
    from helpers.price_head import HeadConfig, config_for
    from helpers.training import parse_overrides

    default = get_profile(CPU_PROFILE)
    extra = parse_overrides(os.environ.get("HEAD_SWEEP_SET", "").split(), HeadConfig)
    for rate in rates:
        config = config_for(default, learning_rate=rate, n_val=1000, **extra)
        tag = "_".join(f"{k}={v}" for k, v in extra.items())
        _append(out / "head_sweep_cpu_recipe.json", _run(config, f"sweep_lr{rate:g}{'_' + tag if tag else ''}"))


def train_stage(out: Path) -> None:
    """The gpu profile's head (HEAD_SET overrides settings): trained, scored on test, shipped to OUT/head."""
    from helpers.price_head import HeadConfig, config_for, load_head, ship_head
    from helpers.training import parse_overrides

    overrides = parse_overrides(os.environ.get("HEAD_SET", "").split(), HeadConfig)
    config = config_for(PROFILE, **overrides)
    data, _ = load_splits(PROFILE)
    entry = _run(config, "gpu" + "".join(f"_{k}={v}" for k, v in overrides.items()))
    model, tokenizer, scale = load_head(PROFILE, entry["head_dir"])
    entry["test_mae"] = _test_scores(model, tokenizer, scale, data["test"])
    _append(out / "head_train.json", entry)
    if os.environ.get("HEAD_SHIP", "1") == "1":
        shipped = ship_head(entry["head_dir"], out / "head", extra={
            "device": _device(), "test_mae": {k: v for k, v in entry["test_mae"].items() if k.startswith("n=")},
            "test_mae_device": f"{detect_device().name}, bf16 base"})
        model, tokenizer, scale = load_head(PROFILE, shipped)  # the bf16 copy itself, as it ships
        check = _test_scores(model, tokenizer, scale, data["test"])
        info = read_provenance(shipped, HEAD_FILE).with_fields(test_mae={k: v for k, v in check.items()
                                                                         if k.startswith("n=")})
        info.write(shipped / HEAD_FILE)
        (out / "head_predictions.json").write_text(json.dumps(check["predictions_first_250"]))
        print("shipped:", info.test_mae, flush=True)


def curve(out: Path, sizes: list[int]) -> None:
    """The gpu head recipe on the first n training examples; test MAE on the same 1,000 items."""
    from helpers.price_head import HeadConfig, config_for, load_head
    from helpers.training import parse_overrides

    overrides = parse_overrides(os.environ.get("HEAD_SET", "").split(), HeadConfig)
    data, _ = load_splits(PROFILE)
    for n in sizes:
        steps = max(1, 2 * n // 64)  # about five evaluations per run, whatever its size
        every = max(5, steps // 5)
        config = config_for(PROFILE, **{"n_train": n, "eval_steps": every, "save_steps": every, **overrides})
        entry = _run(config, f"curve_{n}")
        model, tokenizer, scale = load_head(PROFILE, entry["head_dir"])
        entry["test_mae"] = _test_scores(model, tokenizer, scale, data["test"])
        entry["test_mae"].pop("predictions_first_250")
        _append(out / "head_curve.json", entry)


def recheck(out: Path, head: Path) -> None:
    """The shipped head's test MAE with its base in fp32 (what a CPU runs) and in bf16 (what it trained on)."""
    from helpers.price_head import load_head

    data, _ = load_splits(PROFILE)
    rows = {}
    for quantization in ("fp32", "bf16"):
        model, tokenizer, scale = load_head(PROFILE, head, quantization=quantization)
        scores = _test_scores(model, tokenizer, scale, data["test"])
        scores.pop("predictions_first_250")
        rows[quantization] = scores
        print(quantization, scores, flush=True)
    (out / "head_recheck.json").write_text(json.dumps({"device": _device(), "test_mae": rows}, indent=2) + "\n")


if __name__ == "__main__":
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    if stage == "prepare":
        prepare()
    elif stage == "sweep":
        sweep(Path(sys.argv[2]), [float(v) for v in sys.argv[3:]])
    elif stage == "train":
        train_stage(Path(sys.argv[2]))
    elif stage == "curve":
        curve(Path(sys.argv[2]), [int(n) for n in sys.argv[3:]])
    elif stage == "recheck":
        recheck(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
