"""A training run's settings in one place: the TrainConfig dataclass (each field says what it does in its metadata),
the preset per profile, the checks that run before anything loads, and the `--set NAME=VALUE` parser.

`helpers.training` builds and runs the trainer from a TrainConfig; `helpers.price_head.HeadConfig` shares the
checks and the parser. Nothing here imports a model library, so a config can be built and checked anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from helpers.lora import ALL_LINEAR  # the one definition (the presets below use it)
from helpers.profiles import Profile


def help_field(text: str, default, **kw):
    """A dataclass field whose help text travels in its metadata (what `describe` prints for notebook 06)."""
    return field(default=default, metadata={"help": text}, **kw)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, with what it does (field metadata, read by `describe` and --help)."""

    # --- the five QLoRA hyperparameters ---
    target_modules: tuple[str, ...] = help_field("which matrices get adapters", ("q_proj", "k_proj", "v_proj", "o_proj"))
    r: int = help_field("LoRA rank: size of the low-rank update", 16)
    alpha: int = help_field("scaling: the update is multiplied by alpha / r", 32)
    quantization: str = help_field("how the frozen base is stored (nf4 + double quant)", "nf4-dq")
    dropout: float = help_field("dropout on the adapter input, against overfitting", 0.1)
    # --- the five training hyperparameters ---
    epochs: float = help_field("passes over the training split", 1.0)
    batch_size: int = help_field("examples per device per step", 8)
    learning_rate: float = help_field("peak learning rate (cosine schedule after a 3% warm-up)", 2e-4)
    grad_accum: int = help_field("steps whose gradients add up before one optimizer update", 1)
    optimizer: str | None = help_field("None: paged_adamw_32bit on CUDA (adamw_torch_fused under FSDP), adamw_torch on CPU", None)
    # --- sizes and bookkeeping ---
    n_train: int | None = help_field("train on the first n examples (None: the whole split)", None)
    n_val: int | None = help_field("validation examples scored at every evaluation", None)
    max_length: int = help_field("prompt + completion tokens; our prompts stay well below", 256)
    max_steps: int = help_field("stop early (overrides epochs when > 0)", -1)
    eval_steps: int = help_field("validation loss every this many steps", 50)
    save_steps: int = help_field("a checkpoint every this many steps (to resume, and to pick the best)", 50)
    logging_steps: int = help_field("training loss logged every this many steps", 10)
    scheduler: str = help_field("learning-rate schedule after warm-up", "cosine")
    warmup_ratio: float = help_field("share of steps spent ramping the learning rate up from 0", 0.03)
    seed: int = help_field("data order and adapter initialisation", 42)
    # --- speed settings: they change how fast and in how much memory, not what is learned ---
    group_by_length: bool = help_field("batches of similar length, so little compute is spent on padding", True)
    gradient_checkpointing: bool | None = help_field("recompute activations in backward: less memory, slower (None: on a GPU where the planner says it would not fit in 80% of memory without)", None)
    pad_to_multiple_of: int | None = help_field("None: pad each batch to its longest example", None)
    padding_free: bool = help_field("a batch's examples laid end to end in one row: no padding, attention kept per example", False)
    torch_compile: bool = help_field("compile the forward with torch.compile: the first steps are slow, later ones fuse kernels", False)
    compile_layers: bool = help_field("torch.compile on each decoder layer (one compiled layer serves all): fewer kernel launches and fewer saved activations, the first steps slow", False)
    fused_kernels: bool | None = help_field("Liger's fused RMSNorm, SwiGLU and RoPE kernels (CUDA GPUs with Triton, `pip install liger-kernel`): fewer kernels, less activation memory (None: on where they can run, else off with a message)", False)
    cpu_bf16: bool = help_field("on CPU: 4-bit layers compute in bf16 and the Trainer autocasts to bf16 (only where the CPU has AVX512-BF16; elsewhere fp32)", False)
    fsdp: bool = help_field("multi-process: shard base and adapters (FSDP) instead of a full copy per process (DDP)", False)
    fsdp_version: int = help_field("2: per-parameter sharding (the default of transformers 5); 1: the older flat parameters", 2)
    report_to: str = help_field("where the Trainer also sends its logs: none, tensorboard or wandb (needs its package)", "none")


