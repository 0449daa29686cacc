import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from helpers.adapters import evaluate_adapter, load_adapter
from helpers.profiles import PROFILES, DeviceInfo, get_profile
from helpers.runplan import decide
from helpers.training import (
    TrainConfig,
    config_for,
    describe,
    train,
)

CPU = DeviceInfo(device="cpu", name="test CPU", compute_dtype=torch.float32, bf16=False, fp16=False,
                 total_memory_gib=None)
TINY = TrainConfig(r=2, alpha=4, batch_size=2, n_train=8, n_val=4, max_steps=2, eval_steps=1, save_steps=1,
                   logging_steps=1, max_length=192)


def test_qlora_trains_saves_adapter_only_and_resumes(tmp_path, embedded_dir):
    profile = get_profile("smoke")
    first = train(profile, TINY, tmp_path / "run")
    adapter = tmp_path / "run" / "adapter"
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert all("lora_" in k for k in weights)  # the adapter only, never the base weights
    assert sum(v.numel() for v in weights.values()) < 1_000_000
    info = json.loads((adapter / "workbook_training.json").read_text())
    assert info["profile"] == "smoke" and info["n_train"] == 8 and info["config"]["quantization"] == "nf4-dq"
    assert first.best_eval_loss is not None and any("eval_loss" in e for e in first.log_history)
    assert first.train_tokens > 0 and first.train_tokens == max(e.get("num_tokens", 0) for e in first.log_history)
    assert first.peak_rss_gb > 0.2 and info["peak_rss_gb"] == round(first.peak_rss_gb, 2)  # CPU memory is reported

    # resume: a longer run picks up from the last checkpoint instead of starting over
    longer = TrainConfig(**{**TINY.__dict__, "max_steps": 3})
    resumed = train(profile, longer, tmp_path / "run", resume=True)
    steps = [e["step"] for e in resumed.log_history if "loss" in e]
    assert steps == [1, 2, 3]  # steps 1-2 come from the checkpoint's history, only step 3 was trained now
    assert (tmp_path / "run" / "checkpoint-3").is_dir()
    # tokens add up across the resume (trl's counter restarts at 0 in the new process)
    step3 = [e["num_tokens"] for e in resumed.log_history if e.get("step") == 3 and "num_tokens" in e][0]
    assert resumed.tokens_this_run == step3 < first.train_tokens
    assert resumed.train_tokens == first.train_tokens + step3
    info = json.loads((adapter / "workbook_training.json").read_text())
    assert info["train_tokens"] == resumed.train_tokens and info["resumed_from"].endswith("checkpoint-2")
    from helpers.provenance import read as read_provenance

    assert read_provenance(adapter).tokens_this_run == step3  # the file is a typed Provenance record

    # round trip: base + saved adapter predicts what the trained model in memory predicts
    trained = resumed.model.eval()
    reloaded, tok = load_adapter(profile, tmp_path / "run" / "adapter")
    ids = tok("How much does this cost to the nearest dollar?\n\nA pen\n\nPrice is $", return_tensors="pt")
    with torch.no_grad():
        a, b = trained(**ids).logits, reloaded(**ids).logits
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-3), (a - b).abs().max()
    assert torch.equal(a[0, -1].argmax(), b[0, -1].argmax())

    # the command line's evaluation: three decodings of the same adapter, scored on the test split
    scored = evaluate_adapter(profile, tmp_path / "run" / "adapter", n_items=3, results_file=tmp_path / "r.json")
    assert [r.model.split("(")[1] for r in scored] == ["greedy)", "expected price)", "median price)"]
    assert all(r.n == 3 and r.kind == "fine-tuned" for r in scored)
    assert len(json.loads((tmp_path / "r.json").read_text())) == 3

    # deployment: the adapter merged into an fp32 copy of the base computes what base + adapter computes
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from helpers.adapters import merge_adapter
    from helpers.models import load_base_model

    merged_dir = merge_adapter(profile, adapter, tmp_path / "merged")
    assert not any(p.name.startswith("adapter_") for p in merged_dir.iterdir())
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    unmerged = PeftModel.from_pretrained(load_base_model(None, "fp32").model, str(adapter)).eval()
    with torch.no_grad():
        m, u = merged(**ids).logits, unmerged(**ids).logits
        plain = load_base_model(None, "fp32").model(**ids).logits
    assert torch.allclose(m, u, atol=1e-4, rtol=1e-4), (m - u).abs().max()
    assert not torch.allclose(m, plain, atol=1e-4)  # the update really is in the merged weights


