"""How a run executes, decided once before anything loads: device, precision, optimizer, checkpointing, fused
kernels and the process layout. `plan(profile, config)` reads the machine, the launcher's environment (through
helpers.distributed) and the model's config (no weights), and returns a RunPlan; the model loader, the trainers
(notebook 06's SFT run, notebook 08's price head) and the benchmarks read it and decide nothing again.

Settings (TrainConfig, HeadConfig) say what the run should be; the plan says how this machine will run it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import torch

from helpers.config import ConfigError
from helpers.distributed import local_rank, rank, world_size
from helpers.profiles import DeviceInfo, Profile, check_device

QUANTIZED = ("nf4", "nf4-dq", "fp4", "int8")  # a frozen base stored by bitsandbytes
CUDA_OPTIMIZER = {  # the optimizer on a GPU when the config leaves it None, per kind of run
    "TrainConfig": "paged_adamw_32bit",  # paged: optimizer state can spill to CPU memory on a small GPU
    "HeadConfig": "adamw_torch_fused",
}


@dataclass(frozen=True)
class RunPlan:
    """Every decision about how a run executes, made once by `plan` (each field says who reads it)."""

    device: str  # "cuda" or "cpu": where the model is loaded (models, price_head)
    device_name: str
    compute_dtype: torch.dtype  # what 4-bit layers compute in (BitsAndBytesConfig) and a 16-bit base is stored in
    mixed_precision: str  # "bf16", "fp16" or "no": what the Trainer autocasts to (its bf16 / fp16 arguments)
    optimizer: str  # the Trainer's optim
    checkpointing: bool  # activations recomputed in backward (the model and the Trainer)
    fused_kernels: bool  # Liger's kernels through the Trainer's use_liger_kernel
    layout: str  # "single", "ddp" (a full copy per process) or "fsdp" (sharded)
    processes: int  # from the launcher's environment (helpers.distributed)
    rank: int
    local_rank: int
    adapter_input_casts: bool  # peft copies each adapter's input to the adapter's dtype during training
    dataloader_workers: int = 0  # processes that collate batches beside the training loop (the Trainer's)
    cudnn_attention: bool = True  # torch's SDPA may pick its cuDNN kernels while training
    frozen_fp32: bool = True  # a 4-bit base's 16-bit frozen weights (embeddings, head, norms) upcast to fp32 (add_adapters)
    checkpoint_layers: int | None = None  # with checkpointing: the first this many decoder layers recompute (None: all)
    padding_mask: bool = True  # attention gets the padding mask while training (False: causal attention alone)
    notes: tuple[str, ...] = ()  # decisions the run should announce (a setting that fell back, and why)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def device_map(self) -> dict:
        """Where from_pretrained puts the model: this process's GPU, or the CPU."""
        return {"": self.local_rank if self.cuda else "cpu"}

    def rows(self) -> list[tuple[str, object]]:
        """(decision, value) for printing as a table."""
        return [("device", f"{self.device} ({self.device_name})"),
                ("compute dtype", str(self.compute_dtype).removeprefix("torch.")),
                ("mixed precision", self.mixed_precision), ("optimizer", self.optimizer),
                ("checkpointing", self.checkpointing), ("fused kernels", self.fused_kernels),
                ("layout", f"{self.layout}, {self.processes} process(es)"),
                ("adapter input casts", self.adapter_input_casts), ("data loader workers", self.dataloader_workers),
                ("cuDNN attention", self.cudnn_attention)] + self.gpu_rows()

    def gpu_rows(self) -> list[tuple[str, object]]:
        """The decisions that only a GPU run makes differently from peft's and the Trainer's defaults (a CPU run's
        table, printed in notebook 06, leaves them out)."""
        rows = []
        if self.cuda:
            rows.append(("frozen weights of a 4-bit base", "fp32 (peft)" if self.frozen_fp32 else "compute dtype"))
        if self.checkpointing:
            rows.append(("checkpointed layers", "all" if self.checkpoint_layers is None else self.checkpoint_layers))
        if not self.padding_mask:
            rows.append(("padding mask", "dropped while training (right padding, causal attention)"))
        return rows


