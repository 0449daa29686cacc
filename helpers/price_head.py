"""A price head: the same base model and LoRA adapters, with a loss that matches the task.

The generative fine-tune (notebook 06) is graded by cross-entropy on the answer's digit tokens: writing "12.00"
for a $164 item costs about as much as writing "12.00" for a $13 one, and a model that cannot yet read the
description does best by learning the marginal distribution of prices. Here the model reads the same prompt, a
linear layer on the last token's hidden state outputs one number, the standardised log price
z = (log p - mean) / std, and the loss is L1 on that number. L1's minimiser is the conditional *median* of
log p, and exp() keeps medians, so the prediction exp(mean + std * z) is the median price: the answer that
minimises the expected absolute error in dollars, which is what MAE measures.

Built from the library objects a learner would copy (`AutoModelForSequenceClassification(num_labels=1)`,
`LoraConfig(task_type="SEQ_CLS")`, `TrainingArguments`, `Trainer` with `compute_loss_func`); notebook 08 builds
the same objects in visible cells and a test checks that they equal these.

Command line (the notebook and a GPU run share it):

    python -m helpers.price_head --profile default [--resume] [--evaluate] [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from helpers.config import (  # noqa: F401 (describe, HeadConfig: notebook 08 imports them from here)
    ConfigError,
    HeadConfig,
    describe,
    parse_overrides,
    validate_config,
)
from helpers.distributed import (  # the one place that reads the launcher's environment
    is_main_process,
    local_rank,
)
from helpers.paths import REPO_ROOT, outputs_dir
from helpers.profiles import Profile, get_profile, profile_name
from helpers.provenance import HEAD_FILE, Provenance
from helpers.provenance import read as read_provenance

PROVENANCE = HEAD_FILE  # beside the saved adapter + head: profile, data, settings, scale, scores
SHIPPED_HEAD = REPO_ROOT / "adapters" / "smollm2-135m-price-head-gpu"  # trained at gpu-profile scale on an H200


def config_for(profile: Profile, **overrides) -> HeadConfig:
    """The profile's head settings (`Profile.head` in helpers/profiles.py) with overrides, checked before anything
    is loaded."""
    return validate_config(replace(profile.head, **overrides) if overrides else profile.head)


# --------------------------------------------------------------------------------------------------
# The target: standardised log price
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceScale:
    """z = (log p - mean) / std: log because prices span three orders of magnitude (a $10 error matters on a
    $20 item, not on a $900 one); standardised so the head starts near the answer's scale."""

    mean: float
    std: float

    @classmethod
    def fit(cls, prices: Sequence[float]) -> PriceScale:
        logs = [math.log(float(p)) for p in prices if p is not None and float(p) > 0]
        if len(logs) < 2:
            raise ValueError(f"PriceScale.fit needs at least two positive prices, got {len(logs)} of {len(prices)}")
        mean = sum(logs) / len(logs)
        std = math.sqrt(sum((v - mean) ** 2 for v in logs) / (len(logs) - 1))
        return cls(mean, std if std > 0 else 1.0)

    def to_target(self, price: float) -> float:
        return (math.log(float(price)) - self.mean) / self.std

    def to_price(self, z) -> torch.Tensor | float:
        if isinstance(z, torch.Tensor):
            return torch.exp(self.mean + self.std * z.float())
        return math.exp(self.mean + self.std * float(z))


# --------------------------------------------------------------------------------------------------
# The library objects (notebook 08 builds the same in visible cells)
# --------------------------------------------------------------------------------------------------


def compute_dtype(config: HeadConfig, cuda: bool) -> torch.dtype:
    """bf16 on GPUs that have it natively, fp16 on older ones (T4), on CPU bf16 only with AVX512-BF16 (the run's
    plan decides it the same way: helpers.runplan)."""
    from helpers.profiles import detect_device
    from helpers.runplan import cpu_bf16_active

    if cuda:
        return detect_device().compute_dtype  # the card's own precision, read by compute capability
    return torch.bfloat16 if cpu_bf16_active(config, cuda=False) else torch.float32


def bnb_config(config: HeadConfig, dtype: torch.dtype):
    """BitsAndBytesConfig for the base (None for a 16/32-bit base)."""
    from helpers.models import quantization_config

    return quantization_config(config.quantization, dtype)


