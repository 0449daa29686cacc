"""Speed results: one row per training run (tokens/s, step time, peak memory, MFU, validation loss), the MFU
arithmetic, and the markdown table the results READMEs paste. Notebook 06 reads the committed results files
through this module; the runs that write them live in `benchmarks/speed.py` (`bash benchmarks/gpu_run.sh speed`).

Model FLOPs utilisation counts only the useful matmul work per token: 2 FLOPs per weight forward, 2 more
backward to reach the activations, and 2 more for a weight gradient, which frozen weights do not need
(so LoRA is ~4N, not 6N), plus attention's 12 * layers * d_model * seq (forward + backward).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

# dense bf16 peak of the chips we are likely to meet (tensor cores, no sparsity), FLOP/s
PEAK_FLOPS = {"H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12,
              "A100": 312e12, "L4": 121e12, "T4": 65e12}


@dataclass
class BenchResult:
    name: str
    device: str
    tokens: int  # real (non-padding) tokens trained on
    seconds: float
    tokens_per_s: float
    step_ms: float
    peak_memory_gb: float | None  # GPU only: torch.cuda.max_memory_allocated
    trainable: int
    matmul_params: int  # weights that are multiplied per token (all linear layers incl. the LM head)
    flops_per_token: float
    mfu: float | None  # achieved useful FLOP/s over the chip's bf16 peak (None where the peak is unknown)
    loss: float | None = None  # last training loss (modes) or validation loss after training (recipes)
    settings: dict = field(default_factory=dict)
    first_steps_s: float | None = None  # the first 3 optimizer steps (start-up, compilation) of `seconds`
    steady_tokens_per_s: float | None = None  # tokens/s after those 3 steps (tokens split evenly over steps)


def peak_flops(device_name: str) -> float | None:
    """The chip's dense bf16 peak from its name, or None (CPU, unknown GPU)."""
    for key, value in PEAK_FLOPS.items():  # the more specific names come first
        if key in device_name:
            return value
    return None


def matmul_params(model: torch.nn.Module) -> tuple[int, int]:
    """(weights of frozen linear layers, weights of trainable ones), counted as in x out (4-bit packing aside)."""
    frozen = trainable = 0
    for module in model.modules():
        if hasattr(module, "in_features") and hasattr(module, "out_features") and hasattr(module, "weight"):
            n = module.in_features * module.out_features
            if module.weight.requires_grad:
                trainable += n
            else:
                frozen += n
    return frozen, trainable


def flops_per_token(frozen: int, trainable: int, layers: int, d_model: int, seq: int) -> float:
    """Useful training FLOPs per token: 6 per trainable weight, 4 per frozen one, plus attention."""
    return 6 * trainable + 4 * frozen + 12 * layers * d_model * seq



def table(results: list[BenchResult]) -> str:
    """A markdown table of the results (the README pastes it)."""
    head = "| run | tokens/s | step ms | peak GPU GiB | trainable | MFU | loss |\n| --- | --- | --- | --- | --- | --- | --- |"
    lines = [head]
    for r in results:
        mem = f"{r.peak_memory_gb:.2f}" if r.peak_memory_gb is not None else "n/a"
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "n/a"
        loss = f"{r.loss:.4f}" if r.loss is not None else "n/a"
        lines.append(f"| {r.name} | {r.tokens_per_s:,.0f} | {r.step_ms:,.0f} | {mem} | {r.trainable / 1e6:.2f} M "
                     f"| {mfu} | {loss} |")
    return "\n".join(lines)


def write_json(results: list[BenchResult], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return path
