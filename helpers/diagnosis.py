"""Why next-token pricing fails a small model (notebook 07): measurements that tell "learned the item's price"
from "learned the distribution of prices".

- item_specificity: do predictions move with the item (spread against the truth's, correlation on log scale)?
- answer_token_losses / TextBlindDigits / loss_by_position: the fine-tuned model's cross-entropy on each token of
  the answer against a model of the answers that never reads the description. The difference is what reading the
  text buys, position by position.
- pooled_features + ridge_probe: is the price already in the frozen base model's hidden states?
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def item_specificity(predictions: Sequence[float], truths: Sequence[float]) -> dict:
    """How much predictions vary with the item: the spread of log predictions over the spread of log true prices
    (0 for a constant, about 1 for a model as varied as the prices), and their correlation on the log scale
    (0 when the variation has nothing to do with the item)."""
    pred = np.log1p(np.clip(np.asarray(predictions, dtype=float), 0, None))
    truth = np.log1p(np.asarray(truths, dtype=float))
    if len(pred) != len(truth) or len(pred) < 2:
        raise ValueError(f"item_specificity needs two or more paired values, got {len(pred)} and {len(truth)}")
    spread = float(pred.std() / truth.std()) if truth.std() > 0 else float("nan")
    corr = float(np.corrcoef(pred, truth)[0, 1]) if pred.std() > 0 and truth.std() > 0 else 0.0
    return {"spread": spread, "correlation": corr, "distinct": len(set(np.round(pred, 6)))}


def distribution_distance(dists, bins: Sequence[float] = (0, 10, 20, 50, 100, 200, 500, 1_000, 10**9)) -> float:
    """Mean total-variation distance between each item's price distribution and the average one, over price bands
    (0: every item gets the same distribution; 1: no two items share a band)."""
    def banded(dist) -> np.ndarray:
        out = np.zeros(len(bins) - 1)
        for value, prob in zip(dist.values, dist.probs):
            out[min(np.searchsorted(bins, value, side="right") - 1, len(out) - 1)] += prob
        return out

    rows = np.array([banded(d) for d in dists if d.values])
    if len(rows) < 2:
        raise ValueError("distribution_distance needs two or more non-empty distributions")
    mean = rows.mean(axis=0)
    return float(0.5 * np.abs(rows - mean).sum(axis=1).mean())


def unrelated_pair(items, min_ratio: float = 5.0) -> tuple[int, int]:
    """Two items to put side by side: the first one, and the first later one of another category whose true price
    is at least `min_ratio` times higher or lower (falls back to the most different price)."""
    first = items[0]
    best, best_ratio = 1, 0.0
    for i in range(1, len(items)):
        ratio = max(items[i]["price"], first["price"]) / max(min(items[i]["price"], first["price"]), 1e-9)
        if items[i]["category"] != first["category"] and ratio >= min_ratio:
            return 0, i
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return 0, best


# --------------------------------------------------------------------------------------------------
# Cross-entropy per answer token, against a model that does not read the text
# --------------------------------------------------------------------------------------------------


def answer_tokens(tokenizer, completion: str) -> list[int]:
    """The answer's token ids as training saw them: the completion and the end-of-text token trl appends."""
    return tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