def lora_config(config: HeadConfig):
    """LoRA on the target matrices; task_type SEQ_CLS makes peft train and save the head ("score") in full."""
    from peft import LoraConfig

    return LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), task_type="SEQ_CLS")


def training_arguments(config: HeadConfig, output_dir: str | Path, run_plan, evaluate: bool = True):
    """TrainingArguments: the best checkpoint by validation MAE in dollars, checkpoints to resume from; precision,
    optimizer, checkpointing and processes as the run's plan decided them (helpers.runplan)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    extra = {}
    if config.group_by_length:  # transformers >= 5.2 names it train_sampling_strategy
        extra = ({"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in names
                 else {"group_by_length": True})
    # transformers 5.23 renamed gradient_checkpointing (Colab's 5.15 has only the old name)
    extra["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = \
        run_plan.checkpointing
    if run_plan.processes > 1 and not run_plan.cuda:
        extra["ddp_backend"] = "gloo"
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,  # no gradients: twice the batch fits
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.scheduler,
        warmup_steps=config.warmup_ratio,  # a value below 1 is a share of the total steps
        weight_decay=config.weight_decay,
        optim=run_plan.optimizer,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps" if evaluate else "no",
        save_steps=config.save_steps,
        save_total_limit=2,
        load_best_model_at_end=evaluate,
        metric_for_best_model="mae",  # the validation MAE in dollars, from compute_metrics
        greater_is_better=False,
        logging_steps=config.logging_steps,
        label_names=["labels"],  # peft's wrapper hides the model's signature from the Trainer
        bf16=run_plan.mixed_precision == "bf16",
        fp16=run_plan.mixed_precision == "fp16",
        use_cpu=not run_plan.cuda,
        report_to=config.report_to,
        seed=config.seed,
        dataloader_num_workers=run_plan.dataloader_workers,
        disable_tqdm=False,
        **extra,
    )


def workbook_objects(config: HeadConfig, device, output_dir: str | Path, arguments: bool = True) -> dict:
    """BitsAndBytesConfig (None for a 16/32-bit base), LoraConfig and TrainingArguments as the helpers build them
    for a config on a device; notebook 08 builds the same in visible cells (compare with
    `training.object_differences`)."""
    from helpers.runplan import decide

    run_plan = decide(config, device)
    objects = {"bnb_config": bnb_config(config, run_plan.compute_dtype), "lora_config": lora_config(config)}
    if arguments:  # TrainingArguments for a GPU can only be built where one is present
        objects["training_args"] = training_arguments(config, output_dir, run_plan)
    return objects


def price_loss(name: str = "l1", delta: float = 1.0):
    """The Trainer's `compute_loss_func`: L1, Huber or MSE between the head's output and the standardised log price.

    With `compute_loss_func` the Trainer takes the loss as already averaged over the whole accumulated batch, so it
    is summed here and divided by the number of examples it passes (`num_items_in_batch`)."""
    if name not in ("l1", "huber", "mse"):
        raise ValueError(f"loss {name!r}: choose l1, huber or mse")
    functional = {"l1": torch.nn.functional.l1_loss, "mse": torch.nn.functional.mse_loss,
                  "huber": lambda a, b, reduction: torch.nn.functional.huber_loss(a, b, reduction=reduction,
                                                                                    delta=delta)}[name]

    def loss(outputs, labels, num_items_in_batch=None):
        predictions = outputs["logits"].float().view(-1)
        total = functional(predictions, labels.float().view(-1).to(predictions.device), reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return total / count

    loss.__name__ = f"{name}_loss"
    return loss


def mae_metric(scale: PriceScale):
    """The Trainer's `compute_metrics`: validation MAE in dollars (and on the log scale) from the head's outputs."""
    import numpy as np

    def metrics(eval_prediction) -> dict:
        z = np.asarray(eval_prediction.predictions, dtype=np.float64).reshape(-1)
        target = np.asarray(eval_prediction.label_ids, dtype=np.float64).reshape(-1)
        predicted = np.exp(scale.mean + scale.std * z)
        truth = np.exp(scale.mean + scale.std * target)
        return {"mae": float(np.abs(predicted - truth).mean()),
                "mae_log": float(np.abs(z - target).mean() * scale.std)}

    return metrics


def tokenize_split(split, tokenizer, scale: PriceScale, max_length: int):
    """input_ids / attention_mask of each prompt, labels = its standardised log price; the rest dropped.

    The prompt is notebook 06's (it ends with "Price is $"): the same input the generative model reads. A prompt
    over `max_length` tokens keeps its last `max_length` (the head reads the last token), with a warning that
    counts them: no example is dropped."""
    import warnings

    from helpers.inference import truncate_left

    longer = sum(len(ids) > max_length for ids in tokenizer(list(split["prompt"]))["input_ids"])
    if longer:
        warnings.warn(f"{longer} of {len(split)} prompts are longer than max_length={max_length} tokens: each keeps "
                      "its last max_length tokens (raise max_length to keep them whole).", stacklevel=2)

    def encode(batch):
        with truncate_left(tokenizer):
            encoded = tokenizer(batch["prompt"], truncation=True, max_length=max_length)
        encoded["labels"] = [scale.to_target(p) for p in batch["price"]]
        return encoded

    return split.map(encode, batched=True, remove_columns=split.column_names)


# --------------------------------------------------------------------------------------------------
# Model, trainer, training
# --------------------------------------------------------------------------------------------------


def load_head_base(profile: Profile, config: HeadConfig, dtype: torch.dtype, for_training: bool = True):
    """AutoModelForSequenceClassification with one output on the profile's base (4-bit or 16/32-bit), its pad
    token set (a Llama-family head finds each example's last token by it), the bitsandbytes CPU guard applied."""
    from transformers import AutoModelForSequenceClassification

    from helpers.models import ModelSetupError, guard_bnb_cpu_training, load_tokenizer, resolve_model

    cuda = torch.cuda.is_available()
    quantized = bnb_config(config, dtype)
    kwargs: dict = {"num_labels": 1, "dtype": {"bf16": torch.bfloat16, "fp16": torch.float16,
                                               "fp32": torch.float32}.get(config.quantization, dtype)}
    if quantized is not None:
        kwargs["quantization_config"] = quantized
        kwargs["device_map"] = {"": local_rank() if cuda else "cpu"}
    source = resolve_model(profile.model_id)
    tokenizer = load_tokenizer(profile.model_id)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelSetupError(f"Could not load {source} with a regression head ({type(error).__name__}: "
                              f"{str(error)[:300]})") from error
    if quantized is None:
        model = model.to(f"cuda:{local_rank()}" if cuda else "cpu")
    model.config.pad_token_id = tokenizer.pad_token_id
    if for_training:
        guard_bnb_cpu_training(model)
    return model, tokenizer


def add_head_adapters(model, config: HeadConfig):
    """Ready a loaded base for training (prepare_model_for_kbit_training on a 4-bit one) and add LoRA + the head."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if config.quantization in ("nf4", "nf4-dq", "fp4", "int8"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(config))


def select_examples(data, config: HeadConfig, strict: bool = True):
    """(train, validation) cut to the config's sizes; a size the split cannot give is refused."""
    from helpers.training import first_examples

    return first_examples(data, config, strict=strict)


def make_head_trainer(profile: Profile, config: HeadConfig, output_dir: Path, data=None, evaluate: bool = True,
                      run_plan=None):
    """(the Trainer for a profile and head config, the target's standardisation fitted on its training examples);
    precision, optimizer and checkpointing as the run's plan says (decided here when not given)."""
    from transformers import DataCollatorWithPadding, Trainer

    from helpers.runplan import plan

    run_plan = run_plan or plan(profile, config)
    strict = data is None  # the profile's own splits: a size they cannot give is an error
    if data is None:
        from helpers.data import load_splits

        data, _ = load_splits(profile)
    train_set, val_set = select_examples(data, config, strict)
    scale = PriceScale.fit(train_set["price"])  # from the training examples only
    torch.manual_seed(config.seed)
    model, tokenizer = load_head_base(profile, config, run_plan.compute_dtype)
    model = add_head_adapters(model, config)
    trainer = Trainer(
        model=model,
        args=training_arguments(config, output_dir, run_plan, evaluate=evaluate),
        train_dataset=tokenize_split(train_set, tokenizer, scale, config.max_length),
        eval_dataset=tokenize_split(val_set, tokenizer, scale, config.max_length),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_loss_func=price_loss(config.loss, config.huber_delta),
        compute_metrics=mae_metric(scale),
    )
    return trainer, scale


@dataclass
class HeadResult:
    head_dir: str
    best_checkpoint: str | None
    best_val_mae: float | None
    scale: PriceScale
    log_history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    train_tokens: int = 0
    peak_memory_gb: float | None = None
    peak_rss_gb: float | None = None
    model: object = field(default=None, repr=False)  # the trained model (best checkpoint), in memory

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.seconds if self.seconds else 0.0


def fit(trainer, profile: Profile, config: HeadConfig, output_dir: Path, scale: PriceScale, resume: bool = False,
        extra_provenance: dict | None = None, run_plan=None) -> HeadResult:
    """Train (or resume), keep the best checkpoint by validation MAE, save adapter + head with provenance; the
    provenance keeps `scale`, without which the head's outputs cannot be turned back into prices."""
    from helpers.runplan import plan, while_training
    from helpers.training import peak_rss_gb, resume_plan

    checkpoint, notice = resume_plan(output_dir, resume)
    if notice:
        print(notice)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    steps_before = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0
    started = time.perf_counter()
    run_plan = run_plan or plan(profile, config)  # a trainer built in notebook 08's cells comes without one
    with while_training(run_plan, trainer.model):  # on a GPU: no wasted input casts, no cuDNN attention
        trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    steps = trainer.state.global_step - steps_before
    tokens = round(_tokens_per_step(trainer) * steps)
    head_dir = Path(output_dir) / "head"
    trainer.save_model(str(head_dir))  # adapters + the head (peft's modules_to_save), never the base weights
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    best = trainer.state.best_model_checkpoint
    result = HeadResult(str(head_dir), best, trainer.state.best_metric, scale, trainer.state.log_history,
                        seconds, tokens, peak, peak_rss_gb(), trainer.model)
    if trainer.is_world_process_zero():
        Provenance(
            profile=profile.name, model=profile.model_id or "embedded SmolLM2-135M-Instruct", dataset=profile.dataset,
            n_train=len(trainer.train_dataset), n_val=len(trainer.eval_dataset), config=asdict(config),
            scale=asdict(scale), best_checkpoint=best and Path(best).name, best_val_mae=trainer.state.best_metric,
            global_step=trainer.state.global_step, resumed_from=checkpoint and Path(checkpoint).name,
            seconds=round(seconds, 1), train_tokens_this_run=tokens,
            tokens_per_second=round(result.tokens_per_second), processes=trainer.args.world_size,
            peak_gpu_gb=peak and round(peak, 2), peak_rss_gb=result.peak_rss_gb and round(result.peak_rss_gb, 2),
        ).with_fields(**(extra_provenance or {})).write(head_dir / PROVENANCE)
    return result


def _tokens_per_step(trainer) -> float:
    """Mean non-padding tokens of a training step (examples are seen once per epoch, in batches)."""
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    return sum(lengths) / len(lengths) * trainer.args.per_device_train_batch_size * trainer.args.world_size


def train_head(profile: Profile, config: HeadConfig | None = None, output_dir: Path | None = None,
               resume: bool = False, data=None, extra_provenance: dict | None = None) -> HeadResult:
    """Build the trainer and fit: what the command line and the GPU benchmark run."""
    config = config or config_for(profile)
    output_dir = Path(output_dir or outputs_dir(profile.name, "price_head"))
    from helpers.runplan import plan
    from helpers.training import check_run

    run_plan = plan(profile, config)  # decided once, before anything loads
    check_run(profile, config, output_dir, resume, task="seq_cls")
    trainer, scale = make_head_trainer(profile, config, output_dir, data, run_plan=run_plan)
    return fit(trainer, profile, config, output_dir, scale, resume, extra_provenance, run_plan=run_plan)


# --------------------------------------------------------------------------------------------------
# Inference, evaluation, shipping
# --------------------------------------------------------------------------------------------------


def load_head(profile: Profile, head_dir: str | os.PathLike, quantization: str | None = None):
    """(model, tokenizer, scale): base in the given precision (default: the one it was trained on) + the saved
    adapters and head, ready for inference."""
    from peft import PeftModel

    head_dir = Path(head_dir)
    path = head_dir / PROVENANCE
    if not path.is_file():
        raise FileNotFoundError(f"{head_dir} holds no {PROVENANCE}: pass the folder that training saved "
                                f"(outputs/<profile>/price_head/head) or the shipped one (adapters/).")
    from helpers.models import check_adapter_files

    check_adapter_files(head_dir)
    info = read_provenance(path)
    config = replace(HeadConfig(), **{k: tuple(v) if k == "target_modules" else v for k, v in info.config.items()
                                     if k in {f.name for f in fields(HeadConfig)}})
    config = replace(config, quantization=quantization or config.quantization)
    dtype = compute_dtype(config, torch.cuda.is_available())
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialised": the saved head replaces it just below
    try:
        model, tokenizer = load_head_base(profile, config, dtype, for_training=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    model = PeftModel.from_pretrained(model, str(head_dir)).eval()
    return model, tokenizer, PriceScale(**info.scale)


@torch.no_grad()
def predict(model, tokenizer, texts: Sequence[str], scale: PriceScale, batch_size: int = 16,
            max_length: int = 256, progress: bool = True) -> list[float]:
    """Prices for prompts: one forward pass each (no generation), longest first so batches pad little."""
    from tqdm.auto import tqdm

    from helpers.inference import check_prompts, truncate_left

    texts = check_prompts(texts, batch_size)
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out: list[float] = [0.0] * len(texts)
    device = next(model.parameters()).device
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="price head", disable=not progress):
        with truncate_left(tokenizer):  # the head reads the last token: cut a long prompt on the left (padding
            # stays on the right, as in training: positions then match)
            encoded = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, truncation=True,
                                max_length=max_length).to(device)
        z = model(**encoded).logits.float().view(-1)
        for i, price in zip(batch, scale.to_price(z).tolist()):
            out[i] = price
    return out


