"""Asking a causal LM for prices: batched greedy generation, and the expected price from its probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from helpers.prices import parse_price_text


@contextmanager
def _left_padding(tokenizer):
    """Generation continues from the right end of every row, so pad on the left, and cut an over-long prompt on
    the left too (its question is at the end); both restored afterwards."""
    previous = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    try:
        yield
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = previous


@contextmanager
def truncate_left(tokenizer):
    """Cut an over-long prompt on the left (its question is at the end), padding unchanged; restored afterwards."""
    previous = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        yield
    finally:
        tokenizer.truncation_side = previous


MAX_PROMPT_TOKENS = 1024  # far above the catalog's prompts (~150 tokens); one 26,507-token prompt took 18 minutes


def check_prompts(prompts: Sequence[str], batch_size: int) -> list[str]:
    """The prompts as a list, or an error that says what is wrong before any model runs."""
    if isinstance(prompts, str):
        raise TypeError("prompts is one string: pass a list of prompts (e.g. [prompt]), one per item.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: prompts are processed batch_size at a time, so it must be an "
                         "integer >= 1 (e.g. 8).")
    prompts = list(prompts)
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{len(bad)} of {len(prompts)} prompts are not text (the first, at position {bad[0]}, is "
                        f"{prompts[bad[0]]!r}): drop or fill those items first; every prompt is priced, none skipped.")
    return prompts


def _cut_to_budget(tokenizer, prompts: list[str], max_tokens: int, add_special_tokens: bool) -> int:
    """How many prompts are longer than `max_tokens` (they are cut on the left, keeping the question); warns."""
    import warnings

    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]]
    over = sum(n > max_tokens for n in lengths)
    if over:
        warnings.warn(f"{over} of {len(prompts)} prompts are longer than {max_tokens:,} tokens (longest "
                      f"{max(lengths):,}): each is cut to its last {max_tokens:,} tokens, which keep the question.",
                      stacklevel=3)
    return over


def _chunks(prompts: Sequence[str], batch_size: int, progress: bool, desc: str):
    starts = range(0, len(prompts), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    for start in starts:
        yield list(prompts[start : start + batch_size])


@torch.inference_mode()
def stop_token_ids(tokenizer) -> list[int]:
    """Every special token ends an answer, not only the end-of-turn one: an adapter that writes a price and then
    `<|im_start|>` (the next turn) would otherwise run on into "assistant", and "10.00ass" is no price."""
    ids = set(tokenizer.all_special_ids)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def generate_completions(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 7, batch_size: int = 8,
                         progress: bool = True, add_special_tokens: bool = True,
                         max_prompt_tokens: int = MAX_PROMPT_TOKENS) -> list[str]:
    """Greedy continuations of each prompt (left-padded batches), decoded without special tokens.

    Prompts rendered by a chat template already carry their special tokens: pass add_special_tokens=False. A
    prompt over `max_prompt_tokens` is cut on the left, with a warning that counts them.
    """
    prompts = check_prompts(prompts, batch_size)
    device = next(model.parameters()).device
    outputs: list[str] = []
    with _left_padding(tokenizer):
        _cut_to_budget(tokenizer, prompts, max_prompt_tokens, add_special_tokens)
        for chunk in _chunks(prompts, batch_size, progress, "generating"):
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens,
                            truncation=True, max_length=max_prompt_tokens).to(device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_token_ids(tokenizer))
            outputs += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return outputs


def predict_prices(model, tokenizer, prompts: Sequence[str], **kwargs) -> tuple[list[float | None], list[str]]:
    """(parsed prices or None, raw completions): the harness counts the Nones as unparseable."""
    texts = generate_completions(model, tokenizer, prompts, **kwargs)
    return [parse_price_text(t) for t in texts], texts


# --------------------------------------------------------------------------------------------------
# Expected price: read the model's whole distribution over numbers instead of one greedy answer
# --------------------------------------------------------------------------------------------------
#
# A price is written one token at a time. SmolLM2 writes every digit as its own token ("123.00" is
# 1 2 3 . 0 0); Llama 3 groups up to three digits ("123" then ".00"). Either way the integer part is a
# path in a tree whose edges are digit tokens and which ends at the first non-digit token. Walking the
# likely branches of that tree (with the KV cache, one token per step) gives a probability for every
# integer price worth considering; their mean is the expected price and their median the answer that
# minimises the expected absolute error.


@dataclass
class PriceDistribution:
    """Probabilities of whole-dollar prices read from the model (renormalised over what was enumerated)."""

    values: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    coverage: float = 0.0  # the model's probability mass the enumeration found (1.0 = nothing pruned)

    @property
    def expected(self) -> float | None:
        """The mean price: what minimises the expected squared error."""
        if not self.values:
            return None
        return sum(v * p for v, p in zip(self.values, self.probs))

    @property
    def median(self) -> float | None:
        """The median price: what minimises the expected absolute error (so, MAE)."""
        if not self.values:
            return None
        total = 0.0
        for value, prob in sorted(zip(self.values, self.probs)):
            total += prob
            if total >= 0.5 - 1e-12:
                return float(value)
        return float(max(self.values))

    @property
    def mode(self) -> float | None:
        if not self.values:
            return None
        return float(max(zip(self.probs, self.values))[1])


def digit_tokens(tokenizer) -> dict[int, str]:
    """Token id -> the digits it writes, for every token made only of ASCII digits (1 to 3 of them)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    found = {i: t for i, t in enumerate(tokens) if t and t.isascii() and t.isdigit() and len(t) <= 3}
    if not any(len(t) == 1 for t in found.values()):
        raise ValueError("this tokenizer has no single-digit tokens: expected-price decoding cannot read its numbers")
    return found


