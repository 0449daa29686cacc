"""Fail early, and by name, when a library renames an argument the workbook passes (trl and transformers
renamed several within a year: max_seq_length -> max_length, tokenizer -> processing_class,
evaluation_strategy -> eval_strategy, torch_dtype -> dtype). Runs on the pinned stack and on Colab's."""

import dataclasses
import inspect

import pytest
import torch

SFT_CONFIG_FIELDS = {
    "output_dir", "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_steps", "optim", "eval_strategy",
    "eval_steps", "save_strategy", "save_steps", "save_total_limit", "load_best_model_at_end",
    "metric_for_best_model", "greater_is_better", "logging_steps", "max_length", "pad_to_multiple_of",
    "padding_free", "torch_compile", "bf16", "fp16", "use_cpu", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "report_to", "seed", "dataloader_num_workers", "disable_tqdm", "fsdp",
    "fsdp_config", "ddp_find_unused_parameters", "ddp_backend",
}
SFT_TRAINER_ARGS = {"model", "args", "train_dataset", "eval_dataset", "processing_class", "callbacks"}
BNB_CONFIG_ARGS = {"load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
                   "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"}
LORA_CONFIG_FIELDS = {"r", "lora_alpha", "lora_dropout", "target_modules", "task_type"}


def _missing(expected: set, present: set) -> list:
    return sorted(expected - present)


def test_trl_sft_names_we_pass_still_exist():
    from trl import SFTConfig, SFTTrainer

    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    assert not _missing(SFT_CONFIG_FIELDS, fields), f"SFTConfig lost: {_missing(SFT_CONFIG_FIELDS, fields)}"
    assert {"group_by_length", "train_sampling_strategy"} & fields, "SFTConfig has no length grouping setting"
    params = set(inspect.signature(SFTTrainer.__init__).parameters)
    assert not _missing(SFT_TRAINER_ARGS, params), f"SFTTrainer lost: {_missing(SFT_TRAINER_ARGS, params)}"


def test_bitsandbytes_config_and_peft_names_we_pass_still_exist():
    from peft import LoraConfig, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    params = set(inspect.signature(BitsAndBytesConfig.__init__).parameters)
    assert not _missing(BNB_CONFIG_ARGS, params), f"BitsAndBytesConfig lost: {_missing(BNB_CONFIG_ARGS, params)}"
    fields = {f.name for f in dataclasses.fields(LoraConfig)}
    assert not _missing(LORA_CONFIG_FIELDS, fields), f"LoraConfig lost: {_missing(LORA_CONFIG_FIELDS, fields)}"
    assert "use_gradient_checkpointing" in inspect.signature(prepare_model_for_kbit_training).parameters


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_from_pretrained_reads_dtype(tmp_path, dtype):
    """transformers 5 reads `dtype=` (torch_dtype is the old name); a silent ignore would load fp32."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path, dtype=dtype).dtype == dtype
