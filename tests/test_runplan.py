"""The run plan: every decision about how a run executes, made once before anything loads (helpers.runplan)."""

from dataclasses import replace

import pytest
import torch

import helpers.runplan as runplan
from helpers.config import ConfigError, HeadConfig, TrainConfig
from helpers.profiles import PROFILES, DeviceInfo, ProfileError
from helpers.runplan import decide, plan

CPU = DeviceInfo(device="cpu", name="test CPU", compute_dtype=torch.float32, bf16=False, fp16=False,
                 total_memory_gib=None)
H100 = DeviceInfo(device="cuda", name="H100", compute_dtype=torch.bfloat16, bf16=True, fp16=False,
                  total_memory_gib=79.1)
T4 = DeviceInfo(device="cuda", name="Tesla T4", compute_dtype=torch.float16, bf16=False, fp16=True,
                total_memory_gib=14.6)


def test_a_cpu_run_is_planned_in_fp32_single_process_with_peft_casting_adapter_inputs(monkeypatch):
    import bitsandbytes.functional

    monkeypatch.setattr(bitsandbytes.functional, "has_avx512bf16", lambda: False)  # a CPU without it (as CI's may be)
    run = plan(PROFILES["default"], PROFILES["default"].train, device=CPU)
    assert (run.device, run.mixed_precision, run.optimizer, run.checkpointing, run.fused_kernels, run.layout,
            run.processes) == ("cpu", "no", "adamw_torch", False, False, "single", 1)
    # without autocast an fp32 adapter needs its input in fp32: peft's cast stays
    assert run.adapter_input_casts and run.compute_dtype == torch.float32 and run.device_map == {"": "cpu"}
    assert (run.dataloader_workers, run.cudnn_attention) == (0, True)  # the notebooks' CPU runs are unchanged
    assert dict(run.rows())["layout"] == "single, 1 process(es)"
    # peft's preparation (fp32 embeddings, head and norms) as before; the table lists no GPU-only decision
    assert run.frozen_fp32 and run.checkpoint_layers is None and run.gpu_rows() == []
    monkeypatch.setattr(bitsandbytes.functional, "has_avx512bf16", lambda: True)  # one with it: bf16 autocast
    run = plan(PROFILES["default"], PROFILES["default"].train, device=CPU)
    assert (run.mixed_precision, run.compute_dtype, run.adapter_input_casts) == ("bf16", torch.bfloat16, False)


def test_a_gpu_run_mixes_in_the_cards_own_precision_and_skips_the_wasted_input_casts(monkeypatch, embedded_dir):
    smol = runplan.read_model_config(None)  # the embedded model's config.json: no weights read
    monkeypatch.setattr(runplan, "fused_kernels_problem", lambda cuda: None)  # as on the lent GPU with Liger
    gpu = PROFILES["gpu"].train
    run = decide(gpu, H100, smol)
    assert (run.mixed_precision, run.compute_dtype, run.optimizer, run.fused_kernels) == \
        ("bf16", torch.bfloat16, "adamw_torch_fused", True)
    assert not run.adapter_input_casts  # autocast casts them back: the copies would only cost memory
    assert not run.cudnn_attention  # its per-shape CPU cost bounds a small model's step
    # attention without the padding mask (2.5 GiB less at the same speed, nomask-h200-2026-12-02); the course profile,
    # not measured on its models, keeps it, and the CPU profiles never had the setting changed
    assert not run.padding_mask and dict(run.rows())["padding mask"].startswith("dropped")
    assert all(decide(PROFILES[name].train, H100, smol).padding_mask for name in ("course", "default", "smoke"))
    monkeypatch.setattr(runplan.os, "cpu_count", lambda: 16)
    assert decide(gpu, H100, smol).dataloader_workers == 2  # batches collated beside the loop
    monkeypatch.setattr(runplan.os, "cpu_count", lambda: 2)  # Colab: no core to spare
    assert decide(gpu, H100, smol).dataloader_workers == 0
    assert not run.checkpointing  # batch 256 fits in 80% of an H100
    on_t4 = decide(gpu, T4, smol)
    assert on_t4.mixed_precision == "fp16" and on_t4.checkpointing  # the same batch does not fit 15 GiB
    # the optimizer a config leaves to the machine: paged AdamW for SFT on a GPU, fused AdamW for the head
    assert decide(TrainConfig(), H100, smol).optimizer == "paged_adamw_32bit"
    assert decide(HeadConfig(), H100).optimizer == "adamw_torch_fused"
    assert decide(HeadConfig(), CPU).optimizer == "adamw_torch"
    assert decide(replace(TrainConfig(), optimizer="adamw_torch"), H100, None).optimizer == "adamw_torch"