TRAIN_CONFIGS: dict[str, TrainConfig] = {
    "smoke": TrainConfig(r=4, alpha=8, batch_size=4, n_train=16, n_val=8, max_steps=4, eval_steps=2, save_steps=2,
                         logging_steps=1),
    # All linear layers at r=64 and a 4e-4 learning rate: on the H100 this cut the test MAE from $114 to $45 against
    # q/k/v/o at r=16 and 2e-4 (catalog v1, benchmarks/results/h100-2026-11-22). Speed on 2 CPU cores (issue 19,
    # benchmarks/results/speed-cpu-2026-11-23b, 96 examples): bf16 compute and no adapter dropout trained 169
    # tokens/s against 98 (1.72x) at the same validation loss (0.966 vs 0.968), so the budget that bought 960
    # examples (~20 min) now buys 1,600. On a CPU without AVX512-BF16 the run computes in fp32 (and is slower).
    "default": TrainConfig(target_modules=ALL_LINEAR, r=64, alpha=128, learning_rate=4e-4, n_train=1600, n_val=80,
                           batch_size=8, eval_steps=40, save_steps=40, dropout=0.0, cpu_bf16=True),
    # r=16 keeps the adapter at 9.8 MB in bf16, small enough to ship; one pass over 40,000 examples. Speed
    # (issue 19, benchmarks/results/speed-h100-2026-11-23 and -24): a 135M step is bound by the CPU launching ~7,000
    # kernels (the GPU was busy 16% of it), so 4x the batch costs about the same time per step; the base fits in
    # bf16 (0.27 GB), so no 4-bit dequantisation; no adapter dropout (fewer kernels, no loss cost measured). With
    # 4x fewer steps the rate scales linearly (4e-4 at batch 64 -> 1.6e-3 at 256, chosen on validation loss after
    # 16,384 examples: 0.9350 at 8e-4, 0.9326 at 1.2e-3, 0.9235 at 1.6e-3, against 0.9147 before). Same machine:
    # 15,308 -> 61,732-68,357 tokens/s, peak 14.8 -> 39.4 GiB; on a smaller GPU checkpointing switches on by
    # itself (~45,000 tokens/s at 3.8 GiB, same loss).
    # Fused kernels (issue 32, benchmarks/results/fused-h200-2026-12-01): 70,429 -> 88,223 tokens/s and 39.2 -> 32.1
    # GiB on the H200, validation loss 0.9557 -> 0.9561; on where Liger is installed, else off with a message.
    "gpu": TrainConfig(target_modules=ALL_LINEAR, r=16, alpha=32, quantization="bf16", dropout=0.0,
                       learning_rate=1.6e-3, batch_size=256, epochs=1, eval_steps=25, save_steps=25,
                       optimizer="adamw_torch_fused", fused_kernels=None),
    # Llama 3.1 8B (random weights) through this trainer, QLoRA r=32, seq 256, checkpointing, fp16 under a T4's
    # 15 GiB (benchmarks/results/trainer-8b-t4cap-h100-2026-11-23): batch 16 peaked at 11.6 GiB and trained
    # 4,479 tokens/s on the H100, batch 1 at 8.3 GiB and 419 tokens/s. So batch 16 in one step, not 1 x 16
    # accumulated: the same effective batch at ~10x the tokens/s. (Without checkpointing batch 16 needs 50 GiB;
    # decide_checkpointing turns it on wherever that does not fit.)
    "course": TrainConfig(r=32, alpha=64, batch_size=16, grad_accum=1, epochs=1, eval_steps=200, save_steps=200,
                          learning_rate=1e-4),
}


def describe(config) -> list[tuple[str, object, str]]:
    """(name, value, what it does) for every setting of a run-settings dataclass, from its fields' metadata."""
    return [(f.name, getattr(config, f.name), f.metadata.get("help", "")) for f in fields(config)]


def config_for(profile: Profile, **overrides) -> TrainConfig:
    """The profile's preset with overrides, checked (types and ranges) before anything is loaded. A profile without
    a preset is an error, not a bare TrainConfig()."""
    if profile.name not in TRAIN_CONFIGS:
        raise ConfigError(f"profile {profile.name!r} has no training preset: add one to TRAIN_CONFIGS in "
                          f"helpers/config.py (presets: {', '.join(TRAIN_CONFIGS)})")
    config = TRAIN_CONFIGS[profile.name]
    return validate_config(replace(config, **overrides) if overrides else config)


class ConfigError(ValueError):
    """A training setting of the wrong type or out of range: found before any model is loaded."""