@torch.no_grad()
def answer_token_losses(model, tokenizer, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 8,
                        progress: bool = True) -> list[list[float]]:
    """For each item, -log p(token | prompt, earlier answer tokens) in nats for every answer token (teacher
    forcing, as in training): the per-token terms of the loss notebook 06 minimised."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    out: list[list[float]] = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc="answer-token losses", disable=not progress):
        ids, answer_spans = [], []
        for prompt, completion in zip(prompts[start:start + batch_size], completions[start:start + batch_size]):
            prompt_ids = tokenizer(prompt)["input_ids"]
            answer = answer_tokens(tokenizer, completion)
            ids.append(prompt_ids + answer)
            answer_spans.append((len(prompt_ids), len(answer)))
        width = max(len(row) for row in ids)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids], device=device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids], device=device)
        log_probs = torch.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits.float(), dim=-1)
        for row, (begin, length) in enumerate(answer_spans):
            positions = torch.arange(begin, begin + length, device=device)
            picked = log_probs[row, positions - 1, input_ids[row, positions]]
            out.append((-picked).tolist())
    return out


@dataclass
class TextBlindDigits:
    """p(answer token | the answer's earlier tokens), counted on training answers: the best a model can do on the
    answer without reading the description (add-`alpha` smoothing over the answer tokens seen in training)."""

    counts: dict[tuple[int, ...], Counter]
    vocabulary: int
    alpha: float = 0.5

    @classmethod
    def fit(cls, tokenizer, completions: Sequence[str], alpha: float = 0.5) -> TextBlindDigits:
        counts: dict[tuple[int, ...], Counter] = {}
        seen: set[int] = set()
        for completion in completions:
            tokens = answer_tokens(tokenizer, completion)
            seen.update(tokens)
            for k, token in enumerate(tokens):
                counts.setdefault(tuple(tokens[:k]), Counter())[token] += 1
        return cls(counts, len(seen), alpha)

    def losses(self, tokenizer, completion: str) -> list[float]:
        """-log p of each answer token in nats."""
        tokens = answer_tokens(tokenizer, completion)
        out = []
        for k, token in enumerate(tokens):
            counter = self.counts.get(tuple(tokens[:k]), Counter())
            total = sum(counter.values())
            out.append(-math.log((counter[token] + self.alpha) / (total + self.alpha * (self.vocabulary + 1))))
        return out


def loss_by_position(model_losses: Sequence[Sequence[float]], blind_losses: Sequence[Sequence[float]],
                     positions: int = 6) -> list[dict]:
    """Mean nats per answer position (1 = the first digit) for the model and the text-blind counts, on the items
    that have that position, and what reading the text buys there (blind - model); the last row is the whole
    answer."""
    rows = []
    for k in range(positions):
        pairs = [(m[k], b[k]) for m, b in zip(model_losses, blind_losses) if len(m) > k and len(b) > k]
        if not pairs:
            break
        model_mean = sum(m for m, _ in pairs) / len(pairs)
        blind_mean = sum(b for _, b in pairs) / len(pairs)
        rows.append({"position": k + 1, "items": len(pairs), "model nats": model_mean, "text-blind nats": blind_mean,
                     "reading buys": blind_mean - model_mean})
    model_total = sum(sum(m) for m in model_losses) / len(model_losses)
    blind_total = sum(sum(b) for b in blind_losses) / len(blind_losses)
    rows.append({"position": "whole answer", "items": len(model_losses), "model nats": model_total,
                 "text-blind nats": blind_total, "reading buys": blind_total - model_total})
    return rows


# --------------------------------------------------------------------------------------------------
# Frozen-feature probe: is the price already in the base model's hidden states?
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def pooled_features(model, tokenizer, texts: Sequence[str], batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """The mean of the last layer's hidden states over each text's tokens (padding excluded), one row per text."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    rows = []
    for start in tqdm(range(0, len(texts), batch_size), desc="frozen features", disable=not progress):
        encoded = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True).to(device)
        hidden = model(**encoded, output_hidden_states=True).hidden_states[-1].float()
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        rows.append(((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy())
    return np.concatenate(rows)


def ridge_probe(train_features: np.ndarray, train_prices: Sequence[float], test_features: np.ndarray,
                alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0)) -> list[float]:
    """Ridge regression of log price on standardised features; the penalty chosen by cross-validation on the
    training rows only. Returns prices."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), RidgeCV(alphas=list(alphas)))
    probe.fit(train_features, np.log(np.asarray(train_prices, dtype=float)))
    return np.exp(probe.predict(test_features)).tolist()