def test_every_setting_is_explained_and_profiles_differ():
    rows = describe(PROFILES["default"].train)
    assert [name for name, _, _ in rows][:5] == ["target_modules", "r", "alpha", "quantization", "dropout"]
    assert all(note for _, _, note in rows), [name for name, _, note in rows if not note]
    assert config_for(get_profile("smoke")).max_steps > 0 and config_for(get_profile("gpu")).max_steps == -1
    assert config_for(get_profile("default"), r=8).r == 8


def test_command_line_overrides_are_typed_and_checked():
    import pytest

    from helpers.training import parse_overrides

    got = parse_overrides(["r=64", "learning_rate=4e-4", "target_modules=q_proj, v_proj", "gradient_checkpointing=false",
                           "n_train=none", "optimizer=adamw_torch_fused", "epochs=3"])
    assert got == {"r": 64, "learning_rate": 4e-4, "target_modules": ("q_proj", "v_proj"),
                   "gradient_checkpointing": False, "n_train": None, "optimizer": "adamw_torch_fused", "epochs": 3.0}
    from helpers.training import ConfigError, validate_config

    with pytest.raises(ConfigError, match="rank"):
        parse_overrides(["rank=8"])
    # typed from the annotations (issue 21): no string where a number belongs, no bool for a rank
    assert parse_overrides(["n_train=-5"]) == {"n_train": -5}
    for bad, message in (["r=true", "expected an integer"], ["gradient_checkpointing=maybe", "true or false"],
                         ["learning_rate=fast", "a number"]):
        with pytest.raises(ConfigError, match=message):
            parse_overrides([bad])
    for override, message in ({"n_train": -5}, "n_train=-5"), ({"grad_accum": 0}, "grad_accum=0"), (
            {"max_length": 0}, "max_length=0"), ({"quantization": "nf3"}, "choose one of"), ({"r": 2.5}, "r=2.5"):
        with pytest.raises(ConfigError, match=message):
            validate_config(TrainConfig(**override))
    for config in (p.train for p in PROFILES.values()):
        assert validate_config(config) is config


def test_fsdp_is_refused_on_cpu_and_stores_4bit_weights_in_the_model_dtype(tmp_path):
    """FSDP shards parameters of one dtype, so the packed 4-bit weights must use the model's dtype."""
    from helpers.models import quantization_config
    from helpers.training import _sft_config

    assert quantization_config("nf4-dq", torch.bfloat16, quant_storage=torch.bfloat16).bnb_4bit_quant_storage \
        == torch.bfloat16
    assert quantization_config("nf4-dq", torch.bfloat16).bnb_4bit_quant_storage == torch.uint8  # DDP default
    with pytest.raises(ValueError, match="fsdp=True needs CUDA GPUs"):
        decide(TrainConfig(fsdp=True), CPU)
    assert _sft_config(TrainConfig(), tmp_path, decide(TrainConfig(), CPU)).fsdp in ("", [], None, False)


