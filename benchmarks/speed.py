"""How fast does fine-tuning run, in how much memory, and how much of the hardware does it use?

Two benchmarks, one command line (prints a table, writes JSON):

    python benchmarks/speed.py modes   [--batch 32 --seq 128 --steps 20]   # full FT vs LoRA vs QLoRA
    python benchmarks/speed.py recipes [--examples 2048]                 # plain SFT recipe vs the workbook's
    python benchmarks/speed.py speed --profile gpu [--examples 8192]     # the profile's config vs speed settings

`modes` runs a plain training loop on packed rows of real catalog text (every token is real, so tokens/s
means the same for every mode). `recipes` runs the same SFTTrainer twice on the same examples with the
same hyperparameters: once as tutorials set it up (pad every example to max_length=1024, gradient
checkpointing, small micro-batches with accumulation), once with the workbook's speed settings.

The rows, their MFU arithmetic and their table live in `helpers.benchmark` (notebook 06 reads the committed files
through it); this script only runs them. `bash benchmarks/gpu_run.sh speed|fused|compile|bench|extra` calls it on the GPU.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.benchmark import (  # noqa: E402
    BenchResult,
    flops_per_token,
    matmul_params,
    peak_flops,
    table,
    write_json,
)

MODES = ("full-bf16", "lora-bf16", "qlora-nf4", "qlora-nf4-dq")


def _device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def _packed_rows(tokenizer, n_rows: int, seq: int) -> torch.Tensor:
    """[n_rows, seq] token ids cut from the catalog's prompts + completions laid end to end."""
    from helpers.data import load_splits
    from helpers.profiles import get_profile

    data, _ = load_splits(get_profile("smoke" if n_rows * seq <= 200 * 100 else "default"))
    ids: list[int] = []
    for row in data["train"]:
        ids += tokenizer(row["prompt"] + row["completion"])["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) >= n_rows * seq:
            break
    if len(ids) < n_rows * seq:
        ids = (ids * (n_rows * seq // max(1, len(ids)) + 1))
    return torch.tensor(ids[: n_rows * seq]).view(n_rows, seq)


def step_timer(after_step=None):
    """A Trainer callback that times every optimizer step (synchronised on a GPU) into `.times`, and at the start
    of training records what is held (`.before_train_gib`) and the load peak (`.load_peak_gib`), then resets the
    peak so that `torch.cuda.max_memory_allocated()` afterwards is the training peak. `after_step` runs after
    each step (the profiler's `step`, say)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.before_train_gib = self.load_peak_gib = None
            self._started = 0.0

        def on_train_begin(self, args, state, control, **kwargs):  # after the model is wrapped (FSDP, DDP)
            if torch.cuda.is_available():
                self.before_train_gib = torch.cuda.memory_allocated() / 2**30
                self.load_peak_gib = torch.cuda.max_memory_allocated() / 2**30
                torch.cuda.reset_peak_memory_stats()

        def on_step_begin(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self._started)
            if after_step is not None:
                after_step()

    return StepTimer()


def mode_dtype(mode: str, cuda: bool, native_bf16: bool | None = None) -> torch.dtype:
    """The dtype a benchmark mode computes in: bf16 where the GPU has it natively (compute capability >= 8.0),
    fp16 (with loss scaling) for the 4-bit modes on older GPUs such as a T4, where bf16 is only emulated
    (torch reports bf16 as supported there anyway). The bf16 modes are refused on such a GPU."""
    if not cuda:
        return torch.bfloat16  # the CPU runs the loop without autocast; only the 4-bit layers compute in bf16
    if native_bf16 is None:
        from helpers.profiles import native_bf16 as has_bf16

        native_bf16 = has_bf16()
    if native_bf16:
        return torch.bfloat16
    if mode.endswith("-bf16"):
        raise ValueError(f"mode {mode!r} needs native bf16 (compute capability 8.0+); this GPU emulates it. "
                         "Run the qlora modes, which compute in fp16 here.")
    return torch.float16


def _mode_model(mode: str, cuda: bool, r: int, dtype: torch.dtype = torch.bfloat16):
    """The mode's model: every weight trainable (full fine-tune), or the trainer's own adapters (`add_adapters`)
    on q, k, v, o with alpha = 2r and no dropout, on a bf16 or 4-bit base."""
    from helpers.lora import ATTENTION
    from helpers.models import load_base_model
    from helpers.training import TrainConfig, add_adapters

    quantization = {"full-bf16": "bf16", "lora-bf16": "bf16", "qlora-nf4": "nf4", "qlora-nf4-dq": "nf4-dq"}[mode]
    loaded = load_base_model(quantization=quantization, device="cuda" if cuda else "cpu", compute_dtype=dtype,
                             for_training=True)
    model = loaded.model
    if mode == "full-bf16":
        for p in model.parameters():
            p.requires_grad_(True)
        return model, loaded.tokenizer
    config = TrainConfig(quantization=quantization, r=r, alpha=2 * r, dropout=0.0, target_modules=ATTENTION)
    return add_adapters(model, config, checkpointing=False), loaded.tokenizer


def _mode_optimizer(mode: str, params: list, lr: float, cuda: bool):
    """Paged AdamW for QLoRA on a GPU (what QLoRA uses against memory spikes), fused AdamW otherwise."""
    if cuda and mode.startswith("qlora"):
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW32bit(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, fused=cuda)


def _timed_loop(model, optimizer, rows: torch.Tensor, batch: int, steps: int, warmup: int, dtype: torch.dtype,
                cuda: bool) -> tuple[float, float]:
    """`warmup` untimed steps, then `steps` timed ones (synchronised on a GPU, peak memory reset before them);
    returns (seconds, last loss). fp16 scales the loss so that small gradients do not underflow."""
    scaler = torch.amp.GradScaler("cuda") if cuda and dtype == torch.float16 else None
    device = rows.device
    model.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    loss_value, started = None, None
    for step in range(steps + warmup):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
        batch_ids = rows[step * batch : (step + 1) * batch]
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            loss = model(input_ids=batch_ids, labels=batch_ids).loss
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started, loss_value


def bench_mode(mode: str, batch: int = 32, seq: int = 128, steps: int = 20, warmup: int = 3, r: int = 32,
               lr: float = 1e-4, gradient_checkpointing: bool = False) -> BenchResult:
    """A plain loop (forward, backward, AdamW step) on fixed [batch, seq] rows; times the steps after warm-up."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    cuda = torch.cuda.is_available()
    dtype = mode_dtype(mode, cuda)
    torch.manual_seed(0)
    model, tokenizer = _mode_model(mode, cuda, r, dtype)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if mode != "full-bf16":
            model.enable_input_require_grads()
    device = next(model.parameters()).device
    rows = _packed_rows(tokenizer, batch * (steps + warmup), seq).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _mode_optimizer(mode, params, lr, cuda)
    seconds, loss_value = _timed_loop(model, optimizer, rows, batch, steps, warmup, dtype, cuda)
    tokens = steps * batch * seq
    frozen, trainable_mm = matmul_params(model)
    config = model.config
    fpt = flops_per_token(frozen, trainable_mm, config.num_hidden_layers, config.hidden_size, seq)
    peak = peak_flops(_device_name()) if cuda else None
    result = BenchResult(
        name=mode, device=_device_name(), tokens=tokens, seconds=round(seconds, 3),
        tokens_per_s=tokens / seconds, step_ms=1000 * seconds / steps,
        peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        trainable=sum(p.numel() for p in params), matmul_params=frozen + trainable_mm, flops_per_token=fpt,
        mfu=(fpt * tokens / seconds / peak) if peak else None, loss=loss_value,
        settings={"batch": batch, "seq": seq, "steps": steps, "r": r if mode != "full-bf16" else None,
                  "gradient_checkpointing": gradient_checkpointing},
    )
    del model, optimizer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


# --------------------------------------------------------------------------------------------------
# recipes: the same SFT run set up two ways
# --------------------------------------------------------------------------------------------------


def recipe_configs(base, extra: bool = False) -> dict[str, object]:
    """The plain tutorial setup and the workbook's, both with `base`'s hyperparameters (same effective batch).

    extra adds two variants that are not the same training run: a fused (non-paged) AdamW, and a 4x larger
    batch that fills the GPU (fewer optimizer steps for the same examples, so its loss is not comparable).
    """
    micro = max(1, base.batch_size // 4)
    configs = {
        # SFTConfig's defaults as tutorials copy them: max_length 1024 and every example padded to it,
        # activations recomputed (gradient checkpointing), a small micro-batch with gradient accumulation
        "plain recipe": replace(base, max_length=1024, pad_to_multiple_of=1024, group_by_length=False,
                                gradient_checkpointing=True, batch_size=micro, grad_accum=base.batch_size // micro),
        # right-sized max_length, batches padded to their longest example and grouped by length, one big
        # micro-batch, gradient checkpointing kept on so memory does not grow
        "workbook": replace(base, max_length=256, pad_to_multiple_of=None, group_by_length=True,
                            gradient_checkpointing=True, grad_accum=1),
        "workbook, no checkpointing": replace(base, max_length=256, pad_to_multiple_of=None, group_by_length=True,
                                              gradient_checkpointing=False, grad_accum=1),
    }
    if extra:
        fast = configs["workbook, no checkpointing"]
        configs["workbook, no checkpointing, fused AdamW"] = replace(fast, optimizer="adamw_torch_fused")
        configs["workbook, no checkpointing, 4x batch"] = replace(fast, batch_size=4 * base.batch_size)
    return configs


def bench_recipe(name: str, config, profile, output_dir: Path, data=None, plan_changes: dict | None = None,
                 device=None) -> BenchResult:
    """Train `config` with SFTTrainer (no evaluation or saving while timing), then score the validation loss.
    `plan_changes` overrides decisions of the run's plan (helpers.runplan), to measure one against its alternative;
    `device` stands in for this machine's (an older GPU emulated: `t4_like`)."""
    from helpers.runplan import plan
    from helpers.training import make_trainer

    cuda = torch.cuda.is_available()
    run_plan = replace(plan(profile, config, device=device, announce=True), **(plan_changes or {}))
    trainer = make_trainer(profile, config, output_dir, data, evaluate=False, run_plan=run_plan)
    timer = step_timer()
    trainer.add_callback(timer)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    val_loss = float(trainer.evaluate()["eval_loss"])
    tokens = int(max((float(e["num_tokens"]) for e in trainer.state.log_history if "num_tokens" in e), default=0))
    steps = max(1, trainer.state.global_step)
    model = trainer.model
    frozen, trainable_mm = matmul_params(model)
    cfg = model.config
    avg_seq = tokens / max(1, config.n_train or len(trainer.train_dataset)) / max(1.0, config.epochs)
    fpt = flops_per_token(frozen, trainable_mm, cfg.num_hidden_layers, cfg.hidden_size, int(avg_seq))
    peak = peak_flops(_device_name()) if cuda else None
    result = BenchResult(
        name=name, device=_device_name(), tokens=tokens, seconds=round(seconds, 3), tokens_per_s=tokens / seconds,
        step_ms=1000 * seconds / steps, peak_memory_gb=peak_gb,
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        matmul_params=frozen + trainable_mm, flops_per_token=fpt,
        mfu=(fpt * tokens / seconds / peak) if peak else None, loss=val_loss,
        first_steps_s=round(sum(timer.times[:3]), 3) if timer.times else None,
        steady_tokens_per_s=(tokens * (1 - 3 / steps) / sum(timer.times[3:])) if len(timer.times) > 3 else None,
        settings={k: v for k, v in asdict(config).items()
                  if k in ("max_length", "pad_to_multiple_of", "group_by_length", "gradient_checkpointing",
                           "batch_size", "grad_accum", "n_train", "n_val", "epochs", "max_steps", "quantization",
                           "padding_free", "learning_rate", "dropout", "torch_compile", "optimizer", "fused_kernels",
                           "compile_layers", "checkpoint_layers", "padding_mask")} | {"adapter_input_casts": run_plan.adapter_input_casts,
                                                 "dataloader_workers": run_plan.dataloader_workers,
                                                 "cudnn_attention": run_plan.cudnn_attention,
                                                 "frozen_fp32": run_plan.frozen_fp32,
                                                 "fused_kernels": run_plan.fused_kernels,  # None decided
                                                 "checkpoint_layers": run_plan.checkpoint_layers,
                                                 "mixed_precision": run_plan.mixed_precision},
    )
    del trainer, model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def speed_configs(base, cpu: bool = False) -> dict[str, object]:
    """The profile's own config and variants that change only how fast it trains (issue 19), one reason each.

    Every variant sees the same examples; the 4x-batch ones take 4x fewer optimizer steps, so their learning rate
    is doubled (square-root scaling) and their validation loss says whether that was enough.
    """
    big = {"batch_size": 4 * base.batch_size, "learning_rate": 2 * base.learning_rate}
    if cpu:  # 2 cores: no launch overhead to amortise; what costs is arithmetic, so cut work per token
        fp32 = {"quantization": "fp32", "cpu_bf16": False}
        variants = {
            "profile as it is": {},
            # the default profile before issue 19: fp32 compute, adapter dropout 0.1 (the before/after on one machine)
            "before issue 19": {"cpu_bf16": False, "dropout": 0.1},
            # CPUs with AVX512-BF16 / AMX multiply bf16 many times faster than fp32 (notebook 01, section 8)
            "fp32 compute": {"cpu_bf16": False},
            # the dropout mask copies the input of each of the seven adapted matrices in every layer
            "adapter dropout 0.1": {"dropout": 0.1},
            "padding-free": {"padding_free": True},
            # the CPU 4-bit kernel dequantises every weight at every matmul; 135M fp32 weights are 0.54 GB
            "LoRA on an fp32 base": fp32,
        }
        return {name: replace(base, **overrides) for name, overrides in variants.items()}
    bf16 = {"quantization": "bf16"}
    variants = {
        "profile as it is": {},
        # no pad tokens: every token computed is a real one (the price examples vary from ~60 to ~160 tokens)
        "padding-free": {"padding_free": True},
        # a 135M base fits in 0.27 GB as bf16: no 4-bit dequantisation inside every matmul
        "LoRA on a bf16 base": bf16,
        # a small model is launch-bound: 4x the tokens per kernel launch
        "4x batch, lr x2": big,
        "bf16 base, 4x batch, lr x2": {**bf16, **big},
        # activations recomputed in backward: memory back down where the GPU has idle time to spare
        "bf16 base, 4x batch, lr x2, checkpointing": {**bf16, **big, "gradient_checkpointing": True},
        # fewer kernels per step: no dropout mask on every adapter input
        "bf16 base, 4x batch, lr x2, no dropout": {**bf16, **big, "dropout": 0.0},
        "bf16 base, 4x batch, lr x2, no dropout, checkpointing": {**bf16, **big, "dropout": 0.0,
                                                                  "gradient_checkpointing": True},
    }
    # against the memory target (no more than the old profile's 14.6 GiB): recompute activations, and win the
    # time back with a bigger batch (the step is launch-bound, so 2x or 4x the tokens cost far less than 2x the time)
    ckpt = {"gradient_checkpointing": True}
    variants.update({
        # the gpu profile before issue 19 (4-bit base, dropout 0.1, batch 64): the before/after on one machine
        "before issue 19": {"quantization": "nf4-dq", "dropout": 0.1, "batch_size": 64, "learning_rate": 4e-4,
                            "gradient_checkpointing": False},
        "checkpointing": ckpt,
        "checkpointing, 2x batch, lr x1.4": {**ckpt, "batch_size": 2 * base.batch_size,
                                             "learning_rate": 2**0.5 * base.learning_rate},
        "checkpointing, 4x batch, lr x2": {**ckpt, **big},
        "checkpointing, 2x batch, lr x2": {**ckpt, "batch_size": 2 * base.batch_size, "learning_rate": 2 * base.learning_rate},
        "checkpointing, 4x batch, lr x4": {**ckpt, "batch_size": 4 * base.batch_size, "learning_rate": 4 * base.learning_rate},
        # the profile's 4x batch takes 4x fewer steps at a square-root-scaled rate and ended 2% higher in validation
        # loss: does a larger rate (linear scaling from the old batch 64 at 4e-4 is 1.6e-3) close the gap?
        "lr x1.5": {"learning_rate": 1.5 * base.learning_rate},
        "lr x2": {"learning_rate": 2 * base.learning_rate},
    })
    # issue 32: half the batch holds half the activations (most of the peak); Liger's kernels keep fewer of them and
    # launch fewer kernels. They patch the model classes for the whole process, so run them after every row
    # without (benchmarks/gpu_run.sh fused runs them in a process of their own).
    half = {"batch_size": base.batch_size // 2, "learning_rate": base.learning_rate * 0.5**0.5}
    variants.update({
        "half batch, lr /1.4": half,
        "fused kernels": {"fused_kernels": True},
        "fused kernels, half batch, lr /1.4": {"fused_kernels": True, **half},
        "fused kernels, checkpointing": {"fused_kernels": True, **ckpt},
    })
    # measured and left out: torch.compile on the bf16-base LoRA model took 209 s for its first step on the H100
    # (recompiling per adapter module) and did not finish 32 steps in 5 minutes. Compiling each decoder layer
    # instead (one compilation for all of them) fuses the elementwise work the step is bound by; without Liger (a
    # process of its own) and with it
    layers = {"compile_layers": True}
    variants.update({
        "compiled layers": {**layers, "fused_kernels": False},
        "compiled layers, checkpointing": {**layers, "fused_kernels": False, **ckpt},
        "compiled layers, fused kernels": {**layers, "fused_kernels": True},
        "compiled layers, fused kernels, checkpointing": {**layers, "fused_kernels": True, **ckpt},
        "compiled layers, fused kernels, half batch, lr /1.4": {**layers, "fused_kernels": True, **half},
    })
    # issue 32: peft's copy of each adapter's input to fp32, undone by autocast; the plan skips it under mixed precision
    # (helpers.runplan). These rows put it back (PLAN_CHANGES) to measure what skipping it saves.
    variants.update({
        "fused kernels, adapter inputs cast": {"fused_kernels": True},
        "adapter inputs cast": {},
    })
    # issue 32: checkpointing only some layers: the others keep their activations, so memory falls by a layer's worth
    # for each layer that recomputes, and time rises by a layer's recomputation
    variants.update({f"checkpointing, first {n} layers": {**ckpt, "checkpoint_layers": n} for n in (6, 8, 10, 12, 14, 16)})
    # attention without the padding mask (right padding, causal attention: the same loss): SDPA's flash kernel, and
    # grouped-query attention without the repeated keys and values (3 GiB of the profile's step)
    variants.update({"no padding mask": {"padding_mask": False}, "padding mask kept": {"padding_mask": True}})
    variants.update({f"no padding mask, checkpointing, first {n} layers": {"padding_mask": False, **ckpt,
                                                                           "checkpoint_layers": n} for n in (8, 10, 12)})
    variants.update({f"compiled layers, fused kernels, checkpointing, first {n} layers":
                     {**layers, "fused_kernels": True, **ckpt, "checkpoint_layers": n} for n in (12, 14, 16)})
    variants.update({f"no padding mask, compiled layers, fused kernels, checkpointing, first {n} layers":
                     {"padding_mask": False, **layers, "fused_kernels": True, **ckpt, "checkpoint_layers": n}
                     for n in (8, 10, 12)})
    # the course's 4-bit base on this model: peft's preparation upcasts the embeddings, head and norms to fp32 (and
    # the residual stream with them); the plan keeps them 16-bit on a GPU (PLAN_CHANGES puts the upcast back)
    variants.update({
        "4-bit base": {"quantization": "nf4-dq"},
        "4-bit base, frozen weights fp32": {"quantization": "nf4-dq"},
    })
    return {name: replace(base, **overrides) for name, overrides in variants.items()}


PLAN_CHANGES = {  # rows that differ from their config's own plan in one decision
    "fused kernels, adapter inputs cast": {"adapter_input_casts": True},
    "adapter inputs cast": {"adapter_input_casts": True},
    "4-bit base, frozen weights fp32": {"frozen_fp32": True},
}


def t4_like(device, memory_gib: float | None = None):
    """This GPU as a T4 would run the plan: fp16 mixed precision (no native bf16); its memory `memory_gib` where
    the process is capped to it (else this GPU's)."""
    return replace(device, compute_dtype=torch.float16, bf16=False, fp16=True,
                   total_memory_gib=memory_gib or device.total_memory_gib)




def main(argv: list[str] | None = None) -> int:
    from helpers.paths import outputs_dir
    from helpers.profiles import get_profile, profile_name
    from helpers.training import config_for

    parser = argparse.ArgumentParser(description="training-efficiency benchmark")
    sub = parser.add_subparsers(dest="what", required=True)
    modes = sub.add_parser("modes", help="full fine-tune vs LoRA vs QLoRA in a plain loop")
    modes.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    modes.add_argument("--batch", type=int, default=32)
    modes.add_argument("--seq", type=int, default=128)
    modes.add_argument("--steps", type=int, default=20)
    modes.add_argument("--warmup", type=int, default=3)
    modes.add_argument("--r", type=int, default=32)
    modes.add_argument("--checkpointing", action="store_true", help="gradient checkpointing on")
    recipes = sub.add_parser("recipes", help="plain SFT recipe vs the workbook's settings, same examples")
    recipes.add_argument("--profile", default=profile_name())
    recipes.add_argument("--examples", type=int, default=2048)
    recipes.add_argument("--val", type=int, default=256)
    recipes.add_argument("--batch", type=int, default=32)
    recipes.add_argument("--only", nargs="+", help="recipe names to run (default: all)")
    recipes.add_argument("--extra", action="store_true", help="also the fused-AdamW and 4x-batch variants")
    speed = sub.add_parser("speed", help="the profile's config against its speed variants, same examples")
    speed.add_argument("--profile", default="gpu" if torch.cuda.is_available() else "default")
    speed.add_argument("--examples", type=int, default=8192)
    speed.add_argument("--val", type=int, default=512)
    speed.add_argument("--only", nargs="+", help="variant names to run (default: all)")
    speed.add_argument("--plot", type=Path, help="also save the bar chart here (PNG)")
    speed.add_argument("--workers", type=int, help="every row: this many data-loader processes (a plan change)")
    speed.add_argument("--fp16", action="store_true", help="every row: fp16 mixed precision, as on a T4 (a device change)")
    speed.add_argument("--cudnn-attention", choices=("on", "off"),
                       help="every row: let torch's SDPA use its cuDNN kernels while training, or not (a plan change)")
    for p in (modes, recipes, speed):
        p.add_argument("--json", type=Path, help="where to write the results (default: outputs/<profile>/benchmark_*.json)")
    args = parser.parse_args(argv)

    if args.what == "modes":
        results = [bench_mode(m, args.batch, args.seq, args.steps, args.warmup, args.r,
                              gradient_checkpointing=args.checkpointing) for m in args.modes]
        default_json = outputs_dir("gpu" if torch.cuda.is_available() else "smoke") / "benchmark_modes.json"
    elif args.what == "speed":
        profile = get_profile(args.profile)
        base = replace(config_for(profile), n_train=args.examples, n_val=args.val, epochs=1, max_steps=-1)
        every_row = speed_configs(base, cpu=not torch.cuda.is_available())
        unknown = [name for name in args.only or () if name not in every_row]
        if unknown:  # a misspelt row would otherwise be left out without a word
            parser.error(f"--only: no row named {', '.join(map(repr, unknown))} on this "
                         f"{'GPU' if torch.cuda.is_available() else 'CPU'}; rows: {', '.join(map(repr, every_row))}")
        configs = {k: v for k, v in every_row.items() if not args.only or k in args.only}
        from helpers.profiles import detect_device

        device = t4_like(detect_device()) if args.fp16 else None
        if torch.cuda.is_available():  # the first run in a process pays for CUDA and kernel start-up: not timed
            bench_recipe("warm-up", replace(base, n_train=3 * base.batch_size, n_val=base.batch_size), profile,
                         outputs_dir(profile.name, "benchmark", "warm-up"), device=device)
        every = {} if args.workers is None else {"dataloader_workers": args.workers}
        if args.cudnn_attention:
            every["cudnn_attention"] = args.cudnn_attention == "on"
        results = []
        for name, config in configs.items():
            try:
                results.append(bench_recipe(name, config, profile, outputs_dir(profile.name, "benchmark", "speed"),
                                            plan_changes=every | PLAN_CHANGES.get(name, {}), device=device))
            except Exception as error:  # a variant the stack cannot run is reported, the others still run
                print(f"{name}: failed: {type(error).__name__}: {str(error)[:300]}")
            else:
                print(table(results[-1:]).splitlines()[-1], flush=True)
                write_json(results, args.json or outputs_dir(profile.name) / "benchmark_speed.json")  # kept if cut short
        default_json = outputs_dir(profile.name) / "benchmark_speed.json"
        if args.plot and results:
            import matplotlib

            matplotlib.use("Agg")
            from helpers.plots import plot_speed

            plot_speed(results).figure.savefig(args.plot, dpi=110, bbox_inches="tight")
    else:
        profile = get_profile(args.profile)
        base = replace(config_for(profile), n_train=args.examples, n_val=args.val, batch_size=args.batch,
                       epochs=1, max_steps=-1)
        results = []
        configs = recipe_configs(base, extra=args.extra)
        if torch.cuda.is_available():  # the first run in a process pays for CUDA and kernel start-up: not timed
            bench_recipe("warm-up", replace(configs["workbook"], n_train=3 * args.batch, n_val=args.batch), profile,
                         outputs_dir(profile.name, "benchmark", "warm-up"))
        for name, config in configs.items():
            if args.only and name not in args.only:
                continue
            results.append(bench_recipe(name, config, profile, outputs_dir(profile.name, "benchmark", name.replace(" ", "_").replace(",", ""))))
        default_json = outputs_dir(profile.name) / "benchmark_recipes.json"
    print(f"device: {_device_name()}")
    print(table(results))
    print(f"written: {write_json(results, args.json or default_json)}")
    return 0


if __name__ == "__main__":
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))