def enumerate_prices(step: Callable, n_items: int, digits: dict[int, str], max_digits: int = 4, top_k: int = 3,
                     min_prob: float = 0.01, keep_prob: float = 1e-4) -> list[PriceDistribution]:
    """Walk the tree of digit tokens for `n_items` prompts at once.

    `step(None, None)` returns log-probabilities [n_items, vocab] after each prompt; `step(parents, tokens)`
    continues row `parents[j]` of the previous call with token `tokens[j]` and returns one row per
    continuation. A path ends at a price when a non-digit token follows. A child is expanded (one more
    forward) when it is among the `top_k` digits of its node and its path holds at least `min_prob`;
    a child that is not expanded borrows the shape of its most likely expanded sibling (the same
    distribution of following digits), so three-digit prices are not starved just because each single
    three-digit path is unlikely. Digits below `keep_prob` and numbers longer than `max_digits` are
    dropped and reported as lost coverage.
    """
    nodes = _walk_digit_tree(step, n_items, digits, max_digits, top_k, min_prob, keep_prob)
    return [_price_distribution(_suffixes(nodes, item, digits, max_digits)) for item in range(n_items)]


def _walk_digit_tree(step: Callable, n_items: int, digits: dict[int, str], max_digits: int, top_k: int,
                     min_prob: float, keep_prob: float) -> list[dict]:
    """The expanded tree, breadth first: one `step` call per depth for all open paths of all items. Each node
    holds its item, the digits so far, p(end here | node), {token: p(token | node)} and its expanded children;
    nodes 0..n_items-1 are the prompts."""
    digit_ids = torch.tensor(sorted(digits))
    nodes: list[dict] = [{"item": i, "text": "", "end": 0.0, "probs": {}, "children": {}} for i in range(n_items)]
    rows = list(range(n_items))  # node index of each row of the last step
    path = [1.0] * n_items  # probability of the path to each node
    logprobs = step(None, None)
    while rows:
        probs = logprobs[:, digit_ids].float().exp()
        parents, tokens, new_rows = [], [], []
        for r, node_id in enumerate(rows):
            node, p = nodes[node_id], probs[r]
            node["end"] = max(0.0, 1.0 - float(p.sum())) if node["text"] else 0.0
            kept = (p >= keep_prob).nonzero().flatten().tolist()
            node["probs"] = {int(digit_ids[i]): float(p[i]) for i in kept}
            ranked = sorted(node["probs"].items(), key=lambda kv: -kv[1])[:top_k]
            for token, prob in ranked:
                text = node["text"] + digits[token]
                if len(text) > max_digits or path[node_id] * prob < min_prob:
                    continue
                node["children"][token] = len(nodes)
                nodes.append({"item": node["item"], "text": text, "end": 0.0, "probs": {}, "children": {}})
                path.append(path[node_id] * prob)
                parents.append(r)
                tokens.append(token)
                new_rows.append(len(nodes) - 1)
        rows = new_rows
        if rows:
            logprobs = step(parents, tokens)
    return nodes


def _suffixes(nodes: list[dict], node_id: int, digits: dict[int, str], max_digits: int) -> dict[str, float]:
    """p(the digits that follow | node), including "" for ending here; a child that was not expanded borrows
    the suffix distribution of its most likely expanded sibling."""
    node = nodes[node_id]
    dist = {"": node["end"]} if node["text"] else {}
    expanded = {tok: _suffixes(nodes, child, digits, max_digits) for tok, child in node["children"].items()}
    template = expanded[max(expanded, key=node["probs"].get)] if expanded else {"": 1.0}
    for token, prob in node["probs"].items():
        head = digits[token]
        for tail, q in expanded.get(token, template).items():
            if len(node["text"]) + len(head) + len(tail) <= max_digits:
                dist[head + tail] = dist.get(head + tail, 0.0) + prob * q
    return dist


