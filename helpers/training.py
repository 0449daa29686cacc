"""QLoRA fine-tuning with peft + trl: the model, the trainer, checkpoints and the saved adapter for a TrainConfig
(helpers.config), one entry point for notebook and GPU. What happens to an adapter after training (load, merge,
score, upload, ship) is in helpers.adapters.

Command line (the notebook and a GPU run share it):

    python -m helpers.training --profile smoke [--resume] [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from helpers.adapters import evaluate_adapter
from helpers.config import (  # noqa: F401 (the run's settings live there; notebooks also import them from here)
    ConfigError,
    TrainConfig,
    config_for,
    describe,
    parse_overrides,
    validate_config,
)
from helpers.distributed import is_main_process  # the one place that reads the launcher's environment
from helpers.lora import ALL_LINEAR  # noqa: F401
from helpers.paths import outputs_dir, shown
from helpers.profiles import Profile, get_profile, profile_name
from helpers.provenance import TRAINING_FILE, Provenance
from helpers.runplan import (  # noqa: F401 (notebook 06 and the tests import these from here)
    RunPlan,
    compute_dtype_for,
    cpu_bf16_active,
    decide_checkpointing,
    plan,
    while_training,
)


def build_model(profile: Profile, config: TrainConfig, run_plan: RunPlan | None = None):
    """4-bit base + LoRA adapters, ready to train, as the run's plan says (compute dtype, checkpointing); the
    bitsandbytes CPU guard is applied on load."""
    from helpers.models import load_base_model

    run_plan = run_plan or plan(profile, config, announce=True)
    loaded = load_base_model(profile.model_id, quantization=config.quantization, for_training=True, fsdp=config.fsdp,
                             compute_dtype=run_plan.compute_dtype)
    return add_adapters(loaded.model, config, run_plan.checkpointing, run_plan.frozen_fp32,
                        run_plan.checkpoint_layers), loaded.tokenizer


def lora_config(config: TrainConfig):
    """LoRA on the config's target matrices of a causal LM (notebook 06 builds the same object in a visible cell)."""
    from peft import LoraConfig

    return LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM")


