"""The benchmark runs on CPU at tiny sizes so CI exercises the same code the GPU run uses."""

import json
import math
from dataclasses import replace

import pytest

from helpers.benchmark import (
    BenchResult,
    bench_mode,
    bench_recipe,
    flops_per_token,
    main,
    matmul_params,
    peak_flops,
    recipe_configs,
    table,
)


def test_flops_count_frozen_weights_as_four_and_trainable_as_six():
    assert flops_per_token(frozen=0, trainable=100, layers=0, d_model=0, seq=0) == 600  # 6N for full FT
    assert flops_per_token(frozen=100, trainable=0, layers=0, d_model=0, seq=0) == 400  # no weight gradients
    assert flops_per_token(frozen=0, trainable=0, layers=2, d_model=8, seq=16) == 12 * 2 * 8 * 16


def test_peak_flops_by_device_name():
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("cpu") is None


def test_matmul_params_split_frozen_and_trainable():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    model[0].weight.requires_grad_(False)
    assert matmul_params(model) == (32, 16)


@pytest.mark.parametrize("mode", ["qlora-nf4-dq", "lora-bf16", "full-bf16"])
def test_bench_mode_runs_on_cpu(embedded_dir, mode):
    result = bench_mode(mode, batch=2, seq=16, steps=2, warmup=1, r=4, gradient_checkpointing=mode == "lora-bf16")
    assert result.settings["gradient_checkpointing"] == (mode == "lora-bf16")
    assert result.tokens == 2 * 2 * 16 and result.tokens_per_s > 0 and math.isfinite(result.loss)
    assert result.peak_memory_gb is None and result.mfu is None  # no GPU, no peak to compare with
    if mode == "full-bf16":
        assert result.trainable > 100e6
    else:  # r=4 on q,k,v,o of 30 layers: 4 * (in + out) per matrix
        assert result.trainable == 30 * 4 * ((576 + 576) * 2 + (576 + 192) * 2)
    assert result.matmul_params > 100e6


def test_recipes_share_hyperparameters_and_count_only_real_tokens(embedded_dir, tmp_path):
    from helpers.profiles import get_profile
    from helpers.training import config_for

    profile = get_profile("smoke")
    base = replace(config_for(profile), n_train=4, n_val=4, batch_size=4, max_steps=-1, epochs=1)
    configs = recipe_configs(base)
    assert len(recipe_configs(base, extra=True)) == len(configs) + 2
    plain, fast = configs["plain recipe"], configs["workbook"]
    assert plain.batch_size * plain.grad_accum == fast.batch_size * fast.grad_accum == 4  # same effective batch
    assert plain.pad_to_multiple_of == plain.max_length == 1024 and fast.pad_to_multiple_of is None
    assert (plain.learning_rate, plain.r, plain.alpha) == (fast.learning_rate, fast.r, fast.alpha)
    a = bench_recipe("plain recipe", plain, profile, tmp_path / "plain")
    b = bench_recipe("workbook", fast, profile, tmp_path / "fast")
    assert a.tokens == b.tokens > 4 * 20  # padding is not counted as trained tokens
    assert a.settings["pad_to_multiple_of"] == 1024
    assert abs(a.loss - b.loss) < 0.05  # same examples, same effective batch: (nearly) the same model
    assert b.tokens_per_s > a.tokens_per_s  # padding to 1024 costs time even on CPU
    text = table([a, b])
    assert "| plain recipe |" in text and "n/a" in text


def test_command_line_writes_json(embedded_dir, tmp_path, capsys):
    out = tmp_path / "modes.json"
    assert main(["modes", "--modes", "qlora-nf4", "--batch", "1", "--seq", "8", "--steps", "1", "--warmup", "0",
                 "--r", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == ["qlora-nf4"] and rows[0]["tokens"] == 8
    assert BenchResult(**rows[0]).settings["r"] == 2
    assert "| qlora-nf4 |" in capsys.readouterr().out
