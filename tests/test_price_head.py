"""The price head (helpers/price_head.py): the target's scale, the loss the Trainer sees, training with the best
checkpoint by validation MAE, resume, saving adapters + head, reloading, a hub-style model, and the GPU script."""

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.price_head import (
    PROVENANCE,
    HeadConfig,
    PriceScale,
    config_for,
    describe,
    evaluate_head,
    load_head,
    mae_metric,
    make_head_trainer,
    predict,
    price_loss,
    train_head,
)
from helpers.profiles import PROFILES, get_profile
from helpers.training import ConfigError, parse_overrides

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_data(embedded_dir):
    from helpers.data import load_splits

    return load_splits(get_profile("smoke"))[0]


TINY = dict(r=2, alpha=4, batch_size=2, n_train=8, n_val=4, max_steps=2, eval_steps=1, save_steps=1,
            logging_steps=1, max_length=192)


def test_scale_round_trips_and_is_fitted_on_positive_prices():
    scale = PriceScale.fit([10.0, 100.0, 1000.0])
    assert math.isclose(scale.mean, math.log(100.0)) and math.isclose(scale.std, math.log(10.0))
    for price in (1.5, 99.0, 870.0):
        assert math.isclose(scale.to_price(scale.to_target(price)), price, rel_tol=1e-12)
    z = torch.tensor([0.0, 1.0])
    assert torch.allclose(scale.to_price(z), torch.tensor([100.0, 1000.0]))
    with pytest.raises(ValueError, match="two positive prices"):
        PriceScale.fit([5.0, 0.0, -1.0])


def test_losses_are_what_they_say_and_follow_the_trainers_averaging():
    outputs = {"logits": torch.tensor([[0.0], [2.0], [-1.0]])}
    labels = torch.tensor([1.0, 1.0, 1.0])
    assert price_loss("l1")(outputs, labels).item() == pytest.approx((1 + 1 + 2) / 3)
    assert price_loss("mse")(outputs, labels).item() == pytest.approx((1 + 1 + 4) / 3)
    assert price_loss("huber", delta=1.0)(outputs, labels).item() == pytest.approx((0.5 + 0.5 + 1.5) / 3)
    # under gradient accumulation the Trainer passes the examples of the whole accumulated batch
    assert price_loss("l1")(outputs, labels, num_items_in_batch=6).item() == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="l1, huber or mse"):
        price_loss("hinge")


def test_metric_reports_dollars():
    from transformers import EvalPrediction

    scale = PriceScale(mean=math.log(100.0), std=1.0)
    metric = mae_metric(scale)(EvalPrediction(predictions=[[0.0], [math.log(2.0)]], label_ids=[0.0, 0.0]))
    assert math.isclose(metric["mae"], 50.0) and math.isclose(metric["mae_log"], math.log(2.0) / 2)


def test_every_profile_has_settings_and_every_setting_says_what_it_does():
    assert all(isinstance(profile.head, HeadConfig) for profile in PROFILES.values())
    assert config_for(get_profile("default")) is PROFILES["default"].head
    assert all(help_text for _, _, help_text in describe(HeadConfig()))
    with pytest.raises(ConfigError, match="multiple of eval_steps"):
        config_for(get_profile("smoke"), eval_steps=3, save_steps=4)
    with pytest.raises(ConfigError, match="loss="):
        config_for(get_profile("smoke"), loss="hinge")
    t4 = replace(get_profile("smoke"), name="t4", head=replace(get_profile("smoke").head, batch_size=2))
    assert config_for(t4).batch_size == 2  # a new profile's head settings come from its own literal
    assert parse_overrides(["loss=huber", "learning_rate=1e-3"], HeadConfig) == {"loss": "huber", "learning_rate": 1e-3}


def test_the_trainers_loss_is_l1_on_the_batch_and_reaches_only_adapters_and_head(tmp_path, tiny_llama, smoke_data):
    profile = replace(get_profile("smoke"), model_id=str(tiny_llama))
    trainer, scale = make_head_trainer(profile, config_for(profile, **TINY), tmp_path, data=smoke_data, evaluate=False)
    assert scale == PriceScale.fit(smoke_data["train"].select(range(8))["price"])  # the training examples' own
    model = trainer.model
    batch = {k: v.to(model.device) for k, v in next(iter(trainer.get_train_dataloader())).items()}
    by_hand = (model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.view(-1)
               - batch["labels"]).abs().mean()
    loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=batch["labels"].numel())
    assert torch.allclose(loss, by_hand, atol=1e-5)
    loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("score" in n for n in with_grad) and any("lora_B" in n for n in with_grad)
    assert all("lora_" in n or "score" in n for n in with_grad)
    # labels are the standardised log price of the training examples
    prices = trainer.train_dataset["labels"]
    assert abs(sum(prices) / len(prices)) < 1e-6