def add_adapters(model, config: TrainConfig, checkpointing: bool, frozen_fp32: bool = True,
                 checkpoint_layers: int | None = None):
    """Prepare a loaded base for training and put LoRA adapters on it (what build_model does after loading;
    the FSDP benchmark calls it on a random-weight model).

    frozen_fp32: peft's `prepare_model_for_kbit_training` upcasts a 4-bit base's 16-bit weights (embeddings, head,
    norms) to fp32; the run plan skips it on a GPU, where mixed precision computes in 16 bits anyway. Under FSDP
    every shard unit (a decoder layer with its adapters) is flattened into one tensor, so all its parameters must
    share one dtype: the 4-bit weights are stored in the model's dtype (`quant_storage`), the upcast is skipped and
    the adapters are cast to that dtype too. checkpoint_layers: only the first this many decoder layers recompute
    their activations in backward (the others keep them); None: all of them."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    quantized = config.quantization in ("nf4", "nf4-dq", "fp4", "int8")
    if quantized and frozen_fp32 and not config.fsdp:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:  # a 16/32-bit base, FSDP, or a 4-bit base kept in its dtype: no upcast
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True} if config.fsdp
                                            else None)
        model.enable_input_require_grads()
    if checkpointing and checkpoint_layers is not None:
        checkpoint_first_layers(model, checkpoint_layers)
    model = get_peft_model(model, lora_config(config))
    if config.fsdp:
        dtype = model.get_input_embeddings().weight.dtype
        for param in model.parameters():
            if param.requires_grad and param.dtype != dtype:
                param.data = param.data.to(dtype)
    return model


def checkpoint_first_layers(model, n: int) -> int:
    """Leave checkpointing on for the first `n` decoder layers only; returns how many recompute. Every layer's saved
    activations are alive at the end of the forward pass, so which layers recompute does not change the peak, only
    how many. (transformers reads each layer's `gradient_checkpointing` flag at every call.)"""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = index < n
    return min(n, len(layers))


@dataclass
class TrainResult:
    output_dir: str
    adapter_dir: str
    best_checkpoint: str | None
    best_eval_loss: float | None
    log_history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_gb: float | None = None
    train_tokens: int = 0
    model: object = field(default=None, repr=False)  # the trained PeftModel (best checkpoint), in memory
    peak_rss_gb: float | None = None  # the process's peak resident memory so far (CPU runs: what training took)
    tokens_this_run: int = 0  # after a resume: the tokens trained by this process only (train_tokens is the whole run)


def tokens_trained(log_history: list[dict], resumed_step: int = 0) -> tuple[int, int]:
    """(tokens over the whole run, tokens of this run). trl's token counter starts from 0 in every process, so
    after a resume the history holds the checkpoint's count up to its step and this run's count after it:
    they add up. (Tokens between the last log before the checkpoint and the checkpoint itself are not in the
    history; log every step, or at a divisor of save_steps, to count them all.)"""
    counts = [(e.get("step", 0), float(e["num_tokens"])) for e in log_history if "num_tokens" in e]
    before = max((n for step, n in counts if step <= resumed_step), default=0.0)
    now = max((n for step, n in counts if step > resumed_step), default=0.0)
    return int(before + now), int(now)


def peak_rss_gb() -> float | None:
    """Peak resident memory of this process in GiB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)  # bytes on macOS, KiB on Linux


def fsdp_settings(config: TrainConfig, checkpointing: bool) -> dict:
    """The Trainer arguments that turn FSDP on (transformers >= 5.15: Colab, the GPU image, our pin; the older
    string form `fsdp="full_shard auto_wrap"` is deprecated there). transformers then wraps each decoder layer
    and the adapters with peft's policy and runs the mixed precision in the 4-bit storage dtype."""
    fsdp_config: dict = {"version": config.fsdp_version}
    if config.fsdp_version == 1:  # flat parameters: frozen and trainable tensors may not share one
        fsdp_config["use_orig_params"] = False
    settings: dict = {"fsdp": True, "fsdp_config": fsdp_config}
    if checkpointing:  # reentrant checkpointing: the form peft documents for FSDP with a frozen quantized base
        settings["gradient_checkpointing_kwargs"] = {"use_reentrant": True}
    return settings


def _sft_config(config: TrainConfig, output_dir: Path, run_plan: RunPlan, evaluate: bool = True,
                checkpoints: bool = True):
    """SFTConfig: the config's hyperparameters and the plan's decisions (precision, optimizer, checkpointing, fused
    kernels, process layout); nothing is decided here."""
    import dataclasses

    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    extra = {}
    if config.group_by_length:  # transformers 5 renamed the flag; older 5.x had group_by_length=True
        extra = ({"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in names
                 else {"group_by_length": True})
    # transformers 5.23 renamed the setting
    # Some layers only (checkpoint_layers): add_adapters set them, and the Trainer would switch every layer on again
    extra["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = \
        run_plan.checkpointing and run_plan.checkpoint_layers is None
    if run_plan.processes > 1:  # launched by accelerate / torchrun: data parallel
        extra["ddp_find_unused_parameters"] = False  # every adapter gets a gradient each step
        if not run_plan.cuda:
            extra["ddp_backend"] = "gloo"
    if run_plan.layout == "fsdp":  # peft's wrap policy puts each decoder layer (and its adapters) in one shard unit
        extra.update(fsdp_settings(config, run_plan.checkpointing))
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio,  # trl 1.x: a value below 1 is a ratio of the total steps
        optim=run_plan.optimizer,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps" if evaluate and checkpoints else "no",
        save_steps=config.save_steps,
        save_total_limit=3,
        load_best_model_at_end=evaluate and checkpoints,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=config.logging_steps,
        max_length=None if config.padding_free else config.max_length,  # trl cuts nothing when padding-free
        pad_to_multiple_of=config.pad_to_multiple_of,
        padding_free=config.padding_free,
        torch_compile=config.torch_compile,
        bf16=run_plan.mixed_precision == "bf16",
        fp16=run_plan.mixed_precision == "fp16",
        use_liger_kernel=run_plan.fused_kernels,
        use_cpu=not run_plan.cuda,
        report_to=config.report_to,
        seed=config.seed,
        dataloader_num_workers=run_plan.dataloader_workers,
        disable_tqdm=False,
        **extra,
    )


def workbook_objects(config: TrainConfig, device, output_dir: str | Path, checkpointing: bool = False,
                     sft: bool = True) -> dict:
    """The library objects the helpers build for a config on a device: BitsAndBytesConfig (None for a 16/32-bit
    base), LoraConfig and SFTConfig. Notebook 06 builds the same in visible cells; `object_differences` says where
    they part."""
    from helpers.models import quantization_config
    from helpers.runplan import decide

    run_plan = decide(replace(config, gradient_checkpointing=checkpointing), device)
    objects = {"bnb_config": quantization_config(config.quantization, run_plan.compute_dtype),
               "lora_config": lora_config(config)}
    if sft:  # an SFTConfig for a GPU can only be built where one is present
        objects["sft_config"] = _sft_config(config, Path(output_dir), run_plan)
    return objects


# written into a LoraConfig by get_peft_model (the base's path; for SEQ_CLS the head's module names): ignored where
# one side has not been through get_peft_model yet
FILLED_IN_USE = {"base_model_name_or_path", "modules_to_save"}


def object_differences(mine: dict, theirs: dict) -> list[str]:
    """'name.field: mine != theirs' for every setting where two sets of library objects differ (their to_dict())."""
    out = []
    for name in sorted(set(mine) | set(theirs)):
        a, b = mine.get(name), theirs.get(name)
        if a is None or b is None:
            if a is not b:
                out.append(f"{name}: {'missing' if a is None else type(a).__name__} != "
                           f"{'missing' if b is None else type(b).__name__}")
            continue
        da, db = a.to_dict(), b.to_dict()
        out += [f"{name}.{key}: {da.get(key)!r} != {db.get(key)!r}" for key in sorted(set(da) | set(db))
                if da.get(key) != db.get(key)
                and not (key in FILLED_IN_USE and None in (da.get(key), db.get(key)))]
    return out


def adapters_in_fp32(model, bf16: bool) -> int:
    """Unless training mixes in bf16, keep the trainable weights in fp32; returns how many were cast.

    trl 1.16 casts the adapters of a quantized model to bf16. Under fp16 mixed precision (a T4) training then fails
    at the first optimizer step in the gradient scaler ('_amp_foreach_non_finite_check_and_unscale_cuda not
    implemented for BFloat16', measured on the H100 in fp16 as a T4 runs); fp16 AMP expects fp32 master weights. In
    fp32 on a CPU without AVX512-BF16, bf16 adapters are multiplied by torch's reference GEMM: a default-profile
    step took 60 s instead of 8 (measured on 2 AMD EPYC cores, 2026-12-01)."""
    if bf16:
        return 0
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def _trainer_class():
    """SFTTrainer that resumes in the dtype it trained in. trl casts the adapters of a quantized model to bf16;
    loading a checkpoint through peft upcasts them to fp32, so a resumed run went on in another precision and
    ended 0.26% away (lora_B, relative norm) from an uninterrupted run. Measured: with the cast restored, the
    two are bit-identical (tests/test_training.py)."""
    from trl import SFTTrainer

    class WorkbookTrainer(SFTTrainer):
        def __init__(self, *args, run_plan: RunPlan | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            adapters_in_fp32(self.model, self.args.bf16)
            self.run_plan = run_plan

        def train(self, *args, **kwargs):
            with while_training(self.run_plan, self.model):  # the plan's training-only decisions, undone after
                return super().train(*args, **kwargs)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            target = model if model is not None else self.model
            dtypes = {name: p.dtype for name, p in target.named_parameters() if p.requires_grad}
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            for name, p in target.named_parameters():
                if name in dtypes and p.dtype != dtypes[name]:
                    p.data = p.data.to(dtypes[name])

    return WorkbookTrainer


def first_examples(data, config, profile_name: str | None = None, strict: bool = True):
    """(train, validation): the first n_train / n_val examples of the splits. A size the profile's split cannot give
    is refused (a run that trains on 200 while its provenance says 100,000 is a wrong record); for data the caller
    passed in (strict=False), the preset sizes are a cap, and a smaller set is used whole with a warning."""
    import warnings

    parts = []
    for split, n in (("train", config.n_train), ("validation", config.n_val)):
        rows = data[split]
        if n and n > len(rows):
            field = "n_train" if split == "train" else "n_val"
            if strict:
                of = f" of profile {profile_name}" if profile_name else ""
                raise ConfigError(f"{field}={n:,}, but the {split} split{of} has {len(rows):,} examples: "
                                  f"ask for at most {len(rows):,} (or leave it unset for the whole split).")
            warnings.warn(f"{field}={n:,}, but the {split} data passed in has {len(rows):,} examples: all "
                          f"{len(rows):,} are used (the provenance records {len(rows):,}).", stacklevel=3)
            n = len(rows)
        parts.append(rows.select(range(n)) if n else rows)
    return tuple(parts)


def warn_over_length(train_set, tokenizer, max_length: int) -> int:
    """How many training examples (prompt + completion) are longer than max_length tokens; warns with the count,
    since trl cuts them at the end, where the answer is, and their loss then teaches nothing."""
    import warnings

    texts = []
    for prompt, completion in zip(train_set["prompt"], train_set["completion"]):
        if isinstance(prompt, str):
            texts.append(prompt + completion)
        else:  # conversational: lists of messages, rendered by the chat template as trl renders them
            texts.append(tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=False))
    over = sum(len(ids) > max_length for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    if over:
        warnings.warn(f"{over} of {len(texts)} training examples are longer than max_length={max_length} tokens: trl "
                      "cuts them at the end, where the price is, so they teach nothing. Raise max_length.",
                      stacklevel=2)
    return over


def make_trainer(profile: Profile, config: TrainConfig, output_dir: Path, data=None, evaluate: bool = True,
                 record_shards: bool = False, checkpoints: bool = True, run_plan: RunPlan | None = None):
    """The SFTTrainer for a profile and config (train() and the benchmark share it). The run's plan is decided
    before anything loads (`helpers.runplan.plan`); a benchmark may pass one it changed."""
    from helpers.data import load_splits

    run_plan = run_plan or plan(profile, config, announce=True)
    strict = data is None  # the profile's own splits: a size they cannot give is an error
    if data is None:
        from accelerate import PartialState

        with PartialState().main_process_first():  # one process builds the cached splits, the others read them
            data, _ = load_splits(profile)
    train_set, val_set = first_examples(data, config, profile.name, strict)
    columns = ["prompt", "completion"]
    train_set = train_set.select_columns(columns)
    val_set = val_set.select_columns(columns)

    torch.manual_seed(config.seed)
    model, tokenizer = build_model(profile, config, run_plan)
    warn_over_length(train_set, tokenizer, config.max_length)
    args = _sft_config(config, output_dir, run_plan, evaluate=evaluate, checkpoints=checkpoints)
    trainer = _trainer_class()(model=model, args=args, train_dataset=train_set, eval_dataset=val_set,
                               processing_class=tokenizer, run_plan=run_plan)
    if config.padding_free:  # trl does not cut examples in padding-free mode: check they fit, instead of cutting
        longest = max(len(ids) for split in (trainer.train_dataset, trainer.eval_dataset) for ids in split["input_ids"])
        if longest > config.max_length:
            raise ConfigError(f"padding_free=True: an example has {longest} tokens, more than max_length="
                              f"{config.max_length}, and padding-free batches are not cut. Raise max_length or set "
                              "padding_free=false.")
    if config.compile_layers:  # after the Trainer applied any kernel patches, so the compiled layers include them
        compile_decoder_layers(trainer.model)
    if record_shards:
        from helpers.distributed import shard_recorder

        trainer.add_callback(shard_recorder(Path(output_dir) / "shards", tokenizer.pad_token_id))
    return trainer


def compile_decoder_layers(model, backend: str = "inductor") -> int:
    """Regional compilation: torch.compile on every decoder layer instead of the whole model. The layers share one
    code object, so one compilation serves them all (the whole-model compile of `torch_compile` recompiled per
    adapter module and did not finish 32 steps in 5 minutes on the H100, issue 19). Returns the layers compiled."""
    import torch._dynamo

    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise ConfigError(f"compile_layers=True: no decoder layers (modules named *DecoderLayer) in "
                          f"{type(model).__name__}; set compile_layers=false for this model.")
    # the layers differ in constants (their index): allow a compiled variant per layer before falling back to eager
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 2 * len(layers))
    torch._dynamo.config.allow_unspec_int_on_nn_module = True
    for layer in layers:
        layer.compile(backend=backend)
    return len(layers)


CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")


def checkpoints_in(output_dir: str | os.PathLike) -> list[Path]:
    """checkpoint-N folders of a training run, oldest first."""
    folder = Path(output_dir)
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint that holds every file a resume needs; a newer, incomplete one (a run killed
    while saving) is skipped with a notice instead of crashing the resume."""
    for checkpoint in reversed(checkpoints_in(output_dir)):
        missing = [name for name in CHECKPOINT_FILES if not (checkpoint / name).is_file()]
        if not missing:
            return str(checkpoint)
        print(f"note: {checkpoint.name} is incomplete (missing {', '.join(missing)}): skipped")
    return None


def resume_plan(output_dir: str | os.PathLike, resume: bool) -> tuple[str | None, str | None]:
    """(the checkpoint to resume from, a notice to print). Without resume, existing checkpoints get a notice
    instead of being replaced silently; with it, the newest complete checkpoint is used."""
    if resume:
        checkpoint = last_complete_checkpoint(output_dir)
        return checkpoint, None if checkpoint else f"no complete checkpoint in {shown(output_dir)}: starting from scratch"
    found = checkpoints_in(output_dir)
    if found:
        return None, (f"note: {shown(output_dir)} holds {len(found)} checkpoint(s) from an earlier run; training starts again "
                      "from step 0 and will replace them. Pass --resume (resume=True) to continue instead.")
    return None, None


def model_linear_names(model_id: str | None, task: str = "causal") -> set[str] | None:
    """Names of the model's linear layers (q_proj, ...), from its config alone on the meta device: no weights are
    read. None when the config cannot be read here (a hub model offline): loading will say why."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from helpers.models import resolve_model

    try:
        model_config = AutoConfig.from_pretrained(resolve_model(model_id))
    except Exception:  # offline, gated, missing: the load reports it with its own message
        return None
    auto = AutoModelForSequenceClassification if task == "seq_cls" else AutoModelForCausalLM
    with init_empty_weights():
        model = auto.from_config(model_config)
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}


def _checkpoint_settings(checkpoint: Path) -> dict:
    """The settings a checkpoint was trained with: its adapter config and its TrainingArguments."""
    adapter = json.loads((checkpoint / "adapter_config.json").read_text())
    settings = {"r": adapter.get("r"), "alpha": adapter.get("lora_alpha"),
                "target_modules": sorted(adapter.get("target_modules") or [])}
    arguments = checkpoint / "training_args.bin"
    if arguments.is_file():
        args = torch.load(arguments, weights_only=False)  # written by the Trainer of this run: trusted
        settings |= {"learning_rate": args.learning_rate, "scheduler": str(getattr(args.lr_scheduler_type, "value",
                     args.lr_scheduler_type)), "batch_size": args.per_device_train_batch_size,
                     "grad_accum": args.gradient_accumulation_steps, "epochs": args.num_train_epochs}
    return settings


def check_run(profile: Profile, config, output_dir: Path, resume: bool, task: str = "causal") -> None:
    """Everything about a run that can be checked before the model loads, refused with what to change: an output
    folder that is a file, a logger whose package is missing, target modules the model does not have, and a resume
    whose checkpoint was trained with other settings (it would continue on the checkpoint's schedule while the
    provenance records the new one)."""
    import importlib.util

    faults = []
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        faults.append(f"output folder {shown(output_dir)} is a file: pass a folder (it is created if missing)")
    report_to = getattr(config, "report_to", "none")
    if report_to not in (None, "none") and importlib.util.find_spec(report_to) is None:
        faults.append(f"report_to={report_to!r}, but the {report_to} package is not installed: pip install "
                      f"{report_to}, or leave report_to=none")
    targets = config.target_modules
    if not isinstance(targets, str):
        names = model_linear_names(profile.model_id, task)
        unknown = sorted(set(targets) - names) if names else []
        if unknown:
            faults.append(f"target_modules {unknown} name no linear layer of this model; it has {sorted(names)}")
    if resume and output_dir.is_dir():
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint and (Path(checkpoint) / "adapter_config.json").is_file():
            saved = _checkpoint_settings(Path(checkpoint))
            asked = {"r": config.r, "alpha": config.alpha, "target_modules": sorted(targets) if not isinstance(
                targets, str) else saved["target_modules"], "learning_rate": config.learning_rate,
                "scheduler": config.scheduler, "batch_size": config.batch_size,
                "grad_accum": getattr(config, "grad_accum", 1), "epochs": config.epochs}
            differ = [f"{k}: checkpoint {saved[k]!r}, asked {asked[k]!r}" for k in saved
                      if k in asked and saved[k] != asked[k]]
            if differ:
                faults.append(f"--resume from {Path(checkpoint).name} with other settings ({'; '.join(differ)}): "
                              "resume with the checkpoint's settings, or start again in a new --output-dir")
    if faults:
        raise ConfigError("This run would fail or mislead after the model loads:\n  - " + "\n  - ".join(faults))


def train(profile: Profile, config: TrainConfig | None = None, output_dir: Path | None = None,
          resume: bool = False, data=None, record_shards: bool = False,
          extra_provenance: dict | None = None) -> TrainResult:
    """Fine-tune, keep the best checkpoint by validation loss, save only the adapter with its provenance."""
    config = validate_config(config or config_for(profile))
    output_dir = Path(output_dir or outputs_dir(profile.name, "training"))
    run_plan = plan(profile, config, announce=True)  # refuses what this machine cannot run, before anything loads
    check_run(profile, config, output_dir, resume)
    trainer = make_trainer(profile, config, output_dir, data, record_shards=record_shards, run_plan=run_plan)
    return fit_adapter(trainer, profile, config, output_dir, resume, extra_provenance)


def fit_adapter(trainer, profile: Profile, config: TrainConfig, output_dir: Path, resume: bool = False,
                extra_provenance: dict | None = None) -> TrainResult:
    """Run a built trainer (resuming from the newest complete checkpoint when asked), then save only the adapter
    with its provenance: what `train` does after building, and what notebook 06 calls on the trainer it built."""
    output_dir = Path(output_dir)
    cuda = torch.cuda.is_available()
    train_set, val_set = trainer.train_dataset, trainer.eval_dataset
    checkpoint, notice = resume_plan(output_dir, resume)
    if notice:
        print(notice)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    # the workbook's trainer applies the plan's training-only decisions itself; a plain SFTTrainer (notebook 06's
    # visible one) gets them here, or its run would not be the run its printed plan describes
    switches = nullcontext() if hasattr(trainer, "run_plan") else while_training(plan(profile, config), trainer.model)
    started = time.perf_counter()
    with switches:
        trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    adapter_dir = output_dir / "adapter"
    resumed_step = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0
    tokens, tokens_now = tokens_trained(trainer.state.log_history, resumed_step)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    result = TrainResult(str(output_dir), str(adapter_dir), trainer.state.best_model_checkpoint,
                         trainer.state.best_metric, trainer.state.log_history, seconds, peak, tokens, trainer.model,
                         peak_rss_gb(), tokens_now)
    # every process calls it (under FSDP the adapter is gathered first); only the first one writes: the
    # adapter (PeftModel.save_pretrained, never the base weights) and the tokenizer
    trainer.save_model(str(adapter_dir))
    if not trainer.is_world_process_zero():
        return result
    best = trainer.state.best_model_checkpoint
    Provenance(
        profile=profile.name, model=profile.model_id or "embedded SmolLM2-135M-Instruct", dataset=profile.dataset,
        n_train=len(train_set), n_val=len(val_set), config=asdict(config),
        best_checkpoint=best and Path(best).name, best_eval_loss=trainer.state.best_metric,
        seconds=round(seconds, 1), processes=trainer.args.world_size,
        # with a resume, seconds count this run only; steps, losses, tokens the whole run's
        resumed_from=checkpoint and Path(checkpoint).name,
        global_step=trainer.state.global_step, train_tokens=tokens, tokens_this_run=tokens_now,
        peak_gpu_gb=peak and round(peak, 2), peak_rss_gb=result.peak_rss_gb and round(result.peak_rss_gb, 2),
    ).with_fields(**(extra_provenance or {})).write(adapter_dir / TRAINING_FILE)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="QLoRA fine-tuning of the workbook's price model")
    parser.add_argument("--profile", default=profile_name(), help="default: $WORKBOOK_PROFILE, else default")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--evaluate", action="store_true", help="score the adapter on the test split afterwards")
    parser.add_argument("--adapter", type=Path, help="skip training: evaluate this saved adapter")
    parser.add_argument("--record-shards", action="store_true",
                        help="write which examples each process trained on, and its adapter (distributed test)")
    parser.add_argument("--label", default="QLoRA", help="the model's name in results.json: '<base> + LABEL'")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a config setting, e.g. --set r=64 --set target_modules=q_proj,v_proj")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    adapter = args.adapter
    if adapter is None:
        try:
            overrides = parse_overrides(args.set)
            if args.max_steps is not None:  # 0 too: refused by the check instead of silently ignored
                overrides["max_steps"] = args.max_steps
            config = config_for(profile, **overrides)
        except ConfigError as error:
            raise SystemExit(str(error)) from None
        try:
            result = train(profile, config, args.output_dir, resume=args.resume, record_shards=args.record_shards)
        except ConfigError as error:
            raise SystemExit(str(error)) from None
        adapter = Path(result.adapter_dir)
        if not is_main_process():  # the other processes of a distributed run stop here
            return 0
        print(f"adapter: {result.adapter_dir}\nbest eval loss: {result.best_eval_loss} ({result.best_checkpoint})\n"
              f"train time: {result.seconds:.0f} s, {result.train_tokens:,} tokens "
              f"({result.tokens_this_run / result.seconds:,.0f} tokens/s)"
              + (f", peak GPU memory {result.peak_memory_gb:.2f} GiB" if result.peak_memory_gb is not None else "")
              + (f", peak process memory {result.peak_rss_gb:.2f} GiB" if result.peak_rss_gb else ""))
        del result
    if args.evaluate or args.adapter is not None:
        for scored in evaluate_adapter(profile, adapter, label=args.label):
            print(scored.summary())
    return 0


if __name__ == "__main__":
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))