def ship_head(head_dir: str | Path, out_dir: str | Path, extra: dict | None = None) -> Path:
    """The adapters + head as bf16 safetensors with their config and provenance (no tokenizer, no base)."""
    from helpers.adapters import ship_adapter

    return ship_adapter(head_dir, out_dir, extra=extra, provenance=PROVENANCE)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description="Train the price head (LoRA + a linear head on log price)")
    parser.add_argument("--profile", default=profile_name(), help="default: $WORKBOOK_PROFILE, else default")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--evaluate", action="store_true", help="score the head on the profile's test items afterwards")
    parser.add_argument("--head", type=Path, help="skip training: evaluate this saved head")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting, e.g. --set learning_rate=1e-3 --set loss=huber")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    head_dir = args.head
    if head_dir is None:
        try:
            config = config_for(profile, **parse_overrides(args.set, HeadConfig))
        except ConfigError as error:
            raise SystemExit(str(error)) from None
        try:
            result = train_head(profile, config, args.output_dir, resume=args.resume)
        except ConfigError as error:
            raise SystemExit(str(error)) from None
        if not is_main_process():
            return 0
        print(f"head: {result.head_dir}\nbest validation MAE: ${result.best_val_mae:,.2f} ({result.best_checkpoint})\n"
              f"train time: {result.seconds:.0f} s, {result.train_tokens:,} tokens ({result.tokens_per_second:,.0f} "
              "tokens/s)" + (f", peak GPU memory {result.peak_memory_gb:.2f} GiB" if result.peak_memory_gb else ""))
        head_dir = Path(result.head_dir)
    if args.evaluate or args.head is not None:
        print(evaluate_head(profile, head_dir).summary())
    return 0


def evaluate_head(profile: Profile, head_dir: str | os.PathLike, n_items: int | None = None, label: str = "price head",
                  record: bool = True, results_file: Path | None = None, quantization: str | None = None):
    """Score a saved head on the profile's first test items (the ladder's) and record it."""
    from helpers.data import load_splits
    from helpers.evaluation import evaluate, record_result

    data, _ = load_splits(profile)
    test = data["test"].select(range(min(n_items or profile.eval_items, len(data["test"]))))
    model, tokenizer, scale = load_head(profile, head_dir, quantization)
    started = time.perf_counter()
    prices = predict(model, tokenizer, test["prompt"], scale, batch_size=64 if torch.cuda.is_available() else 16)
    short = (profile.model_id or "SmolLM2-135M-Instruct").split("/")[-1]
    result = evaluate(prices, test, f"{short} + {label}", kind="fine-tuned", dataset=profile.dataset,
                      profile=profile.name, seconds=time.perf_counter() - started)
    if record:
        record_result(result, results_file)
    return result


if __name__ == "__main__":
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))
