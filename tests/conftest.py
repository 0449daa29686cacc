"""Tests never touch the network: the hub is switched off before transformers is imported."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WORKBOOK_PROFILE", "smoke")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedded_dir():
    """The converted embedded model folder (converted once per cache, reused afterwards)."""
    from helpers.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, embedded_dir):
    """A tiny random Llama saved as a local folder with SmolLM2's tokenizer: the course profile's code path (a
    hub-style model), in seconds and without a network."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_dir))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
