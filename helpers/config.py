"""The schemas of a run's settings: TrainConfig (the generative fine-tune), HeadConfig (the price head), LabSize
(notebook 09), ChatSize (notebook 10) and NotebookSizes (the smaller knobs of notebooks 01, 02, 04 and 07), each
field saying what it does in its metadata; the checks that run before anything loads; the `--set NAME=VALUE` parser.

The values per profile live in one literal per profile in `helpers/profiles.py`. Nothing here imports a model
library, so a config can be built and checked anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

from helpers.lora import ALL_LINEAR  # the one definition (HeadConfig's default uses it)

if TYPE_CHECKING:
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
    checkpoint_layers: int | None = help_field("with checkpointing on, recompute only the first this many decoder layers: the others keep their activations (less recomputation, more memory; None: every layer)", None)
    pad_to_multiple_of: int | None = help_field("None: pad each batch to its longest example", None)
    padding_free: bool = help_field("a batch's examples laid end to end in one row: no padding, attention kept per example", False)
    padding_mask: bool = help_field("training: attention gets the padding mask (False: causal attention alone, exact for right-padded batches; SDPA's flash kernel, keys and values not repeated)", True)
    torch_compile: bool = help_field("compile the forward with torch.compile: the first steps are slow, later ones fuse kernels", False)
    compile_layers: bool = help_field("torch.compile on each decoder layer (one compiled layer serves all): fewer kernel launches and fewer saved activations, the first steps slow", False)
    fused_kernels: bool | None = help_field("Liger's fused RMSNorm, SwiGLU and RoPE kernels (CUDA GPUs with Triton, `pip install liger-kernel`): fewer kernels, less activation memory (None: on where they can run, else off with a message)", False)
    cpu_bf16: bool = help_field("on CPU: 4-bit layers compute in bf16 and the Trainer autocasts to bf16 (only where the CPU has AVX512-BF16; elsewhere fp32)", False)
    fsdp: bool = help_field("multi-process: shard base and adapters (FSDP) instead of a full copy per process (DDP)", False)
    fsdp_version: int = help_field("2: per-parameter sharding (the default of transformers 5); 1: the older flat parameters", 2)
    report_to: str = help_field("where the Trainer also sends its logs: none, tensorboard or wandb (needs its package)", "none")


@dataclass(frozen=True)
class HeadConfig:
    """Every setting of a price-head run (notebook 08), with what it does (read by `describe`)."""

    # --- the model: base, adapters, head ---
    quantization: str = help_field("how the frozen base is stored: nf4-dq (QLoRA) on CPU, bf16 on a GPU", "nf4-dq")
    target_modules: tuple[str, ...] = help_field("which matrices get LoRA adapters (all linear layers)", ALL_LINEAR)
    r: int = help_field("LoRA rank", 16)
    alpha: int = help_field("LoRA scaling: the update is multiplied by alpha / r", 32)
    dropout: float = help_field("dropout on the adapter input", 0.0)
    # --- the loss ---
    loss: str = help_field("l1 (its minimiser is the median: what MAE rewards), huber, or mse (the mean)", "l1")
    huber_delta: float = help_field("huber only: errors below this many standard deviations of log price are squared",
                                    1.0)
    # --- training ---
    epochs: float = help_field("passes over the training examples", 1.0)
    batch_size: int = help_field("examples per device per step", 8)
    learning_rate: float = help_field("peak learning rate, reached after the warm-up", 5e-4)
    scheduler: str = help_field("learning-rate schedule after the warm-up", "cosine")
    warmup_ratio: float = help_field("share of steps spent ramping the learning rate up from 0", 0.05)
    weight_decay: float = help_field("AdamW weight decay", 0.0)
    optimizer: str | None = help_field("None: adamw_torch_fused on CUDA, adamw_torch on CPU", None)
    # --- sizes and bookkeeping ---
    n_train: int | None = help_field("train on the first n examples of the training split (None: all of it)", None)
    n_val: int | None = help_field("validation items scored at every evaluation (the best checkpoint is chosen on them)",
                                   None)
    max_length: int = help_field("prompt tokens kept (our prompts stay well below)", 256)
    max_steps: int = help_field("stop after this many steps (overrides epochs when > 0)", -1)
    eval_steps: int = help_field("validation MAE every this many steps", 50)
    save_steps: int = help_field("a checkpoint every this many steps (a multiple of eval_steps)", 50)
    logging_steps: int = help_field("training loss logged every this many steps", 10)
    seed: int = help_field("data order, adapter and head initialisation", 42)
    # --- speed: how fast and in how much memory, not what is learned ---
    group_by_length: bool = help_field("batches of similar length: less compute spent on padding", True)
    gradient_checkpointing: bool = help_field("recompute activations in backward: less memory, ~30% slower", False)
    cpu_bf16: bool = help_field("CPU only: compute in bf16 where the CPU has AVX512-BF16 (elsewhere fp32)", False)
    report_to: str = help_field("where the Trainer also sends its logs: none, tensorboard or wandb", "none")


@dataclass(frozen=True)
class LabSize:
    """The sizes of notebook 09's sweeps: many short runs, so each is small."""

    n_train: int = help_field("training examples per run", 64)
    n_val: int = help_field("validation examples per run", 32)
    words: int = help_field("description words kept in each prompt (short prompts make runs cheap)", 40)
    batch_size: int = help_field("examples per step", 8)
    epochs_long: int = help_field("epochs of the epochs sweep (validation every half epoch)", 16)
    epochs_train: int = help_field("examples the epochs sweep trains on: few, so that overfitting shows in the budget", 8)
    short: bool = help_field("two points per sweep instead of three or four (CI)", False)