def test_what_a_machine_cannot_run_is_refused_or_announced_before_anything_loads(monkeypatch, capsys):
    with pytest.raises(ProfileError, match="needs a CUDA GPU"):
        plan(PROFILES["gpu"], PROFILES["gpu"].train, device=CPU)
    with pytest.raises(ConfigError, match="fused_kernels=True needs a CUDA GPU"):
        decide(TrainConfig(fused_kernels=True), CPU)
    with pytest.raises(ConfigError, match="fsdp=True needs CUDA GPUs"):
        decide(TrainConfig(fsdp=True), CPU)
    runplan.ANNOUNCED.clear()  # said once per process: forget what earlier tests said
    run = decide(TrainConfig(fused_kernels=None), CPU, announce=True)
    assert not run.fused_kernels and "fused kernels off: no CUDA GPU here" in capsys.readouterr().out
    # a GPU run whose model config cannot be read (a hub model offline) checkpoints, and says why
    unread = decide(TrainConfig(gradient_checkpointing=None), H100, model_config=None)
    assert unread.checkpointing and any("could not be read" in note for note in unread.notes)


def test_the_process_layout_comes_from_the_launchers_environment(monkeypatch, embedded_dir):
    smol = runplan.read_model_config(None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    run = decide(TrainConfig(), H100, smol)
    assert (run.layout, run.processes, run.rank, run.device_map) == ("ddp", 2, 1, {"": 1})
    assert decide(TrainConfig(fsdp=True), H100, smol).layout == "fsdp"


class _Attention(torch.nn.Module):
    """Two projections of one input, as q_proj and k_proj read the same normalised hidden state."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.o = torch.nn.Linear(32, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 8)

    def forward(self, x):
        return self.o(torch.nn.functional.silu(self.q(x)) * self.k(x))


def _lora_on_a_bf16_base():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = _Attention().to(torch.bfloat16)
    for p in base.parameters():
        p.requires_grad_(False)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q", "k", "o"],
                                            init_lora_weights=False))
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # peft keeps adapters fp32
    return model


def _step(model, x, casts: bool):
    """Loss, adapter gradients and the bytes autograd keeps for backward, under bf16 autocast."""
    from peft.helpers import disable_input_dtype_casting

    saved = {}

    def pack(t):  # distinct storages: a tensor kept by two operations costs its memory once
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.zero_grad()
    with disable_input_dtype_casting(model, active=not casts), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().pow(2).mean()
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads, sum(saved.values())


def test_skipping_the_adapter_input_casts_under_autocast_changes_no_number_and_keeps_less():
    """The plan's claim, on CPU autocast: bf16 -> fp32 -> bf16 is exact, so loss and gradients are bit-identical,
    and autograd no longer keeps each adapter's own copy of its input."""
    model = _lora_on_a_bf16_base()
    x = torch.randn(64, 32).to(torch.bfloat16)
    loss_cast, grads_cast, kept_cast = _step(model, x, casts=True)
    loss_skip, grads_skip, kept_skip = _step(model, x, casts=False)
    assert loss_cast == loss_skip
    assert all(torch.equal(grads_cast[n], grads_skip[n]) for n in grads_cast)
    # with the casts q, k and o each keep a bf16 copy of their input (3 x 64 x 32 x 2 bytes); without, q and k
    # share x itself and o keeps its input (2 x 64 x 32 x 2 bytes)
    assert kept_cast - kept_skip == 64 * 32 * 2
    assert all(m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled"))


def test_only_the_layers_a_config_names_recompute_and_only_under_checkpointing(monkeypatch, embedded_dir):
    """checkpoint_layers is the config's to set (the plan does not choose it: fewer recomputed layers were not faster
    for the course models, benchmarks/results/frozen-h200-2026-12-02); it needs checkpointing on."""
    smol = runplan.read_model_config(None)
    monkeypatch.setattr(runplan, "fused_kernels_problem", lambda cuda: None)
    gpu = PROFILES["gpu"].train
    on_t4 = decide(gpu, T4, smol)
    assert on_t4.checkpointing and on_t4.checkpoint_layers is None  # turned on by the planner: every layer
    assert dict(on_t4.rows())["checkpointed layers"] == "all"
    asked = replace(gpu, gradient_checkpointing=True, checkpoint_layers=5)
    assert decide(asked, T4, smol).checkpoint_layers == 5 and dict(decide(asked, T4, smol).rows())["checkpointed layers"] == 5
    assert decide(replace(asked, gradient_checkpointing=False), T4, smol).checkpoint_layers is None
    assert decide(replace(HeadConfig(), gradient_checkpointing=True), T4).checkpoint_layers is None  # the head: all
    assert "checkpointed layers" not in dict(decide(gpu, H100, smol).rows())  # nothing recomputes on an H100


def test_on_a_gpu_the_4_bit_bases_other_weights_stay_in_the_compute_dtype():
    """peft's preparation upcasts embeddings, head and norms to fp32; under a GPU's mixed precision the plan keeps
    them 16-bit (Llama 3.1 8B at batch 16 on a T4's cap: 11.57 -> 7.96 GiB, frozen-h200-2026-12-02). CPU runs and
    the price head keep peft's preparation."""
    course = PROFILES["course"].train
    assert not decide(course, T4).frozen_fp32 and not decide(course, H100).frozen_fp32
    assert dict(decide(course, T4).rows())["frozen weights of a 4-bit base"] == "compute dtype"
    assert decide(course, CPU).frozen_fp32 and decide(HeadConfig(), T4).frozen_fp32


def test_without_the_padding_mask_real_tokens_and_gradients_are_unchanged_and_the_mask_returns_after():
    """padding_mask=False: under causal attention a real token of a right-padded batch never sees the pads after it,
    so dropping the mask changes only the pads' outputs (labels -100): the same loss and gradients. A left-padded
    batch is refused; the mask is back after training."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    from helpers.runplan import while_training, without_padding_mask

    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, attn_implementation="sdpa")

    def model():
        torch.manual_seed(0)
        return get_peft_model(AutoModelForCausalLM.from_config(config),
                              LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))

    ids, mask, labels = torch.zeros(3, 12, dtype=torch.long), torch.zeros(3, 12, dtype=torch.long), torch.full((3, 12), -100)
    draw = torch.Generator().manual_seed(1)
    for row, length in enumerate((5, 9, 12)):  # right-padded, as trl's collator pads
        ids[row, :length] = torch.randint(3, 300, (length,), generator=draw)
        mask[row, :length] = 1
        labels[row, 2:length] = ids[row, 2:length]
    with_mask, without = model(), model()
    with_mask(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    with without_padding_mask(without):
        out = without(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
    reference = with_mask(input_ids=ids, attention_mask=mask).logits.detach()
    real = mask.bool()
    assert torch.allclose(out.logits[real], reference[real], atol=1e-5)
    assert not torch.allclose(out.logits[~real], reference[~real], atol=1e-3)  # the mask really was dropped
    grads = [(a.grad, b.grad) for a, b in zip(with_mask.parameters(), without.parameters()) if a.grad is not None]
    assert len(grads) == 8 and all(torch.allclose(a, b, atol=1e-6) for a, b in grads)
    left = model()
    with pytest.raises(ConfigError, match="right-padded"), without_padding_mask(left):
        left(input_ids=ids, attention_mask=mask.flip(1))
    decoder = left.get_base_model().get_decoder()
    run = replace(decide(TrainConfig(padding_mask=False), CPU), adapter_input_casts=True)
    assert not run.padding_mask and dict(run.rows())["padding mask"].startswith("dropped")
    with while_training(run, left):
        assert len(decoder._forward_pre_hooks) == 1
    assert len(decoder._forward_pre_hooks) == 0 and decide(TrainConfig(), CPU).padding_mask
    assert decide(HeadConfig(), CPU).padding_mask  # the head has no such setting: its mask stays