@contextmanager
def while_training(run_plan: RunPlan | None, model):
    """The plan's decisions that hold only while training, undone after (a trained model then generates without
    autocast, and other code in the process keeps torch's attention kernels): peft's adapter input casts skipped,
    torch's SDPA without its cuDNN kernels, the padding mask dropped. No plan: nothing changes."""
    from peft.helpers import disable_input_dtype_casting
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with ExitStack() as stack:
        if run_plan is not None and not run_plan.adapter_input_casts:
            stack.enter_context(disable_input_dtype_casting(model))
        if run_plan is not None and not run_plan.cudnn_attention:
            stack.enter_context(sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                             SDPBackend.MATH]))
        if run_plan is not None and not run_plan.padding_mask:
            stack.enter_context(without_padding_mask(model))
        yield


@contextmanager
def without_padding_mask(model):
    """Forward passes of `model` without the attention mask, for right-padded batches only (trl's collator pads on
    the right): under causal attention a real token attends only to the tokens before it, all real, so its output is
    the same; the pads' outputs change, and their labels are -100. Without a mask torch's SDPA can take its flash
    kernel, and transformers lets it handle grouped-query attention without repeating keys and values. The first
    batch is checked: a left-padded one is refused."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = inner.get_decoder() if hasattr(inner, "get_decoder") else inner  # called through __call__: hooks run
    checked = []

    def drop(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None:
            return None
        if not checked:  # one check (a GPU sync) per training run: every batch comes from the same collator
            if mask.dim() != 2 or bool((mask[:, 1:] > mask[:, :-1]).any()):
                raise ConfigError("padding_mask=False needs right-padded batches (every 0 of the attention mask "
                                  "after the 1s); this batch is padded otherwise. Keep padding_mask=True.")
            checked.append(True)
        return args, {**kwargs, "attention_mask": None}

    handle = inner.register_forward_pre_hook(drop, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


ANNOUNCED: set[str] = set()  # what this process has already said: a fallback is announced once, not per trainer


def say_once(message: str) -> None:
    """Print a decision's note the first time this process makes it."""
    if message not in ANNOUNCED:
        ANNOUNCED.add(message)
        print(message)


def cpu_bf16_active(config, cuda: bool, has_bf16: bool | None = None, announce: bool = False) -> bool:
    """Whether this run computes in bf16 on the CPU: asked for, no GPU, and a CPU with AVX512-BF16. Without that
    instruction set bf16 matmuls are emulated and slower than fp32, so the setting falls back (and says so)."""
    if not config.cpu_bf16 or cuda:
        return False
    if has_bf16 is None:
        from bitsandbytes.functional import has_avx512bf16

        has_bf16 = has_avx512bf16()
    if not has_bf16 and announce:
        say_once("cpu_bf16: this CPU has no AVX512-BF16, so bf16 would be slower than fp32 here; computing in fp32")
    return has_bf16


def compute_dtype_for(config, device: DeviceInfo, announce: bool = False) -> torch.dtype:
    """The dtype the 4-bit layers compute in and the Trainer mixes in: bf16 on GPUs that have it natively, fp16
    on older ones (a T4), on CPU bf16 only where the CPU has AVX512-BF16 and the config asks for it, else fp32."""
    if device.device == "cuda":
        return device.compute_dtype
    return torch.bfloat16 if cpu_bf16_active(config, cuda=False, announce=announce) else torch.float32


def fused_kernels_problem(cuda: bool) -> str | None:
    """Why Liger's kernels cannot run here, or None where they can. They are Triton GPU kernels. trl applies the
    layer kernels (RMSNorm, SwiGLU, RoPE) and keeps its own fused LM head for the loss, so the logits are never
    materialised with or without them."""
    import importlib.util

    if not cuda:
        return "no CUDA GPU here (Liger's kernels are written in Triton, which has no CPU backend)"
    missing = [name for name in ("liger_kernel", "triton") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install liger-kernel==0.8.5 brings both on Linux)"
    return None


