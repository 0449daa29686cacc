"""Asking a causal LM for prices: batched greedy generation and parsing."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from helpers.prices import parse_price_text


@torch.inference_mode()
def generate_completions(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 7, batch_size: int = 8,
                         progress: bool = True) -> list[str]:
    """Greedy continuations of each prompt (left-padded batches), decoded without special tokens."""
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    device = next(model.parameters()).device
    batches = range(0, len(prompts), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="generating", unit="batch")
    outputs: list[str] = []
    try:
        for start in batches:
            enc = tokenizer(list(prompts[start : start + batch_size]), return_tensors="pt", padding=True).to(device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            new = out[:, enc["input_ids"].shape[1] :]
            outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = previous_side
    return outputs


def predict_prices(model, tokenizer, prompts: Sequence[str], **kwargs) -> tuple[list[float | None], list[str]]:
    """(parsed prices or None, raw completions): the harness counts the Nones as unparseable."""
    texts = generate_completions(model, tokenizer, prompts, **kwargs)
    return [parse_price_text(t) for t in texts], texts