def test_fused_kernels_are_refused_on_cpu_before_the_model_loads_and_reach_the_trainer_on_a_gpu(tmp_path, monkeypatch):
    import helpers.runplan as runplan
    import helpers.training as training
    from helpers.profiles import get_profile

    fused = TrainConfig(fused_kernels=True)
    with pytest.raises(training.ConfigError, match="fused_kernels=True needs a CUDA GPU"):
        decide(fused, CPU)
    with pytest.raises(training.ConfigError, match="fused_kernels=True needs a CUDA GPU"):  # before anything loads
        training.train(get_profile("smoke"), fused, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert not training._sft_config(TrainConfig(), tmp_path, decide(TrainConfig(), CPU)).use_liger_kernel
    # where CUDA and Liger are present (the lent GPU), the setting becomes the trainer's use_liger_kernel
    monkeypatch.setattr(runplan, "fused_kernels_available", lambda cuda: True)
    assert training._sft_config(fused, tmp_path, decide(fused, CPU)).use_liger_kernel
    assert training.parse_overrides(["fused_kernels=true"]) == {"fused_kernels": True}


def test_fused_kernels_left_to_the_machine_are_used_where_they_can_run_and_said_off_elsewhere(tmp_path, capsys,
                                                                                              monkeypatch):
    import helpers.runplan as runplan
    import helpers.training as training
    from helpers.profiles import get_profile

    auto = TrainConfig(fused_kernels=None)
    assert training.config_for(get_profile("gpu")).fused_kernels is None  # the gpu profile's default
    runplan.ANNOUNCED.clear()  # said once per process: forget what earlier tests said
    assert not training._sft_config(auto, tmp_path, decide(auto, CPU, announce=True)).use_liger_kernel
    assert "fused kernels off: no CUDA GPU here" in capsys.readouterr().out
    training.check_run(get_profile("smoke"), auto, tmp_path, resume=False)  # not an error: nothing was asked for
    monkeypatch.setattr(runplan, "fused_kernels_problem", lambda cuda: None)
    assert training._sft_config(auto, tmp_path, decide(auto, CPU)).use_liger_kernel


def test_fsdp_settings_use_the_current_transformers_form():
    """fsdp=True + fsdp_config (the string form is deprecated in transformers 5.15+); version 1 needs
    use_orig_params=False; checkpointing under FSDP is reentrant."""
    from helpers.training import fsdp_settings

    two = fsdp_settings(TrainConfig(fsdp=True), checkpointing=False)
    assert two == {"fsdp": True, "fsdp_config": {"version": 2}}
    one = fsdp_settings(TrainConfig(fsdp=True, fsdp_version=1), checkpointing=True)
    assert one["fsdp_config"] == {"version": 1, "use_orig_params": False}
    assert one["gradient_checkpointing_kwargs"] == {"use_reentrant": True}
    from helpers.training import ConfigError, validate_config

    with pytest.raises(ConfigError, match="fsdp_version=3: must be 1 or 2"):
        validate_config(TrainConfig(fsdp_version=3))


def test_checkpointing_is_decided_by_the_planner_on_a_gpu_and_never_on_cpu(embedded_dir):
    """gpu profile (bf16 base, batch 256): ~55 GiB planned without checkpointing at max_length 256, so an 80 GB
    H100 trains without it and a 16 GB T4 or 24 GB L4 with it; an explicit setting always wins."""
    from dataclasses import replace

    from transformers import AutoConfig

    from helpers.profiles import get_profile
    from helpers.training import config_for, decide_checkpointing

    model_config = AutoConfig.from_pretrained(str(embedded_dir))
    gpu = config_for(get_profile("gpu"))
    assert gpu.gradient_checkpointing is None
    assert decide_checkpointing(gpu, model_config, cuda=True, gpu_bytes=80 * 2**30) is False
    assert decide_checkpointing(gpu, model_config, cuda=True, gpu_bytes=24 * 2**30) is True
    assert decide_checkpointing(gpu, model_config, cuda=True, gpu_bytes=16 * 2**30) is True
    assert decide_checkpointing(gpu, model_config, cuda=False) is False
    assert decide_checkpointing(replace(gpu, gradient_checkpointing=False), model_config, cuda=True,
                                gpu_bytes=16 * 2**30) is False
    small = replace(gpu, batch_size=8)  # a small batch fits a T4 without recomputation
    assert decide_checkpointing(small, model_config, cuda=True, gpu_bytes=16 * 2**30) is False


def test_push_adapter_uploads_only_the_adapter_without_network(tmp_path, monkeypatch):
    import huggingface_hub

    from helpers.adapters import push_adapter

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw["private"]))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kw):
            calls.append(("upload", kw["repo_id"], tuple(kw["allow_patterns"])))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    with pytest.raises(FileNotFoundError, match="no adapter_model.safetensors"):
        push_adapter(tmp_path, "me/price-adapter")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"x")
    assert push_adapter(tmp_path, "me/price-adapter", token="hf_secret") == "https://huggingface.co/me/price-adapter"
    assert ("create", "me/price-adapter", True) in calls  # private by default
    upload = [c for c in calls if c[0] == "upload"][0]
    assert "adapter_*" in upload[2] and not any("model.safetensors" == p for p in upload[2])


