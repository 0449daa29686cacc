"""When does fine-tuning pay? Classical baselines at the training sizes of the GPU QLoRA runs (CPU is enough).

    python benchmarks/data_curve.py                 # writes benchmarks/results/catalog-v2/data_curve.json
    python benchmarks/data_curve.py --head-only     # only (re)writes the price head's line (issue 27) into it

It reads the QLoRA points measured on the H100 (benchmarks/gpu_ladder.py curve, and the shipped adapter's
evaluation), scores TF-IDF + ridge and MiniLM + gradient boosting trained on the first n items of the gpu
profile's training split (the shipped catalog extended from its seed), all on the same 1,000 test items.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import baselines  # noqa: E402
from helpers.catalog import oracle_prices  # noqa: E402
from helpers.data import load_splits  # noqa: E402
from helpers.evaluation import evaluate  # noqa: E402
from helpers.profiles import get_profile  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "catalog-v2"
GPU = RESULTS / "h100-2026-11-23"
HEAD = Path(__file__).resolve().parent / "results" / "head-h200-2026-12-01"
SHIPPED_HEAD = Path(__file__).resolve().parents[1] / "adapters" / "smollm2-135m-price-head-gpu" / "workbook_head.json"
HEAD_METHOD = "price head SmolLM2-135M r=16 (L1 on log price)"
SIZES = (1_000, 4_000, 16_000, 40_000)


def head_points() -> list[dict]:
    """The price head's test MAE at each training size (H200, benchmarks/head_gpu.py curve), the shipped head at 40,000."""
    points = [{"n_train": p["n_train"], "mae": p["test_mae"]["n=1000"], "seconds": p["seconds"]}
              for p in json.loads((HEAD / "head_curve.json").read_text())]
    shipped = json.loads(SHIPPED_HEAD.read_text())
    points.append({"n_train": shipped["n_train"], "mae": shipped["test_mae"]["n=1000"], "seconds": shipped["seconds"],
                   "note": "the shipped head"})
    return sorted(points, key=lambda p: p["n_train"])


def main() -> int:
    if "--head-only" in sys.argv[1:]:
        curve = json.loads((RESULTS / "data_curve.json").read_text())
        curve["methods"][HEAD_METHOD] = head_points()
        (RESULTS / "data_curve.json").write_text(json.dumps(curve, indent=2) + "\n")
        print(json.dumps(curve["methods"][HEAD_METHOD], indent=1))
        return 0
    data, _ = load_splits(get_profile("gpu"))
    train, test = data["train"], data["test"]
    x_test = baselines.embed(test["text"])
    x_all = baselines.embed(train["text"][: max(SIZES)])
    methods: dict[str, list] = {"TF-IDF + ridge": [], "MiniLM + gradient boosting": []}
    for n in SIZES:
        part = train.select(range(n))
        tfidf = baselines.tfidf_ridge(part["text"], part["price"], test["text"])
        gbm = baselines.gradient_boosting(x_all[:n], part["price"], x_test)
        for name, preds in (("TF-IDF + ridge", tfidf), ("MiniLM + gradient boosting", gbm)):
            methods[name].append({"n_train": n, "mae": round(evaluate(preds, test, name).mae, 2)})
            print(n, name, methods[name][-1]["mae"], flush=True)
    ladder = json.loads((GPU / "ladder_gpu.json").read_text())
    decoding = ladder["chosen_decoding"]
    qlora = [{"n_train": p["n_train"], "mae": p["mae"][decoding], "seconds": p["seconds"]}
             for p in json.loads((GPU / "curve_qlora.json").read_text()) if not p.get("set")]
    shipped = ladder["test_1000"][decoding]
    qlora.append({"n_train": 40_000, "mae": round(shipped["mae"], 2), "note": "the shipped adapter"})
    methods[f"QLoRA SmolLM2-135M r=16 ({decoding})"] = sorted(qlora, key=lambda p: p["n_train"])
    methods[HEAD_METHOD] = head_points()
    oracle = oracle_prices()
    curve = {
        "n_test": len(test),
        "decoding": f"{decoding} (chosen on validation for the shipped adapter)",
        "oracle_mae": round(evaluate([oracle[i] for i in test["id"]], test, "oracle", kind="oracle").mae, 2),
        "constant_mae": round(evaluate(baselines.constant(train["price"][:20_000], len(test), "median"), test,
                                       "constant").mae, 2),
        "methods": methods,
        "extra": [p for p in json.loads((GPU / "curve_qlora.json").read_text()) if p.get("set")],
    }
    (RESULTS / "data_curve.json").write_text(json.dumps(curve, indent=2) + "\n")
    print(json.dumps(curve, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