def test_head_trains_keeps_best_by_mae_resumes_and_reloads(tmp_path, monkeypatch, capsys, embedded_dir):
    profile = get_profile("smoke")
    first = train_head(profile, config_for(profile, **TINY), tmp_path / "run")
    head = tmp_path / "run" / "head"
    info = json.loads((head / PROVENANCE).read_text())
    maes = [e["eval_mae"] for e in first.log_history if "eval_mae" in e]
    assert len(maes) == 2 and math.isclose(first.best_val_mae, min(maes)) and info["best_val_mae"] == first.best_val_mae
    assert info["n_train"] == 8 and info["scale"]["std"] > 0 and info["config"]["loss"] == "l1"
    weights = load_file(str(head / "adapter_model.safetensors"))
    assert any("score" in k for k in weights) and all("lora_" in k or "score" in k for k in weights)
    assert first.train_tokens > 0 and info["train_tokens_this_run"] == first.train_tokens

    resumed = train_head(profile, config_for(profile, **{**TINY, "max_steps": 3}), tmp_path / "run", resume=True)
    assert [e["step"] for e in resumed.log_history if "loss" in e] == [1, 2, 3]
    assert json.loads((head / PROVENANCE).read_text())["resumed_from"] == "checkpoint-2"
    from helpers.provenance import read as read_provenance

    assert read_provenance(head, PROVENANCE).scale == info["scale"]  # a typed Provenance record

    texts = ["How much does this cost to the nearest dollar?\n\nA pen\n\nPrice is $"] * 2
    model, tokenizer, scale = load_head(profile, head)
    in_memory = predict(resumed.model, tokenizer, texts, resumed.scale, progress=False)
    assert scale == resumed.scale
    # the trained model runs bitsandbytes' guarded path; on a CPU with AVX512-BF16 a loaded one would take the fast
    # inference path, ~0.5% apart (measured): compare the saved weights on the same path
    from helpers.models import guard_bnb_cpu_training

    guard_bnb_cpu_training(model)
    reloaded = predict(model, tokenizer, texts, scale, progress=False)
    assert all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(in_memory, reloaded))

    scored = evaluate_head(profile, head, n_items=3, results_file=tmp_path / "r.json")
    assert scored.n == 3 and scored.kind == "fine-tuned" and scored.unparseable == 0
    assert json.loads((tmp_path / "r.json").read_text())[0]["model"] == "SmolLM2-135M-Instruct + price head"

    # the command line: a saved head evaluated on the profile's test items, and a bad setting refused by name
    from helpers.price_head import main

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path / "outputs"))
    assert main(["--profile", "smoke", "--head", str(head)]) == 0
    assert "price head: MAE $" in capsys.readouterr().out
    assert (tmp_path / "outputs" / "smoke" / "results.json").is_file()
    with pytest.raises(SystemExit, match="loss='hinge'"):
        main(["--profile", "smoke", "--set", "loss=hinge"])


def test_a_hub_style_llama_gets_the_same_head(tmp_path, tiny_llama, smoke_data):
    """The course profile's path (a hub-style Llama in a local folder; the course's Amazon data needs the network,
    so the sample stands in): a pad token in the config, LoRA on its linear layers, one number per example."""
    course = replace(get_profile("course"), model_id=str(tiny_llama), requires_gpu=False)
    config = config_for(course, **{**TINY, "gradient_checkpointing": False})
    result = train_head(course, config, tmp_path / "course", data=smoke_data)
    info = json.loads((Path(result.head_dir) / PROVENANCE).read_text())
    assert info["model"] == str(tiny_llama) and info["config"]["r"] == 2 and info["config"]["quantization"] == "nf4-dq"
    model, tok, scale = load_head(course, result.head_dir)
    assert model.config.pad_token_id == tok.pad_token_id
    prices = predict(model, tok, smoke_data["test"]["prompt"][:3], scale, progress=False)
    assert len(prices) == 3 and all(p > 0 for p in prices)


def test_gpu_script_trains_ships_and_rechecks_on_cpu(tmp_path, monkeypatch, tiny_llama, smoke_data):
    """benchmarks/head_gpu.py with a tiny model and the smoke data standing in for the gpu profile's."""
    spec = importlib.util.spec_from_file_location("head_gpu", ROOT / "benchmarks" / "head_gpu.py")
    head_gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(head_gpu)
    tiny = replace(get_profile("smoke"), model_id=str(tiny_llama))
    monkeypatch.setattr(head_gpu, "PROFILE", tiny)
    monkeypatch.setattr(head_gpu, "get_profile", lambda name: tiny)
    monkeypatch.setattr(head_gpu, "load_splits", lambda profile: (smoke_data, {}))
    monkeypatch.setattr(head_gpu, "LADDER_ITEMS", 8)
    monkeypatch.setattr(head_gpu, "SCRATCH", tmp_path / "scratch")
    monkeypatch.setenv("HEAD_SET", " ".join(f"{k}={v}" for k, v in TINY.items()))
    head_gpu.train_stage(tmp_path)
    entry = json.loads((tmp_path / "head_train.json").read_text())[0]
    assert entry["best_val_mae"] > 0 and set(entry["test_mae"]) >= {"n=1000", "n=8"}
    shipped = tmp_path / "head"
    assert sorted(p.name for p in shipped.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", PROVENANCE]
    assert all(v.dtype == torch.bfloat16 for v in load_file(str(shipped / "adapter_model.safetensors")).values())
    info = json.loads((shipped / PROVENANCE).read_text())
    assert info["weights_dtype"] == "bfloat16" and "n=8" in info["test_mae"] and "commit" in info
    assert json.loads((shipped / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    head_gpu.recheck(tmp_path, shipped)
    rows = json.loads((tmp_path / "head_recheck.json").read_text())["test_mae"]
    assert set(rows) == {"fp32", "bf16"} and all(r["n=8"] > 0 for r in rows.values())
    monkeypatch.setenv("HEAD_SWEEP_SET", " ".join(f"{k}={v}" for k, v in TINY.items() if k != "n_val"))
    head_gpu.sweep(tmp_path, [1e-3])
    assert json.loads((tmp_path / "head_sweep_cpu_recipe.json").read_text())[0]["config"]["learning_rate"] == 1e-3
    head_gpu.curve(tmp_path, [6])
    point = json.loads((tmp_path / "head_curve.json").read_text())[0]
    assert point["n_train"] == 8 and point["test_mae"]["n=8"] > 0  # HEAD_SET's n_train wins over the curve's