def test_report_to_is_checked_and_passed_to_the_trainer(tmp_path):
    from helpers.training import ConfigError, _sft_config, parse_overrides, validate_config

    assert _sft_config(TrainConfig(report_to="tensorboard"), tmp_path, decide(TrainConfig(), CPU)).report_to == ["tensorboard"]
    with pytest.raises(ConfigError, match="report_to='mlflow': must be one of none, tensorboard, wandb"):
        validate_config(TrainConfig(**parse_overrides(["report_to=mlflow"])))


def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, embedded_dir):
    """Stop a 3-step run after step 1, resume it, and compare with the same run uninterrupted. Before the fix the
    resumed adapters trained on in fp32 (peft's checkpoint load upcasts what trl had cast to bf16) and ended
    0.26% away; now every adapter weight is equal."""
    from dataclasses import replace

    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from helpers.training import make_trainer

    class StopAfterFirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step >= 1

    profile = get_profile("smoke")
    config = replace(TINY, max_steps=3)
    make_trainer(profile, config, tmp_path / "whole").train()
    stopped = make_trainer(profile, config, tmp_path / "cut")
    stopped.add_callback(StopAfterFirstStep())
    stopped.train()
    assert not (tmp_path / "cut" / "checkpoint-2").exists()  # it really stopped
    resumed = make_trainer(profile, config, tmp_path / "cut")
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-1"))
    a = load_file(str(tmp_path / "whole" / "checkpoint-3" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoint-3" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_that_does_not_mix_in_bf16_keeps_the_adapters_in_fp32():
    """trl casts a quantized model's adapters to bf16; the fp16 gradient scaler (a T4) cannot unscale bf16, and an
    fp32 CPU run without AVX512-BF16 multiplies bf16 adapters with a slow reference GEMM."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers.training import adapters_in_fp32

    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1))
    model = get_peft_model(tiny, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16)  # what trl 1.16 does for a quantized model
    assert adapters_in_fp32(model, bf16=True) == 0  # bf16 mixed precision: trl's cast stays
    assert adapters_in_fp32(model, bf16=False) == 4  # fp16 or fp32
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}


def test_cpu_bf16_needs_the_instruction_set_and_falls_back_with_a_message(capsys, tmp_path):
    from helpers.training import _sft_config, cpu_bf16_active

    asked = TrainConfig(cpu_bf16=True)
    assert cpu_bf16_active(asked, cuda=False, has_bf16=True)
    assert not cpu_bf16_active(asked, cuda=True, has_bf16=True)  # on a GPU bf16 is decided by compute capability
    assert not cpu_bf16_active(TrainConfig(), cuda=False, has_bf16=True)
    from helpers.runplan import ANNOUNCED

    ANNOUNCED.clear()  # said once per process: forget what earlier tests said
    assert not cpu_bf16_active(asked, cuda=False, has_bf16=False, announce=True)
    assert "no AVX512-BF16" in capsys.readouterr().out
    assert not cpu_bf16_active(asked, cuda=False, has_bf16=False, announce=True)
    assert capsys.readouterr().out == ""  # not a second time (notebook 06 builds three trainers)
    assert PROFILES["default"].train.cpu_bf16 and not PROFILES["smoke"].train.cpu_bf16
    from bitsandbytes.functional import has_avx512bf16

    assert _sft_config(asked, tmp_path, decide(asked, CPU)).bf16 == has_avx512bf16()
    assert not _sft_config(TrainConfig(), tmp_path, decide(TrainConfig(), CPU)).bf16


def test_cpu_bf16_training_computes_the_4bit_layers_in_bf16(tmp_path, embedded_dir):
    import bitsandbytes as bnb
    from bitsandbytes.functional import has_avx512bf16

    from helpers.training import build_model

    if not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: the setting falls back to fp32 (tested above)")
    config = TrainConfig(**{**TINY.__dict__, "cpu_bf16": True, "dropout": 0.0})
    model, _ = build_model(get_profile("smoke"), config)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == torch.bfloat16 for m in layers)
    assert all(not m.support_avx512bf16_for_cpu for m in layers)  # the gradient guard is on too
    result = train(get_profile("smoke"), config, tmp_path / "run")
    assert result.best_eval_loss is not None and 0 < result.best_eval_loss < 20


def test_compiled_decoder_layers_give_the_same_forward_and_a_model_without_layers_is_refused(tiny_llama):
    """compile_layers wraps every decoder layer (and only those); the traced layers compute what the plain ones do.
    The test traces with the eager backend (dynamo's graph capture, no C++ build); the GPU run uses inductor."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    import helpers.training as training

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_llama)),
                           training.lora_config(TrainConfig(r=4, alpha=8, dropout=0.0))).eval()
    ids = torch.randint(0, 100, (2, 7))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    assert training.compile_decoder_layers(model, backend="eager") == 2
    compiled = [m for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    assert [type(m).__name__ for m in compiled] == ["LlamaDecoderLayer", "LlamaDecoderLayer"]
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, plain, atol=1e-5)
    assert training.parse_overrides(["compile_layers=true"]) == {"compile_layers": True}
    with pytest.raises(training.ConfigError, match="no decoder layers"):
        training.compile_decoder_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_the_trainer_applies_the_plans_training_only_decisions_and_restores_them_after(tmp_path, embedded_dir):
    """RunPlan.adapter_input_casts and .cudnn_attention reach the trainer: off during train() (every step), back on
    after it (a trained model then generates without autocast), and on in a CPU fp32 plan, which needs the casts."""
    from transformers import TrainerCallback

    from helpers.runplan import plan
    from helpers.training import make_trainer

    profile = get_profile("smoke")
    assert plan(profile, TINY).adapter_input_casts  # fp32 on CPU: no autocast to undo them
    flags = lambda model: {m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")}
    seen = []

    hooks = lambda model: len(model.get_base_model().get_decoder()._forward_pre_hooks)  # the padding mask's

    class Probe(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            seen.append((flags(model), torch.backends.cuda.cudnn_sdp_enabled(), hooks(model)))

    skip = replace(plan(profile, TINY), adapter_input_casts=False, cudnn_attention=False, padding_mask=False)
    trainer = make_trainer(profile, TINY, tmp_path / "run", evaluate=False, checkpoints=False, run_plan=skip)
    trainer.add_callback(Probe())
    trainer.train()
    assert seen == [({False}, False, 1)] * TINY.max_steps
    assert flags(trainer.model) == {True} and torch.backends.cuda.cudnn_sdp_enabled() and hooks(trainer.model) == 0


def test_fit_adapter_gives_a_plain_sft_trainer_the_plans_training_only_decisions_once(tmp_path, embedded_dir):
    """Notebook 06 builds trl's SFTTrainer in a visible cell and hands it to fit_adapter: the run plan's
    training-only decisions (here the padding mask dropped) must reach it too, or the notebook's run would not be the
    one its printed plan describes; the workbook's own trainer applies them itself, so they are not applied twice."""
    from pathlib import Path

    from transformers import TrainerCallback
    from trl import SFTTrainer

    from helpers.training import fit_adapter, make_trainer

    profile = get_profile("smoke")
    config = replace(TINY, padding_mask=False)
    hooks = lambda model: len(model.get_base_model().get_decoder()._forward_pre_hooks)  # the padding mask's

    class Probe(TrainerCallback):
        def __init__(self):
            self.seen = []

        def on_step_begin(self, args, state, control, model=None, **kwargs):
            self.seen.append(hooks(model))

    built = make_trainer(profile, config, tmp_path / "built")
    plain = SFTTrainer(model=built.model, args=built.args, train_dataset=built.train_dataset,
                       eval_dataset=built.eval_dataset, processing_class=built.processing_class)
    assert not hasattr(plain, "run_plan")
    for trainer, folder in ((plain, "plain"), (make_trainer(profile, config, tmp_path / "own"), "own")):
        probe = Probe()
        trainer.add_callback(probe)
        result = fit_adapter(trainer, profile, config, tmp_path / folder)
        assert probe.seen == [1] * config.max_steps, folder  # one hook at every step: applied, and only once
        assert hooks(trainer.model) == 0 and Path(result.adapter_dir).is_dir()  # removed after training