_RANGES = {  # name -> (check, what is allowed)
    "r": (lambda v: v >= 1, "an integer >= 1"),
    "alpha": (lambda v: v > 0, "a number > 0"),
    "dropout": (lambda v: 0 <= v < 1, "between 0 and 1 (1 excluded)"),
    "epochs": (lambda v: 0 < v < float("inf"), "a finite number > 0"),
    "seed": (lambda v: 0 <= v < 2**32, "an integer from 0 to 2**32 - 1"),
    "max_steps": (lambda v: v == -1 or v >= 1, "-1 (train for the epochs) or an integer >= 1"),
    "optimizer": (lambda v: v is None or v in _optimizer_names(), "a transformers optimizer name, e.g. adamw_torch"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "learning_rate": (lambda v: 0 < v < 1, "between 0 and 1, e.g. 2e-4"),
    "grad_accum": (lambda v: v >= 1, "an integer >= 1"),
    "n_train": (lambda v: v is None or v >= 1, "an integer >= 1, or none for the whole split"),
    "n_val": (lambda v: v is None or v >= 1, "an integer >= 1, or none for the whole split"),
    "max_length": (lambda v: v >= 16, "an integer >= 16 (prompt + price tokens)"),
    "eval_steps": (lambda v: v >= 1, "an integer >= 1"),
    "save_steps": (lambda v: v >= 1, "an integer >= 1"),
    "logging_steps": (lambda v: v >= 1, "an integer >= 1"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "between 0 and 1 (1 excluded)"),
    "pad_to_multiple_of": (lambda v: v is None or v >= 1, "an integer >= 1, or none"),
    "target_modules": (lambda v: len(v) >= 1, "one or more module names, comma-separated"),
    "report_to": (lambda v: v in ("none", "tensorboard", "wandb"), "one of none, tensorboard, wandb"),
    "fsdp_version": (lambda v: v in (1, 2), "1 or 2"),
    "loss": (lambda v: v in ("l1", "huber", "mse"), "one of l1, huber, mse"),
    "huber_delta": (lambda v: v > 0, "a number > 0 (in standard deviations of log price)"),
    "weight_decay": (lambda v: 0 <= v < 1, "between 0 and 1 (1 excluded)"),
    "scheduler": (lambda v: v in ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
                                  "polynomial", "inverse_sqrt"), "a transformers schedule name, e.g. cosine"),
}


def _optimizer_names() -> set[str]:
    from transformers.training_args import OptimizerNames

    return {o.value for o in OptimizerNames}


def _members(hint) -> tuple[list, bool]:
    """(the non-None types of an annotation, whether None is allowed): `int | None` -> ([int], True)."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        return [typing.get_origin(t) or t for t in args if t is not type(None)], type(None) in args
    return [typing.get_origin(hint) or hint], False


def validate_config(config):
    """Check every setting's type and range (and the quantization's name); raise ConfigError listing all faults.

    Works on any run-settings dataclass (TrainConfig, price_head.HeadConfig): types come from its annotations,
    ranges from _RANGES by field name."""
    import dataclasses
    import typing

    from helpers.models import QUANTIZATIONS

    hints = typing.get_type_hints(type(config))
    faults = []
    for f in dataclasses.fields(config):
        value, hint = getattr(config, f.name), hints[f.name]
        members, optional = _members(hint)
        allowed = tuple(members)
        ok_type = (value is None and optional) or (
            isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed))
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type:
            faults.append(f"{f.name}={value!r} is a {type(value).__name__}, expected {hint}")
            continue
        check = _RANGES.get(f.name)
        if check and not check[0](value):
            faults.append(f"{f.name}={value!r}: must be {check[1]}")
    if getattr(config, "fsdp", False) and config.optimizer and ("paged" in config.optimizer or "bnb" in config.optimizer
                                             or "8bit" in config.optimizer):
        faults.append(f"optimizer={config.optimizer!r} with fsdp=True: bitsandbytes optimizers cannot update "
                      "FSDP's sharded tensors (measured: 'got mixed torch.Tensor and DTensor'); leave the "
                      "optimizer unset (adamw_torch_fused) or use adamw_torch")
    steps = (getattr(config, "save_steps", None), getattr(config, "eval_steps", None))
    if None not in steps and all(isinstance(v, int) and v >= 1 for v in steps) and steps[0] % steps[1]:
        faults.append(f"save_steps={steps[0]} must be a multiple of eval_steps={steps[1]}: the best checkpoint is chosen "
                      "among the evaluated steps (transformers refuses it after the model has loaded)")
    if config.quantization not in QUANTIZATIONS:
        faults.append(f"quantization={config.quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
    if faults:
        raise ConfigError("Invalid training settings (nothing was loaded):\n  " + "\n  ".join(faults))
    return config


def _parse_value(name: str, text: str, hint) -> object:
    """One --set value, typed from the config field's annotation."""

    options, optional = _members(hint)
    if optional and text.lower() in ("none", "null"):
        return None
    kind = options[0]
    if kind is tuple:
        return tuple(t.strip() for t in text.split(",") if t.strip())
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {name}={text}: expected true or false" + (" (or none)" if optional else ""))
    try:
        return kind(text) if kind in (int, float) else text
    except ValueError:
        raise ConfigError(f"--set {name}={text}: expected {'an integer' if kind is int else 'a number'}"
                          + (" (or none)" if optional else "")) from None


def parse_overrides(pairs: list[str], cls: type = TrainConfig) -> dict:
    """["r=64", "target_modules=q_proj,v_proj", "gradient_checkpointing=false"] -> overrides of `cls` (TrainConfig
    by default), typed from its annotations ("-5" for an int field is -5; "maybe" for a bool is an error)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out: dict = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in hints:
            raise ConfigError(f"--set {pair!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
        out[name] = _parse_value(name, text.strip(), hints[name])
    return out