def _price_distribution(suffixes: dict[str, float]) -> PriceDistribution:
    """Digit strings -> whole-dollar values, normalised over what the walk covered (coverage kept)."""
    by_value: dict[int, float] = {}
    for text, prob in suffixes.items():
        if prob > 0.0:
            by_value[int(text)] = by_value.get(int(text), 0.0) + prob
    coverage = sum(by_value.values())
    values = sorted(by_value)
    return PriceDistribution(values, [by_value[v] / coverage for v in values], coverage) if coverage > 0 \
        else PriceDistribution()


class _CachedSteps:
    """The `step` function of enumerate_prices for a real model: one forward of one token per open path."""

    def __init__(self, model, tokenizer, prompts: Sequence[str]):
        self.model = model
        device = next(model.parameters()).device
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)
        self.mask = enc["attention_mask"]
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.input_ids, self.positions = enc["input_ids"], positions
        self.cache = None

    def __call__(self, parents, tokens):
        if parents is None:
            out = self.model(input_ids=self.input_ids, attention_mask=self.mask, position_ids=self.positions,
                             use_cache=True)
            self.last = self.positions[:, -1]
        else:
            index = torch.tensor(parents, device=self.mask.device)
            _select_rows(self.cache, index)
            self.mask = torch.cat([self.mask[index], torch.ones_like(self.mask[index, :1])], dim=1)
            self.last = self.last[index] + 1
            out = self.model(input_ids=torch.tensor(tokens, device=self.mask.device)[:, None],
                             attention_mask=self.mask, position_ids=self.last[:, None],
                             past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)


def _select_rows(cache, index: torch.Tensor) -> None:
    """Keep (and repeat) the cache rows in `index`, in place: the beam-search reorder, whatever the version."""
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(index)
        return
    for layer in cache.layers:  # pragma: no cover - older/newer cache classes without reorder_cache
        layer.keys = layer.keys.index_select(0, index.to(layer.keys.device))
        layer.values = layer.values.index_select(0, index.to(layer.values.device))


@torch.inference_mode()
def price_distributions(model, tokenizer, prompts: Sequence[str], batch_size: int = 8, progress: bool = True,
                        **kwargs) -> list[PriceDistribution]:
    """The model's distribution over whole-dollar prices after each prompt (see enumerate_prices)."""
    prompts = check_prompts(prompts, batch_size)
    digits = digit_tokens(tokenizer)
    out: list[PriceDistribution] = []
    with _left_padding(tokenizer):
        for chunk in _chunks(prompts, batch_size, progress, "price distributions"):
            out += enumerate_prices(_CachedSteps(model, tokenizer, chunk), len(chunk), digits, **kwargs)
    return out


# --------------------------------------------------------------------------------------------------
# Scoring a model's decodings (notebook 07 chooses one on validation)
# --------------------------------------------------------------------------------------------------

DECODINGS = ("greedy", "median price", "expected price")


def score_decodings(model, tokenizer, items, fallback: float, label: str, profile: str, split: str,
                    dataset: str = "sample", batch_size: int = 8, progress: bool = True,
                    only: Sequence[str] = DECODINGS) -> dict:
    """decoding -> EvalResult for greedy, median-price and expected-price decoding (or `only` some) of one model."""
    import time

    from helpers.evaluation import evaluate

    unknown = set(only) - set(DECODINGS)
    if unknown:
        raise ValueError(f"unknown decoding(s) {sorted(unknown)}: choose from {DECODINGS}")
    common = {"kind": "fine-tuned", "dataset": dataset, "profile": profile, "split": split, "fallback": fallback}
    out = {}
    if "greedy" in only:
        started = time.perf_counter()
        greedy, _ = predict_prices(model, tokenizer, items["prompt"], batch_size=batch_size, progress=progress)
        out["greedy"] = evaluate(greedy, items, f"{label} (greedy)", seconds=time.perf_counter() - started, **common)
    if {"median price", "expected price"} & set(only):
        started = time.perf_counter()
        dists = price_distributions(model, tokenizer, items["prompt"], batch_size=batch_size, progress=progress)
        seconds = time.perf_counter() - started
        for name in ("median price", "expected price"):
            if name in only:
                values = [d.median if name == "median price" else d.expected for d in dists]
                out[name] = evaluate(values, items, f"{label} ({name})", seconds=seconds, **common)
    return out


def choose_decoding(validation: dict) -> str:
    """The decoding with the lowest validation MAE (never chosen on test)."""
    return min(validation, key=lambda name: validation[name].mae)
