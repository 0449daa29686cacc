"""The gpu-profile adapter that ships in the repository, its evaluation, and the data curve (issue 16).

Run on a CUDA machine from the repository root (benchmarks/gpu_run.sh sets the paths):
    python benchmarks/gpu_ladder.py prepare            # convert the model, build the gpu splits (cached)
    python benchmarks/gpu_ladder.py train OUT          # train the gpu profile, write OUT/adapter (bf16)
    python benchmarks/gpu_ladder.py evaluate OUT       # decoding chosen on validation; test MAE; base model
    python benchmarks/gpu_ladder.py curve OUT 1000 4000 ...   # QLoRA at other training sizes, same test items
    python benchmarks/gpu_ladder.py recheck OUT ADAPTER   # the adapter's test MAE with 4-bit compute in fp32 and bf16
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.adapters import load_adapter, ship_adapter  # noqa: E402
from helpers.data import load_splits  # noqa: E402
from helpers.evaluation import evaluate, train_median  # noqa: E402
from helpers.inference import choose_decoding, score_decodings  # noqa: E402
from helpers.profiles import detect_device, get_profile  # noqa: E402
from helpers.provenance import TRAINING_FILE  # noqa: E402
from helpers.provenance import read as read_provenance  # noqa: E402

PROFILE = get_profile("gpu")
CPU_ITEMS = 250  # the default profile's LLM rows score the first 250 test items: the ladder's shared items


def _device() -> str:
    import torch

    return f"{detect_device().name}, torch {torch.__version__}"


def prepare() -> None:
    data, report = load_splits(PROFILE)
    print({name: len(split) for name, split in data.items()}, "generated past the shipped file:",
          report.get("generated_records"))


def train_stage(out: Path) -> None:
    from helpers.training import config_for, train

    config = config_for(PROFILE)
    result = train(PROFILE, config, Path("/tmp/wbout/gpu/training"))
    print(f"trained {result.seconds:.0f} s, {result.train_tokens:,} tokens ({result.train_tokens / result.seconds:,.0f}"
          f" tokens/s), peak {result.peak_memory_gb:.2f} GiB, best val loss {result.best_eval_loss}")
    ship_adapter(result.adapter_dir, out / "adapter", extra={"device": _device(),
                                                             "tokens_per_second": round(result.train_tokens / result.seconds)})
    (out / "log_history.json").write_text(json.dumps(result.log_history, indent=1))


def _records(results: dict, n: int | None = None, items=None, fallback=None) -> dict:
    """EvalResult records; with n, re-scored on the first n items (same predictions)."""
    out = {}
    for name, result in results.items():
        if n is not None:
            result = evaluate(result.predictions[:n], items.select(range(n)), result.model, kind=result.kind,
                              profile=result.profile, split=result.split, fallback=fallback, seconds=result.seconds)
        out[name] = result.record()
    return out


def evaluate_stage(out: Path) -> None:
    from helpers.inference import predict_prices
    from helpers.models import load_base_model

    data, _ = load_splits(PROFILE)
    fallback = train_median(data)
    model, tokenizer = load_adapter(PROFILE, out / "adapter")
    label = "SmolLM2-135M + QLoRA (gpu profile, shipped)"
    kw = {"fallback": fallback, "label": label, "profile": "gpu", "batch_size": 64, "progress": False}
    validation = score_decodings(model, tokenizer, data["validation"], split="validation", **kw)
    chosen = choose_decoding(validation)
    test = score_decodings(model, tokenizer, data["test"], split="test", **kw)
    for result in [*validation.values(), *test.values()]:
        print(result.split, result.summary())
    del model
    base = load_base_model(quantization="nf4-dq")
    started = time.perf_counter()
    prices, _ = predict_prices(base.model, base.tokenizer, data["test"]["prompt"], batch_size=64, progress=False)
    base_result = evaluate(prices, data["test"], "SmolLM2-135M base (nf4-dq, greedy)", kind="base-llm", profile="gpu",
                           fallback=fallback, seconds=time.perf_counter() - started)
    print(base_result.summary())
    summary = {
        "chosen_decoding": chosen,
        "validation": _records(validation),
        "test_1000": _records(test) | {"base": base_result.record()},
        f"test_first_{CPU_ITEMS}": _records(test, CPU_ITEMS, data["test"], fallback)
        | _records({"base": base_result}, CPU_ITEMS, data["test"], fallback),
        "device": _device(),
    }
    (out / "ladder_gpu.json").write_text(json.dumps(summary, indent=2))
    provenance = read_provenance(out / "adapter").with_fields(
        decoding=chosen, validation_mae={k: round(v.mae, 2) for k, v in validation.items()},
        test_mae={"n=1000": round(test[chosen].mae, 2),
                  f"n={CPU_ITEMS}": summary[f"test_first_{CPU_ITEMS}"][chosen]["mae"]})
    provenance.write(out / "adapter" / TRAINING_FILE)
    print("chosen on validation:", chosen, provenance.test_mae)


def curve_stage(out: Path, sizes: list[int]) -> None:
    """QLoRA at each training size (LADDER_SET="r=64 alpha=128" overrides settings), scored on the same test items."""
    import os

    from helpers.training import config_for, parse_overrides, train

    data, _ = load_splits(PROFILE)
    fallback = train_median(data)
    path = out / "curve_qlora.json"
    points = json.loads(path.read_text()) if path.exists() else []
    for n in sizes:
        overrides = parse_overrides(os.environ.get("LADDER_SET", "").split()) | {"n_train": n}
        config = config_for(PROFILE, eval_steps=max(10, n // 64 // 5), save_steps=max(10, n // 64 // 5), **overrides)
        result = train(PROFILE, config, Path(f"/tmp/curve/{n}"))
        model, tokenizer = load_adapter(PROFILE, result.adapter_dir)
        scored = score_decodings(model, tokenizer, data["test"], fallback=fallback, label=f"QLoRA n={n}",
                                 profile="gpu", split="test", batch_size=64, progress=False)
        points.append({"n_train": n, "set": os.environ.get("LADDER_SET", ""), "seconds": round(result.seconds, 1), "tokens": result.train_tokens,
                       "best_eval_loss": result.best_eval_loss,
                       "mae": {k: round(v.mae, 2) for k, v in scored.items()}})
        print(points[-1], flush=True)
        path.write_text(json.dumps(points, indent=2))
        del model


def recheck_stage(out: Path, adapter: Path) -> None:
    """The shipped adapter's greedy test MAE on the ladder's items with the 4-bit layers computing in fp32 (what
    CPUs do) and in bf16 (what the GPU run recorded): how much of a CPU/GPU gap is the compute dtype."""
    import torch


    data, _ = load_splits(PROFILE)
    test = data["test"].select(range(CPU_ITEMS))
    rows = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model, tokenizer = load_adapter(PROFILE, adapter, compute_dtype=dtype)
        started = time.perf_counter()
        scored = score_decodings(model, tokenizer, test, fallback=train_median(data), label=f"shipped ({name})",
                                 profile="gpu", split="test", batch_size=64, progress=False, only=("greedy",))
        rows[name] = scored["greedy"].record() | {"seconds": round(time.perf_counter() - started, 1)}
        print(name, scored["greedy"].summary(), flush=True)
        del model
    (out / "recheck.json").write_text(json.dumps({"device": _device(), "items": CPU_ITEMS, "greedy": rows}, indent=2))


if __name__ == "__main__":
    stage = sys.argv[1]
    if stage == "prepare":
        prepare()
    elif stage == "train":
        train_stage(Path(sys.argv[2]))
    elif stage == "evaluate":
        evaluate_stage(Path(sys.argv[2]))
    elif stage == "curve":
        curve_stage(Path(sys.argv[2]), [int(n) for n in sys.argv[3:]])
    elif stage == "recheck":
        recheck_stage(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
