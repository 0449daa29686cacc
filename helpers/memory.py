"""A memory planner for fine-tuning: will full fine-tuning, LoRA or QLoRA of this model fit on that GPU?

The estimate adds up what training keeps on the GPU, counted from the architecture alone:

- weights: 2 bytes per parameter in bf16; for QLoRA 4 bits per linear weight plus the quantization
  constants, while embeddings, head and norms become fp32 where `prepare_model_for_kbit_training` upcasts them
  (CPU runs; on a GPU the run plan keeps them 16-bit: `frozen_fp32=False`);
- per trainable parameter: full fine-tuning in bf16 keeps a bf16 gradient and two bf16 AdamW moments
  (6 bytes); LoRA adapters are fp32 with fp32 gradient and moments (16 bytes; 8 in PyTorch's count with a paged
  optimizer, whose moments live in CUDA managed memory);
- activations: per token and layer, about 12 hidden-size and 4 MLP-size values in bf16 without gradient
  checkpointing; with it, only each layer's input plus one layer's worth while it is recomputed (or, with
  `checkpoint_layers`, the other layers keep theirs). QLoRA's residual stream is fp32 where the embeddings were
  upcast, which costs ~30% more;
- logits: the loss in plain PyTorch (`loss="full"`) materialises batch x seq x vocab logits in bf16, an fp32
  copy and the fp32 gradient (10 bytes per entry). trl 1.x's SFTTrainer (`loss="fused"`) projects only the
  positions that carry loss, in tiles, so the logits term is ~0 there;
- adapter dropout: each adapted module applies its own dropout to its input, which keeps about one byte per
  input value (fitted: 45.8 vs 39.2 GiB with and without dropout, batch 256, all linear layers).

The coefficients were fitted on SmolLM2-135M measured on an H100 (benchmarks/results); `compare_measured`
and `compare_trainer` show the error. Add about 1 GiB for the CUDA context and fragmentation when asking "does it fit".
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.lora import ALL_LINEAR

GIB = 2**30
ACT_HIDDEN, ACT_MLP = 12, 4  # saved values per token and layer, in units of hidden_size / intermediate_size
QLORA_ACT_FACTOR = 1.3  # fp32 residual stream after prepare_model_for_kbit_training
LOGIT_BYTES = 10  # bf16 logits + fp32 copy + fp32 gradient
DROPOUT_BYTES = 1.15  # per input value of every adapted module, with lora dropout > 0 (fitted, trainer runs)
CKPT_RESIDUAL_BF16 = 3  # bytes per hidden value kept per layer under checkpointing, bf16 base (fitted: 2 + extras)
# Liger's fused RMSNorm, SwiGLU and RoPE keep no fp32 norm copies, SiLU outputs or rotated copies. The memory profile
# measured a layer's saved activations going 38.73 -> 31.64 GiB (0.82) at the gpu profile's peak; fitted to the
# trainer's measured peaks instead (32.11 GiB fused vs 39.21 without, batch 256, longest example 184 tokens, where the
# base coefficients above run ~10% low), the factor is 0.93 (H200, benchmarks/results/fused-h200-2026-12-01)
FUSED_ACT_FACTOR = 0.93
# peft copies each adapter's input to the adapter's fp32 before its matmul; under mixed precision autocast copies it
# back to bf16, and that copy is what backward keeps. The run plan skips the round trip (helpers.runplan): the gpu
# profile's peak went 32.10 -> 25.79 GiB at batch 256 (H200, benchmarks/results/cpu-side-h200-2026-12-02), 0.96
# bytes per input value of every adapted module (a 4-bit base's bitsandbytes layers never made the copy)
CAST_BYTES = 0.96
CONTEXT_GIB = 1.0  # CUDA context, allocator slack
GPUS = {"T4 (16 GB)": 15.0, "A100 (40 GB)": 39.4, "H100 (80 GB)": 79.1}  # usable GiB as nvidia-smi reports them


@dataclass(frozen=True)
class Architecture:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool

    @classmethod
    def from_config(cls, config) -> Architecture:
        return cls(config.hidden_size, config.intermediate_size, config.num_hidden_layers,
                   config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
                   config.vocab_size, bool(getattr(config, "tie_word_embeddings", False)))

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def matrix_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer of one decoder block."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.matrix_shapes().values())

    @property
    def other_params(self) -> int:
        """Embeddings, untied head, norms."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + self.layers * 2 * self.hidden + self.hidden

    @property
    def params(self) -> int:
        return self.linear_params + self.other_params

    def param_groups(self) -> dict[str, int]:
        """Parameters by role: where quantization saves (the linear layers) and where LoRA can attach. A head
        tied to the embeddings is the same tensor, so it has no entry of its own."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        groups = {"embeddings": self.vocab * h}
        if not self.tied:
            groups["head"] = self.vocab * h
        groups["attention q, k, v, o"] = self.layers * (2 * h * h + 2 * h * kv)
        groups["MLP gate, up, down"] = self.layers * 3 * h * i
        groups["norms"] = self.layers * 2 * h + h
        return groups


@dataclass
class MemoryEstimate:
    method: str
    weights: float
    trainable_state: float
    activations: float
    logits: float
    trainable: int

    @property
    def total(self) -> float:
        """Bytes allocated by tensors (what torch.cuda.max_memory_allocated reports)."""
        return self.weights + self.trainable_state + self.activations + self.logits

    def gib(self) -> dict[str, float]:
        return {"weights": self.weights / GIB, "grads + optimizer": self.trainable_state / GIB,
                "activations": self.activations / GIB, "logits": self.logits / GIB, "total": self.total / GIB}

    def fits(self, gpu_gib: float) -> bool:
        return self.total / GIB + CONTEXT_GIB <= gpu_gib


def lora_trainable(arch: Architecture, r: int, targets: tuple[str, ...]) -> int:
    shapes = arch.matrix_shapes()
    unknown = [t for t in targets if t not in shapes]
    if unknown:
        raise ValueError(f"unknown target modules {unknown}; choose from {list(shapes)}")
    return arch.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)


def estimate(arch: Architecture, method: str, batch: int, seq: int, r: int = 16,
             targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"),
             gradient_checkpointing: bool = False, double_quant: bool = True, loss: str = "full",
             lora_dropout: float = 0.0, fused_kernels: bool = False,
             adapter_input_casts: bool = True, frozen_fp32: bool = True,
             checkpoint_layers: int | None = None, paged_optimizer: bool = False,
             padding_mask: bool = True) -> MemoryEstimate:
    """Peak training memory of `method` ("full", "lora", "qlora") for one micro-batch of batch x seq tokens.

    loss="full" for a plain loop (`model(labels=...)`), "fused" for trl's SFTTrainer (no full logits); seq is the
    longest padded batch (max_length at worst), since that batch sets the peak. fused_kernels: Liger's layer
    kernels (the trainer's `fused_kernels` setting). adapter_input_casts=False: the run plan's mixed-precision
    training without peft's copies of the adapter inputs (the coefficients above were fitted with them).
    frozen_fp32=False: a 4-bit base whose other weights stay 16-bit (the run plan on a GPU), so no fp32 residual
    stream. checkpoint_layers: with checkpointing, only that many layers recompute; the others keep their activations.
    paged_optimizer: a paged optimizer's two moments live in CUDA managed memory, outside what PyTorch's allocator
    (and so this estimate) counts: 8 bytes per adapter parameter instead of 16.
    padding_mask=False: attention without the mask (the run plan's `padding_mask`) takes a kernel that saves the
    grouped keys and values as they are, not repeated to every query head (the coefficients above were fitted with
    the mask), so each layer that keeps its activations holds (heads - kv_heads) x head_dim x 2 x 2 bytes less.
    """
    if method not in ("full", "lora", "qlora"):
        raise ValueError("method must be 'full', 'lora' or 'qlora'")
    if loss not in ("full", "fused"):
        raise ValueError("loss must be 'full' (plain loop) or 'fused' (trl's SFTTrainer)")
    if batch < 1 or seq < 1:
        raise ValueError("batch and seq must be positive")
    tokens = batch * seq
    if method == "qlora":
        constants = (8 + 32 / 256) / 64 / 8 if double_quant else 4 / 64  # bytes per weight for the absmax values
        weights = arch.linear_params * (0.5 + constants) + arch.other_params * (4 if frozen_fp32 else 2)
    else:
        weights = arch.params * 2
    if method == "full":
        trainable = arch.params
        state = trainable * 6
    else:
        trainable = lora_trainable(arch, r, targets)
        state = trainable * (8 if paged_optimizer else 16)
    per_layer = 2 * (ACT_HIDDEN * arch.hidden + ACT_MLP * arch.intermediate)  # bytes per token, one layer
    if fused_kernels:  # under checkpointing only the recomputed layer's share shrinks, not the residual stream
        per_layer *= FUSED_ACT_FACTOR
    if method != "full" and lora_dropout > 0:
        per_layer += DROPOUT_BYTES * sum(arch.matrix_shapes()[t][0] for t in targets)
    casts = CAST_BYTES * sum(arch.matrix_shapes()[t][0] for t in targets) if method == "lora" and \
        not adapter_input_casts else 0.0
    per_layer -= casts
    if not padding_mask:  # keys and values saved for backward at kv_heads, not repeated to every query head
        per_layer -= 2 * 2 * (arch.heads - arch.kv_heads) * (arch.hidden // arch.heads)
    upcast = method == "qlora" and frozen_fp32  # an fp32 residual stream
    if gradient_checkpointing:
        residual = 4 if upcast else (CKPT_RESIDUAL_BF16 if loss == "fused" else 2)
        recomputed = arch.layers if checkpoint_layers is None else min(checkpoint_layers, arch.layers)
        # fitted: without the casts the checkpointed peak fell by about two layers' copies (3.48 -> 3.00 GiB)
        activations = tokens * (recomputed * residual * arch.hidden + (arch.layers - recomputed) * per_layer
                                + per_layer - casts)
    else:
        activations = tokens * arch.layers * per_layer
    if upcast:
        activations *= QLORA_ACT_FACTOR
    logits = tokens * arch.vocab * LOGIT_BYTES if loss == "full" else 0
    return MemoryEstimate(method, weights, state, activations, logits, trainable)


def compare_measured(arch: Architecture, measured: list[dict]) -> list[dict]:
    """Predicted vs measured peak for the benchmark's `modes` results (benchmark_modes.json entries)."""
    method = {"full-bf16": "full", "lora-bf16": "lora", "qlora-nf4": "qlora", "qlora-nf4-dq": "qlora"}
    rows = []
    for m in measured:
        if m.get("peak_memory_gb") is None or m["name"] not in method:
            continue
        s = m["settings"]
        ckpt = bool(s.get("gradient_checkpointing"))
        est = estimate(arch, method[m["name"]], s["batch"], s["seq"], r=s.get("r") or 16,
                       gradient_checkpointing=ckpt, double_quant=m["name"].endswith("-dq"))
        rows.append({"run": m["name"], "batch x seq": f"{s['batch']} x {s['seq']}{' ckpt' if ckpt else ''}", "predicted GiB": est.total / GIB, "measured GiB": m["peak_memory_gb"],
                     "error": est.total / GIB / m["peak_memory_gb"] - 1})
    return rows


def compare_trainer(arch: Architecture, measured: list[dict], seq: int) -> list[dict]:
    """Predicted vs measured peak for SFTTrainer runs (`benchmark speed` / `recipes` entries); seq is the longest
    example (the longest padded batch sets the peak)."""
    rows = []
    for m in measured:
        s = m["settings"]
        if m.get("peak_memory_gb") is None or s.get("padding_free"):  # one packed row: not a batch x seq shape
            continue
        method = "lora" if s.get("quantization") in ("bf16", "fp16", "fp32") else "qlora"
        est = estimate(arch, method, s["batch_size"], seq, r=m.get("settings", {}).get("r", 16) or 16,
                       targets=tuple(m.get("targets", ALL_LINEAR)), gradient_checkpointing=bool(s["gradient_checkpointing"]),
                       loss="fused", lora_dropout=s.get("dropout", 0.1), fused_kernels=bool(s.get("fused_kernels")),
                       adapter_input_casts=s.get("adapter_input_casts", True), frozen_fp32=s.get("frozen_fp32", True),
                       checkpoint_layers=s.get("checkpoint_layers"), padding_mask=s.get("padding_mask", True))
        rows.append({"run": m["name"], "predicted GiB": est.total / GIB, "measured GiB": m["peak_memory_gb"],
                     "error": est.total / GIB / m["peak_memory_gb"] - 1})
    return rows


def fit_table(arch: Architecture, batch: int, seq: int, r: int = 16,
              targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"),
              gradient_checkpointing: bool = True) -> list[dict]:
    """For each method: the estimate and whether it fits each GPU in GPUS."""
    rows = []
    for method in ("full", "lora", "qlora"):
        est = estimate(arch, method, batch, seq, r, targets, gradient_checkpointing)
        row = {"method": method, **{k: round(v, 1) for k, v in est.gib().items()}}
        row.update({gpu: "fits" if est.fits(size) else "no" for gpu, size in GPUS.items()})
        rows.append(row)
    return rows
