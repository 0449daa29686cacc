"""Notebook 09's sweeps at the gpu profile's settings, scored by validation MAE (issue 28).

The CPU lab of notebook 09 trains 64 examples for 8 steps on 40-word prompts and reads validation loss: it
measures how fast the answer's format is learned. This script varies one setting at a time around the gpu
profile's own configuration (all linear layers, r=16, alpha=32, lr 1.6e-3, batch 256, bf16 base, full prompts)
on many more examples, and scores each run by what counts: the price error on validation items (greedy
decoding, unreadable answers priced at the training median and counted). The test split is never read.

Run on a CUDA machine from the repository root (`bash benchmarks/gpu_run.sh sweepmae [SWEEP...]` sets the paths):
    python benchmarks/sweep_mae.py OUT [SWEEP...]     # every sweep, or those named; appends to OUT/sweep_mae.json
    python benchmarks/sweep_mae.py OUT constant       # the yardstick: the training median on the same items (any machine)
Sizes: SWEEP_EXAMPLES (default 16384) training examples, SWEEP_VAL (default 500) validation items scored.
A configuration already in the results file (same settings) is not trained again, so a sweep can be
split over several calls.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from helpers.data import load_splits  # noqa: E402
from helpers.evaluation import evaluate, train_median  # noqa: E402
from helpers.profiles import detect_device, get_profile  # noqa: E402
from helpers.sweeps import ATTENTION  # noqa: E402
from helpers.training import ALL_LINEAR, config_for  # noqa: E402

PROFILE = get_profile("gpu")
EXAMPLES = int(os.environ.get("SWEEP_EXAMPLES", 16384))
VAL_ITEMS = int(os.environ.get("SWEEP_VAL", 500))
EPOCHS_LONG = 3  # the epochs sweep: one run this long, every epoch's checkpoint scored
SCRATCH = Path(os.environ.get("SWEEP_SCRATCH", "/tmp/sweep_mae"))
RESULTS = "sweep_mae.json"


def reference():
    """The gpu profile's configuration on EXAMPLES examples, a checkpoint per quarter epoch (val loss alongside)."""
    steps = max(1, EXAMPLES // config_for(PROFILE).batch_size)
    every = max(1, steps // 4)
    return config_for(PROFILE, n_train=EXAMPLES, n_val=min(VAL_ITEMS, 256), eval_steps=every, save_steps=every)


def plan() -> dict[str, list[tuple[str, object]]]:
    """Sweep name -> [(label, config)]; names match notebook 09's CPU sweeps so the two can be compared."""
    base = reference()
    steps_per_epoch = max(1, EXAMPLES // base.batch_size)
    return {
        "noise (seed)": [("seed 42", base), ("seed 43", replace(base, seed=43))],
        "rank (alpha = 2r)": [(f"r={r}", replace(base, r=r, alpha=2 * r)) for r in (4, 16, 64)],
        "rank (alpha = 32)": [(f"r={r}", replace(base, r=r, alpha=32)) for r in (4, 16, 64)],
        "learning rate": [(f"{lr:g}", replace(base, learning_rate=lr)) for lr in (4e-4, 8e-4, 1.6e-3, 3.2e-3)],
        "target modules": [("attention (q,k,v,o)", replace(base, target_modules=ATTENTION)),
                           ("all linear", replace(base, target_modules=ALL_LINEAR))],
        "epochs": [(f"{EPOCHS_LONG} epochs", replace(base, epochs=EPOCHS_LONG, eval_steps=steps_per_epoch,
                                                      save_steps=steps_per_epoch))],
        # do the winners add up? each sweep's best setting together, against the reference
        "winners combined": [("reference", base), ("r=64, alpha=128, 2 epochs",
                                                   replace(base, r=64, alpha=128, epochs=2, eval_steps=steps_per_epoch,
                                                           save_steps=steps_per_epoch))],
        # the same reference on the gpu profile's whole training split (40,000): what more data buys
        "training examples": [(f"{EXAMPLES:,}", base),
                              ("all", replace(base, n_train=None, eval_steps=4 * base.eval_steps,
                                              save_steps=4 * base.save_steps))],
    }


def _device() -> str:
    return f"{detect_device().name}, torch {torch.__version__}"


def _val_mae(model, tokenizer, items, fallback: float) -> dict:
    from helpers.inference import score_decodings

    scored = score_decodings(model, tokenizer, items, fallback, label="sweep", profile=PROFILE.name,
                             split="validation", batch_size=128, progress=False, only=("greedy",))["greedy"]
    return {"val_mae": round(scored.mae, 2), "unreadable": scored.unparseable,
            "val_mae_ci95": [round(v, 2) for v in scored.mae_ci95], "score_seconds": round(scored.seconds, 1)}


def _checkpoint_maes(run_dir: Path, steps_per_epoch: int, items, fallback: float) -> list[dict]:
    """Validation MAE of every checkpoint of a run (the epochs sweep): where the price error stops falling."""
    from peft import PeftModel

    from helpers.models import load_base_model

    out = []
    for checkpoint in sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(checkpoint.name.split("-")[1])
        loaded = load_base_model(PROFILE.model_id, quantization=reference().quantization)
        model = PeftModel.from_pretrained(loaded.model, str(checkpoint)).eval()
        out.append({"epoch": round(step / steps_per_epoch, 3), "step": step,
                    **_val_mae(model, loaded.tokenizer, items, fallback)})
        del model, loaded
        gc.collect()
    return out


def run_one(sweep: str, label: str, config, data, items, fallback: float) -> dict:
    from helpers.training import train

    run_dir = SCRATCH / f"{sweep}-{label}".replace(" ", "_").replace("/", "_")
    torch.manual_seed(config.seed)
    result = train(PROFILE, config, run_dir, data=data)
    steps_per_epoch = max(1, result.log_history[-1]["step"] / max(config.epochs, 1e-9))
    entry = {"sweep": sweep, "label": label, "config": json.loads(json.dumps(asdict(config))),
             "n_train": min(config.n_train or len(data["train"]), len(data["train"])),
             "val_items": len(items), "best_val_loss": result.best_eval_loss,
             "seconds": round(result.seconds, 1), "train_tokens": result.train_tokens,
             "tokens_per_second": round(result.train_tokens / result.seconds) if result.seconds else None,
             "peak_gpu_gib": result.peak_memory_gb and round(result.peak_memory_gb, 2),
             "trainable": sum(p.numel() for p in result.model.parameters() if p.requires_grad),
             "device": _device()}
    entry |= _val_mae(result.model, _tokenizer(), items, fallback)  # the best checkpoint by validation loss
    if sweep == "epochs":
        entry["by_epoch"] = _checkpoint_maes(run_dir, round(steps_per_epoch), items, fallback)
    del result
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return entry


def _tokenizer():
    from helpers.models import load_tokenizer

    return load_tokenizer(PROFILE.model_id)


def constant_row(data, items) -> dict:
    """What every run must beat: one price (the training median) for every validation item."""
    fallback = train_median(data)
    scored = evaluate([fallback] * len(items), items, "constant", kind="baseline", profile=PROFILE.name,
                      split="validation")
    return {"sweep": "constant", "label": f"training median ${fallback:.2f}", "config": {}, "n_train": len(data["train"]),
            "val_items": len(items), "val_mae": round(scored.mae, 2),
            "val_mae_ci95": [round(v, 2) for v in scored.mae_ci95], "unreadable": 0, "device": "any (no model)"}


def main(out: Path, only: list[str]) -> None:
    unknown = set(only) - set(plan()) - {"constant"}
    if unknown:
        raise SystemExit(f"unknown sweep(s) {sorted(unknown)}: choose from {list(plan())} or constant")
    data, _ = load_splits(PROFILE)
    items = data["validation"].select(range(min(VAL_ITEMS, len(data["validation"]))))
    path = out / RESULTS
    rows = json.loads(path.read_text()) if path.exists() else []
    if only == ["constant"]:
        row = constant_row(data, items)
        path.write_text(json.dumps([r for r in rows if r["sweep"] != "constant"] + [row], indent=1) + "\n")
        print(json.dumps(row))
        return
    fallback = train_median(data)
    for sweep, runs in plan().items():
        if only and sweep not in only:
            continue
        for label, config in runs:
            settings = json.loads(json.dumps(asdict(config)))  # as the results file holds them (tuples as lists)
            done = next((r for r in rows if r["config"] == settings and (sweep == "epochs") == ("by_epoch" in r)),
                        None)
            if done is not None:
                if not any(r["sweep"] == sweep and r["label"] == label for r in rows):
                    rows.append({**done, "sweep": sweep, "label": label})  # the same run, listed in this sweep too
                continue
            print(f"{sweep}: {label}", flush=True)
            rows.append(run_one(sweep, label, config, data, items, fallback))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "config"}), flush=True)
            path.write_text(json.dumps(rows, indent=1) + "\n")
    path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2:])
