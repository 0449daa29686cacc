"""The benchmark runs on CPU at tiny sizes so CI exercises the same code the GPU run uses."""

import json
import math
from dataclasses import replace

import pytest

from benchmarks.speed import bench_mode, bench_recipe, main, recipe_configs
from helpers.benchmark import BenchResult, flops_per_token, matmul_params, peak_flops, table


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


def test_padding_free_batch_gives_the_same_loss_as_a_padded_one(embedded_dir):
    """Laid end to end, examples must still not attend to each other: transformers builds the per-example causal
    mask from the position ids. If it did not, the padding-free loss would differ from the padded one. It does so
    only without a KV cache (measured: with one, examples see each other and the loss drops from 4.71 to 3.55);
    trl's SFTTrainer passes use_cache=False, as this test does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_dir, dtype=torch.float32).eval()
    examples = []
    for prompt, price in [("How much does a 12-pack of AA batteries cost?", "Price is $14.99"),
                          ("Estimate the price: stainless steel 5-quart stand mixer, 800 W", "Price is $249.00"),
                          ("Price of a cable?", "Price is $7")]:
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(price)["input_ids"]
        examples.append({"input_ids": p + c, "labels": [-100] * len(p) + c})  # loss on the price only
    losses = {}
    for padding_free in (False, True):
        collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=padding_free)
        batch = collate(examples)
        if padding_free:
            assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch  # one row, no padding
        with torch.no_grad():
            losses[padding_free] = float(model(**batch, use_cache=False).loss)
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_speed_variants_change_only_speed_settings(tmp_path, embedded_dir):
    from benchmarks.speed import PLAN_CHANGES, speed_configs
    from helpers.plots import plot_speed
    from helpers.profiles import get_profile
    from helpers.training import config_for

    profile = get_profile("smoke")
    base = replace(config_for(profile), n_train=8, n_val=4, batch_size=4, max_steps=-1, epochs=1)
    configs = speed_configs(base)
    assert configs["profile as it is"] == base
    learned = ("target_modules", "r", "alpha", "epochs", "n_train", "n_val", "seed", "max_length")
    for name, config in configs.items():
        assert all(getattr(config, k) == getattr(base, k) for k in learned), name
        if name == "before issue 19":  # a fixed, historical configuration: the gpu profile as it was
            assert (config.quantization, config.batch_size, config.learning_rate, config.dropout) == \
                ("nf4-dq", 64, 4e-4, 0.1)
            continue
        if config.batch_size != base.batch_size:  # fewer steps: the rate follows the batch (square-root or linear)
            ratio = config.batch_size / base.batch_size
            assert config.learning_rate in (base.learning_rate * ratio ** 0.5, base.learning_rate * ratio), name
    cpu = speed_configs(config_for(get_profile("default")), cpu=True)
    assert (cpu["profile as it is"].cpu_bf16, cpu["profile as it is"].dropout) == (True, 0.0)
    assert (cpu["before issue 19"].cpu_bf16, cpu["before issue 19"].dropout) == (False, 0.1)
    assert all(not c.cpu_bf16 for c in (cpu["fp32 compute"], cpu["LoRA on an fp32 base"]))
    out = tmp_path / "speed.json"
    assert main(["speed", "--profile", "smoke", "--examples", "8", "--val", "4", "--only", "profile as it is",
                 "padding-free", "--json", str(out), "--plot", str(tmp_path / "speed.png")]) == 0
    rows = [BenchResult(**r) for r in json.loads(out.read_text())]
    assert [r.name for r in rows] == ["profile as it is", "padding-free"]
    assert rows[0].tokens == rows[1].tokens  # the same real tokens, with and without padding
    assert rows[1].settings["padding_free"] and not rows[0].settings["padding_free"]
    assert abs(rows[0].loss - rows[1].loss) < 0.02
    # a row may change one decision of the run's plan; on CPU (no autocast) peft's input casts are needed and kept
    assert set(PLAN_CHANGES) <= set(speed_configs(base)) and rows[0].settings["adapter_input_casts"] is True
    assert (tmp_path / "speed.png").stat().st_size > 5000
    assert plot_speed(rows).get_title().startswith("training speed on")


def test_padding_free_refuses_examples_longer_than_max_length(embedded_dir, tmp_path):
    from helpers.profiles import get_profile
    from helpers.training import ConfigError, config_for, make_trainer

    profile = get_profile("smoke")
    config = replace(config_for(profile), padding_free=True, max_length=24)
    with pytest.raises(ConfigError, match="padding_free=True: an example has"):
        make_trainer(profile, config, tmp_path, evaluate=False)


def test_benchmark_modes_follow_compute_capability_not_is_bf16_supported():
    """A T4 reports bf16 as supported (emulated): the 4-bit modes compute in fp16 there, the bf16 modes are
    refused with what to run instead; A100/H100 compute in bf16."""
    import torch

    from benchmarks.speed import mode_dtype

    assert mode_dtype("qlora-nf4-dq", cuda=True, native_bf16=True) == torch.bfloat16
    assert mode_dtype("qlora-nf4-dq", cuda=True, native_bf16=False) == torch.float16
    with pytest.raises(ValueError, match="needs native bf16"):
        mode_dtype("lora-bf16", cuda=True, native_bf16=False)
    assert mode_dtype("full-bf16", cuda=False) == torch.bfloat16


def test_an_emulated_t4_is_this_gpu_in_fp16_with_the_capped_memory():
    """Both GPU benchmarks emulate a T4 the same way (speed.py --fp16, fsdp_emulate.py --fp16 --cap-gib)."""
    import torch

    from benchmarks.speed import t4_like
    from helpers.profiles import DeviceInfo
    from helpers.runplan import decide
    from helpers.training import TrainConfig

    h200 = DeviceInfo(device="cuda", name="H200", compute_dtype=torch.bfloat16, bf16=True, fp16=False,
                      total_memory_gib=139.8)
    t4 = t4_like(h200, 15.0)
    assert (t4.compute_dtype, t4.bf16, t4.fp16, t4.total_memory_gib, t4.name) == (torch.float16, False, True, 15.0, "H200")
    assert t4_like(h200).total_memory_gib == 139.8
    assert decide(TrainConfig(gradient_checkpointing=True), t4).mixed_precision == "fp16"


def _gpu_run_rows() -> set[str]:
    """Every row name benchmarks/gpu_run.sh hands to `speed.py speed --only` (directly, in a rows array, or a
    `${ROWS:-...}` default; `$n` expanded over the loop's values)."""
    import re
    import shlex
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_run.sh").read_text().replace("\\\n", " ")
    script = "\n".join(line.split(" # ")[0] for line in script.splitlines())  # comments out
    lists = [(m.group(1), m.start()) for m in re.finditer(r"--only (.*?)(?:--json|$)", script, re.M)]
    lists += [(m.group(1), m.start()) for m in re.finditer(r"rows\+?=\(([^)]*)\)", script)]
    names: set[str] = set()
    for part, start in lists:
        line = script[script.rfind("\n", 0, start) + 1:script.find("\n", start)]
        if "speed.py recipes" in line:  # the recipes' own rows
            continue
        loop = re.search(r"for n in ([\d ]+);", line)
        part = re.sub(r"\$\{\w+:-(.*)\}", r"\1", part)  # ${ROWS:-"a" "b"}: the default rows
        part = part[:-1] if part.rstrip().endswith('"') and part.count('"') % 2 else part  # inside a "..." string
        for token in shlex.split(part.replace("$n", "{n}")):
            if token.startswith("$"):
                continue
            names |= {token.format(n=n) for n in loop.group(1).split()} if "{n}" in token else {token}
    return names


def test_every_row_gpu_run_asks_for_exists_and_a_misspelt_row_is_refused(capsys):
    """gpu_run.sh names rows for the GPU; speed.py refuses a name it does not know (before, it ran none of it and said
    nothing), so every name in the script must be one of the GPU's rows."""
    from benchmarks.speed import speed_configs
    from helpers.profiles import get_profile
    from helpers.training import config_for

    gpu_rows = speed_configs(config_for(get_profile("gpu")), cpu=False)
    asked = _gpu_run_rows()
    assert {"padding mask kept", "no padding mask, compiled layers, fused kernels, checkpointing, first 10 layers",
            "checkpointing, first 16 layers"} <= asked  # the parser finds arrays, loops and plain --only lists
    assert asked - set(gpu_rows) == set()
    with pytest.raises(SystemExit) as stop:
        main(["speed", "--profile", "smoke", "--examples", "8", "--val", "4", "--only", "profile as it is",
              "no such row"])
    assert stop.value.code == 2 and "no row named 'no such row'" in capsys.readouterr().err
