"""LoRA from scratch: W' = W + (alpha / r) · B · A, with A random and B zero at the start.

`LoRALinear` matches peft's LoRA layer output for the same weights; `count_lora_params` counts adapter
parameters from a model config on the meta device (nothing downloaded).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # every linear layer of a Llama-family block
ATTENTION = ALL_LINEAR[:4]  # the attention projections only (the original LoRA paper's choice)
PEFT_ALL_LINEAR = "all-linear"  # peft's keyword for the same layers, resolved from the model


class LoRALinear(nn.Module):
    """An nn.Linear plus a trainable low-rank update: y = x Wᵀ + scaling · dropout(x) Aᵀ Bᵀ.

    scaling = alpha / r (or alpha / sqrt(r) with rsLoRA, which keeps updates stable as r grows).
    A starts random and B at zero, so at step 0 the layer is exactly the base layer.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {r}")
        self.base = base
        self.r, self.alpha = r, alpha
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # the same initialisation peft uses
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into W: inference costs nothing extra afterwards."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def _matches(name: str, target_modules: Iterable[str] | str) -> bool:
    if target_modules == PEFT_ALL_LINEAR:
        return not name.endswith("lm_head")
    return name.split(".")[-1] in set(target_modules)


def apply_lora(
    model: nn.Module,
    target_modules: Iterable[str] | str,
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    rslora: bool = False,
) -> list[str]:
    """Freeze the model and wrap every matching nn.Linear in a LoRALinear. Returns the wrapped names."""
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and _matches(name, target_modules)
    ]
    if not targets:
        raise ValueError(f"No nn.Linear layer matches target_modules={target_modules!r}")
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r, alpha, dropout, rslora))
    return [name for name, _ in targets]


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRALinear and put the plain nn.Linear back (peft's merge_and_unload)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.base)
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def lora_params_for_shape(in_features: int, out_features: int, r: int) -> int:
    """A is r × in, B is out × r."""
    return r * (in_features + out_features)


def count_lora_params(config, r: int, target_modules: Iterable[str] | str) -> int:
    """Trainable LoRA parameters for a model config and target modules, counted on the meta device."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(
        lora_params_for_shape(m.in_features, m.out_features, r)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and _matches(name, target_modules)
    )
    if total == 0:
        raise ValueError(f"No nn.Linear layer matches target_modules={target_modules!r}")
    return total


def svd_energy(delta: torch.Tensor, ranks: Iterable[int]) -> dict[int, float]:
    """Share of ||ΔW||²_F captured by the best rank-r approximation (the top r singular values)."""
    s = torch.linalg.svdvals(delta.float())
    energy = s.pow(2)
    cumulative = energy.cumsum(0) / energy.sum()
    return {r: cumulative[min(r, len(s)) - 1].item() for r in ranks}


# --------------------------------------------------------------------------------------------------
# A tiny training loop for the rank experiments (the real training uses trl, see helpers.training)
# --------------------------------------------------------------------------------------------------


def token_blocks(tokenizer, text: str, block: int, limit: int | None = None) -> torch.Tensor:
    """Cut a text into equal blocks of token ids: a causal-LM dataset with no padding."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    n = ids.numel() // block
    if limit is not None:
        n = min(n, limit)
    return ids[: n * block].reshape(n, block)


@dataclass
class LoraRun:
    train_losses: list[float]
    eval_loss: float
    trainable: int
    seconds: float


@torch.no_grad()
def eval_loss(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> float:
    model.eval()
    losses = [
        model(input_ids=blocks[i : i + batch_size], labels=blocks[i : i + batch_size]).loss.item()
        for i in range(0, len(blocks), batch_size)
    ]
    return sum(losses) / len(losses)


def train_causal_lm(
    model: nn.Module,
    train: torch.Tensor,
    valid: torch.Tensor,
    steps: int,
    batch_size: int = 4,
    lr: float = 1e-3,
    seed: int = 0,
) -> LoraRun:
    """AdamW on whatever is trainable, next-token loss, a fixed batch order for a given seed."""
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    order = torch.randperm(len(train))
    losses = []
    started = time.perf_counter()
    model.train()
    for step in range(steps):
        idx = order[(torch.arange(batch_size) + step * batch_size) % len(train)]
        loss = model(input_ids=train[idx], labels=train[idx]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    seconds = time.perf_counter() - started
    return LoraRun(losses, eval_loss(model, valid), trainable_parameters(model)[0], seconds)


def fresh_model(source: str) -> nn.Module:
    """A new fp32 copy of the base model, so every run in a sweep starts from the same weights."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)


def lora_run(
    source: str,
    train: torch.Tensor,
    valid: torch.Tensor,
    steps: int,
    target_modules=("q_proj", "v_proj"),
    r: int = 8,
    alpha: float | None = None,
    dropout: float = 0.0,
    lr: float = 1e-3,
    batch_size: int = 4,
) -> LoraRun:
    """Train a from-scratch LoRA (alpha defaults to 2r) on a fresh base model and report its losses."""
    model = fresh_model(source)
    apply_lora(model, target_modules, r=r, alpha=2 * r if alpha is None else alpha, dropout=dropout)
    return train_causal_lm(model, train, valid, steps, batch_size=batch_size, lr=lr)


def full_finetune_run(
    source: str,
    train: torch.Tensor,
    valid: torch.Tensor,
    steps: int,
    target_modules=("q_proj", "v_proj"),
    lr: float = 1e-4,
    batch_size: int = 4,
) -> tuple[LoraRun, dict[str, torch.Tensor]]:
    """Train the target matrices fully (everything else frozen); return the run and each weight change ΔW."""
    model = fresh_model(source)
    for p in model.parameters():
        p.requires_grad_(False)
    targets = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, target_modules)}
    before = {n: m.weight.detach().clone() for n, m in targets.items()}
    for m in targets.values():
        m.weight.requires_grad_(True)
    result = train_causal_lm(model, train, valid, steps, batch_size=batch_size, lr=lr)
    return result, {n: targets[n].weight.detach() - w for n, w in before.items()}