def fused_kernels_available(cuda: bool) -> bool:
    """True where the kernels can run; a ConfigError saying what to change where they cannot (fused_kernels=True
    is refused rather than silently trained without them)."""
    problem = fused_kernels_problem(cuda)
    if problem:
        raise ConfigError(f"fused_kernels=True needs a CUDA GPU with Liger's kernels: {problem}. Leave fused_kernels "
                          "off (--set fused_kernels=false), or None to use them only where they can run.")
    return True


def frozen_in_fp32(config, cuda: bool) -> bool:
    """Whether a 4-bit base's other weights (embeddings, LM head, norms) go to fp32, as peft's
    prepare_model_for_kbit_training does, and the residual stream with them: on Llama 3.1 8B 2 GiB of frozen weights
    more, and every checkpointed layer input twice the bytes. On a GPU under mixed precision every matmul runs in the
    compute dtype anyway, so they stay in it there (benchmarks/results/frozen-h200-2026-12-02). CPU runs keep peft's
    preparation, and so does the price head (its regression head was not measured without it)."""
    return not cuda or type(config).__name__ != "TrainConfig"


def decide_checkpointing(config, model_config, cuda: bool | None = None, gpu_bytes: int | None = None) -> bool:
    """The setting if given; otherwise on a GPU only where the memory planner (trainer form, longest batch =
    max_length) says the run would not fit in 80% of the GPU without it. Never on CPU: memory is plentiful
    there and recomputation costs ~30% time. A GPU run whose model config cannot be read checkpoints."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda:
        return False
    if model_config is None:
        return True
    from helpers.memory import CONTEXT_GIB, GIB, Architecture, estimate

    method = "qlora" if config.quantization in QUANTIZED else "lora"
    setting = getattr(config, "fused_kernels", False)
    fused = bool(setting) or (setting is None and fused_kernels_problem(cuda) is None)
    optimizer = config.optimizer or CUDA_OPTIMIZER.get(type(config).__name__, "")
    planned = estimate(Architecture.from_config(model_config), method, config.batch_size, config.max_length,
                       config.r, tuple(config.target_modules), loss="fused", lora_dropout=config.dropout,
                       fused_kernels=fused, adapter_input_casts=False,  # a GPU run mixes precision: no casts
                       frozen_fp32=frozen_in_fp32(config, cuda),
                       paged_optimizer="paged" in optimizer,  # a paged optimizer's moments: outside PyTorch's count
                       padding_mask=getattr(config, "padding_mask", True))
    gpu_bytes = gpu_bytes or torch.cuda.get_device_properties(0).total_memory
    return planned.total + CONTEXT_GIB * GIB > 0.8 * gpu_bytes


def decide_checkpoint_layers(config, checkpointing: bool) -> int | None:
    """How many decoder layers recompute: the config's number where checkpointing is on (None: all of them). Not
    chosen by the plan: recomputing fewer layers was faster only for the small bf16 model with few of them (8 of 30:
    93,040 tokens/s against 78,041 with all, 12: 85,154), and slower or no faster for the course models in 4-bit
    (Llama 3.1 8B, 29 of 32: 6,434 against 7,432; Llama 3.2 3B, 15 of 28: 10,164 against 10,325;
    benchmarks/results/partial-h200-2026-12-02, frozen-h200-2026-12-02)."""
    if not checkpointing or not hasattr(config, "checkpoint_layers"):  # the price head recomputes every layer
        return None
    return config.checkpoint_layers


def read_model_config(model_id: str | None):
    """The model's transformers config (config.json only, no weights), or None where it cannot be read here (a hub
    model offline): the load then says why."""
    from transformers import AutoConfig

    from helpers.models import resolve_model

    try:
        return AutoConfig.from_pretrained(resolve_model(model_id))
    except Exception:  # offline, gated, missing: the load reports it with its own message
        return None


def decide(config, device: DeviceInfo, model_config=None, announce: bool = False) -> RunPlan:
    """The plan for a config on a device (what `plan` returns once it has read the machine and the model)."""
    cuda = device.device == "cuda"
    notes = []
    compute_dtype = compute_dtype_for(config, device, announce=announce)
    if cuda:
        mixed = "bf16" if device.bf16 else "fp16"
    else:
        mixed = "bf16" if compute_dtype == torch.bfloat16 else "no"
    fsdp = getattr(config, "fsdp", False)
    if fsdp and not cuda:  # measured: accelerate keeps CPU processes data parallel and drops the FSDP plugin silently
        raise ConfigError("fsdp=True needs CUDA GPUs: on CPU, accelerate runs the processes as plain data "
                          "parallel (DDP) and ignores FSDP. Leave fsdp off; DDP is what CPU processes get.")
    processes = world_size()
    layout = "fsdp" if fsdp else "ddp" if processes > 1 else "single"
    optimizer = config.optimizer or ("adamw_torch_fused" if fsdp else
                                     CUDA_OPTIMIZER[type(config).__name__] if cuda else "adamw_torch")
    setting = getattr(config, "fused_kernels", False)
    if setting:
        fused = fused_kernels_available(cuda)
    elif setting is None:  # where they can run
        problem = fused_kernels_problem(cuda)
        fused = problem is None
        if problem:
            notes.append(f"fused kernels off: {problem}")
    else:
        fused = False
    gpu_bytes = int(device.total_memory_gib * 2**30) if cuda and device.total_memory_gib else None
    checkpointing = decide_checkpointing(config, model_config, cuda=cuda, gpu_bytes=gpu_bytes)
    if cuda and config.gradient_checkpointing is None and model_config is None:
        notes.append("checkpointing on: the model's config could not be read here to size the run")
    # peft casts an adapter's input to the adapter's dtype (fp32) before its matmul; under mixed precision autocast
    # casts it straight back, so each of a layer's seven adapters keeps its own copy for backward (one per input
    # is enough: q, k and v share theirs). The round trip is exact, so skipping it changes no number.
    casts = mixed == "no"
    # A small model's GPU step is bound by the CPU (half the batch took the same time): cuDNN's attention prepares
    # each new sequence length at ~0.9 ms of CPU per call, and collating a batch in the training loop holds the GPU
    # up. On the H200 with the gpu profile, skipping both trained 1.59x the tokens/s at batch 256 and 1.65x at 128
    # (benchmarks/results/cpu-side-h200-2026-12-02). Collating beside the loop needs cores to spare.
    workers = 2 if cuda and (os.cpu_count() or 1) >= 4 else 0
    frozen_fp32 = frozen_in_fp32(config, cuda)
    layers = decide_checkpoint_layers(config, checkpointing)
    plan = RunPlan(device=device.device, device_name=device.name, compute_dtype=compute_dtype, mixed_precision=mixed,
                   optimizer=optimizer, checkpointing=checkpointing, fused_kernels=fused, layout=layout,
                   processes=processes, rank=rank(), local_rank=local_rank(), adapter_input_casts=casts,
                   dataloader_workers=workers, cudnn_attention=not cuda, frozen_fp32=frozen_fp32,
                   checkpoint_layers=layers, padding_mask=getattr(config, "padding_mask", True), notes=tuple(notes))
    if announce:
        for note in plan.notes:
            say_once(note)
    return plan


def plan(profile: Profile, config, device: DeviceInfo | None = None, model_config=None,
         announce: bool = False) -> RunPlan:
    """Decide how `config` runs for `profile` on this machine, before anything loads: a GPU-only profile without a
    GPU, fused kernels where they cannot run and FSDP on CPU are refused here, with what to change."""
    device = check_device(profile, device)
    if model_config is None and device.device == "cuda" and config.gradient_checkpointing is None:
        model_config = read_model_config(profile.model_id)  # only the planner's sizing needs it
    return decide(config, device, model_config, announce)
