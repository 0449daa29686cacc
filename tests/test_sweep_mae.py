"""benchmarks/sweep_mae.py (notebook 09's GPU sweeps by validation MAE), run on CPU with a tiny Llama and the smoke
data standing in for the gpu profile's model and splits."""

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

from helpers.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]


def _script(monkeypatch, tmp_path, tiny_llama):
    from helpers.data import load_splits

    spec = importlib.util.spec_from_file_location("sweep_mae", ROOT / "benchmarks" / "sweep_mae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tiny = replace(get_profile("smoke"), model_id=str(tiny_llama))
    smoke = load_splits(get_profile("smoke"))[0]
    monkeypatch.setattr(module, "PROFILE", tiny)
    monkeypatch.setattr(module, "load_splits", lambda profile: (smoke, {}))
    monkeypatch.setattr(module, "EXAMPLES", 8)
    monkeypatch.setattr(module, "VAL_ITEMS", 4)
    monkeypatch.setattr(module, "SCRATCH", tmp_path / "scratch")
    return module


def test_sweeps_score_validation_mae_and_train_a_shared_configuration_once(monkeypatch, tmp_path, tiny_llama):
    script = _script(monkeypatch, tmp_path, tiny_llama)
    trained = []
    original = script.run_one
    monkeypatch.setattr(script, "run_one", lambda *a, **k: trained.append(a[:2]) or original(*a, **k))
    script.main(tmp_path, ["target modules", "epochs"])
    rows = json.loads((tmp_path / "sweep_mae.json").read_text())
    assert [(r["sweep"], r["label"]) for r in rows] == [("target modules", "attention (q,k,v,o)"),
                                                        ("target modules", "all linear"), ("epochs", "3 epochs")]
    assert all(r["val_mae"] > 0 and r["val_items"] == 4 and r["n_train"] == 8 for r in rows)
    assert rows[0]["config"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert rows[0]["trainable"] < rows[1]["trainable"]
    assert [e["step"] for e in rows[2]["by_epoch"]] == sorted(e["step"] for e in rows[2]["by_epoch"])
    assert rows[2]["by_epoch"] and all(e["val_mae"] > 0 for e in rows[2]["by_epoch"])
    # a later call: the reference (attention only at smoke sizes) is listed under the seed sweep without training
    # again
    trained.clear()
    script.main(tmp_path, ["noise (seed)"])
    rows = json.loads((tmp_path / "sweep_mae.json").read_text())
    assert trained == [("noise (seed)", "seed 43")]
    again = {r["label"]: r for r in rows if r["sweep"] == "noise (seed)"}
    assert again["seed 42"]["seconds"] == rows[0]["seconds"] and again["seed 43"]["config"]["seed"] == 43
    # the yardstick, added on any machine and replaced (not repeated) when added again
    script.main(tmp_path, ["constant"])
    script.main(tmp_path, ["constant"])
    rows = json.loads((tmp_path / "sweep_mae.json").read_text())
    constant = [r for r in rows if r["sweep"] == "constant"]
    assert len(constant) == 1 and constant[0]["val_mae"] > 0 and constant[0]["val_items"] == 4
    assert len(rows) == 6
    with pytest.raises(SystemExit, match="unknown sweep"):
        script.main(tmp_path, ["momentum"])