@dataclass(frozen=True)
class ChatSize:
    """The sizes of notebook 10's instruction fine-tune."""

    source_items: int = help_field("catalog items turned into instructions (4 tasks each)", 400)
    n_train: int = help_field("instruction examples trained on", 640)
    n_val: int = help_field("validation examples (from validation-split items)", 32)
    per_task: int = help_field("held-out test examples scored per task, before and after", 20)
    words: int = help_field("description words kept in each question", 30)
    max_steps: int = help_field("stop early (smoke); -1 trains the whole epoch", -1)
    dataset: str = help_field("catalog (instructions built from the profile's catalog) or guanaco (hub, network)",
                              "catalog")


@dataclass(frozen=True)
class NotebookSizes:
    """The smaller knobs of notebooks 01, 02, 04 and 07, read in their parameters cells."""

    ptq_train_steps: int = help_field("01: steps that train the toy model before it is quantized", 3000)
    qat_extra_steps: int = help_field("01: extra steps, plain or quantization-aware, after those", 1000)
    lora_steps: int = help_field("02: optimizer steps per LoRA run (batch 4 x 64 tokens)", 100)
    lora_ranks: tuple[int, ...] = help_field("02: the ranks of the rank sweep", (1, 2, 4, 8, 16, 32, 64))
    embed_train: int = help_field("04: training items the sentence-embedding baselines fit on (~20 ms a text on CPU)",
                                  20_000)
    decode_val_items: int = help_field("07: validation items that choose the decoding", 500)
    probe_train: int = help_field("07: training items the frozen-feature probe fits on", 4_000)


def describe(config) -> list[tuple[str, object, str]]:
    """(name, value, what it does) for every setting of a run-settings dataclass, from its fields' metadata."""
    return [(f.name, getattr(config, f.name), f.metadata.get("help", "")) for f in fields(config)]


def config_for(profile: Profile, **overrides) -> TrainConfig:
    """The profile's training preset (`Profile.train`, helpers/profiles.py) with overrides, checked (types and
    ranges) before anything is loaded."""
    return validate_config(replace(profile.train, **overrides) if overrides else profile.train)


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
    "checkpoint_layers": (lambda v: v is None or v >= 1, "an integer >= 1 (decoder layers recomputed), or none for all"),
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
