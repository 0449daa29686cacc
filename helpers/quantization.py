"""Quantization from first principles, in plain torch.

Everything here is written from scratch so a learner can read it; the tests hold it to bitsandbytes:
`quantize_4bit` / `dequantize_4bit` are bit-identical to `bitsandbytes.functional` on CPU for nf4 and fp4.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import torch

# --------------------------------------------------------------------------------------------------
# Floating-point formats
# --------------------------------------------------------------------------------------------------

FORMATS = {  # name: (exponent bits, mantissa bits, dtype)
    "fp32": (8, 23, torch.float32),
    "fp16": (5, 10, torch.float16),
    "bf16": (8, 7, torch.bfloat16),
}


@dataclass(frozen=True)
class FloatBits:
    fmt: str
    sign: str
    exponent: str
    mantissa: str
    stored_value: float  # the value the format actually holds after rounding


def float_bits(value: float, fmt: str = "fp32") -> FloatBits:
    """Split a number into the sign / exponent / mantissa bits of fp32, fp16 or bf16."""
    exp_bits, man_bits, dtype = FORMATS[fmt]
    stored = torch.tensor(value, dtype=dtype)
    if fmt == "fp16":
        raw = struct.unpack(">H", struct.pack(">e", stored.item()))[0]
        total = 16
    else:
        # bf16 is the top 16 bits of fp32, so read the fp32 pattern of the rounded value
        raw = struct.unpack(">I", struct.pack(">f", stored.float().item()))[0]
        total = 32
        if fmt == "bf16":
            raw, total = raw >> 16, 16
    bits = format(raw, f"0{total}b")
    return FloatBits(fmt, bits[0], bits[1 : 1 + exp_bits], bits[1 + exp_bits :], stored.float().item())


def format_summary(fmt: str) -> dict[str, float]:
    """Range and precision of a format: largest value, smallest normal value, and epsilon."""
    info = torch.finfo(FORMATS[fmt][2])
    exp_bits, man_bits, _ = FORMATS[fmt]
    return {
        "bits": 1 + exp_bits + man_bits,
        "exponent": exp_bits,
        "mantissa": man_bits,
        "max": info.max,
        "min_normal": info.tiny,
        "eps": info.eps,
    }


# --------------------------------------------------------------------------------------------------
# Integer quantization: symmetric absmax and asymmetric zero-point
# --------------------------------------------------------------------------------------------------


def absmax_quantize(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric: scale = (2^(bits-1) - 1) / max|x|, q = round(x * scale). Zero stays exactly zero."""
    qmax = 2 ** (bits - 1) - 1
    scale = qmax / x.abs().max().clamp(min=1e-12)
    q = torch.round(x * scale).clamp(-qmax, qmax).to(torch.int8 if bits <= 8 else torch.int32)
    return q, scale


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() / scale


def zeropoint_quantize(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric: map [min, max] onto [0, 2^bits - 1]; the zero-point is where 0.0 lands.

    It uses every level even when the data is one-sided (all positive, say), where absmax wastes half.
    """
    qmax = 2**bits - 1
    lo, hi = x.min(), x.max()
    scale = qmax / (hi - lo).clamp(min=1e-12)
    zero_point = torch.round(-lo * scale)
    q = torch.round(x * scale + zero_point).clamp(0, qmax).to(torch.uint8 if bits <= 8 else torch.int32)
    return q, scale, zero_point


def zeropoint_dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    return (q.float() - zero_point) / scale


def absmax_roundtrip(x: torch.Tensor, bits: int = 8, granularity: str = "tensor", blocksize: int = 64) -> torch.Tensor:
    """Quantize and dequantize with one scale per tensor, per output channel (row), or per block.

    Finer granularity costs more scales but confines an outlier's damage to its own row or block.
    """
    qmax = 2 ** (bits - 1) - 1
    if granularity == "tensor":
        groups = x.reshape(1, -1)
    elif granularity == "channel":
        groups = x.reshape(x.shape[0], -1)
    elif granularity == "block":
        flat = x.reshape(-1)
        pad = (-flat.numel()) % blocksize
        groups = torch.nn.functional.pad(flat, (0, pad)).reshape(-1, blocksize)
    else:
        raise ValueError(f"granularity must be tensor, channel or block, not {granularity!r}")
    groups = groups.float()
    scale = qmax / groups.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
    restored = torch.round(groups * scale).clamp(-qmax, qmax) / scale
    return restored.reshape(-1)[: x.numel()].reshape(x.shape).to(x.dtype)


# --------------------------------------------------------------------------------------------------
# 4-bit code books: NF4 from normal quantiles, FP4 (E2M1)
# --------------------------------------------------------------------------------------------------


def nf4_levels(offset: float = 0.9677083) -> torch.Tensor:
    """The 16 NF4 levels derived: quantiles of N(0, 1), normalised to [-1, 1], with an exact zero.

    8 positive levels come from 9 evenly spaced probabilities between 0.5 and `offset`, 7 negative
    ones from 8; sharing the zero makes 16. `offset` is chosen so the end quantiles are not infinite.
    The result agrees with the published constants (`NF4_CODE`) to float32 rounding (~1e-7).
    """
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    pos = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (levels / levels.max()).float()


# The NF4 data type is defined by these 16 float32 constants (as released with QLoRA); the
# derivation above reproduces them to the last bit or two, and the quantizer uses the constants.
NF4_CODE = torch.tensor(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    dtype=torch.float32,
)


def fp4_levels(decimals: int | None = None) -> torch.Tensor:
    """The FP4 (E2M1) code book in bitsandbytes' code order (index = sign, 2 exponent bits, 1 mantissa bit).

    Magnitudes {0, 0.0625, 2, 3, 4, 6, 8, 12} / 12, where exponent field 1 is the largest binade and
    field 0 holds zero and a tiny value (often printed rounded: 0, 0.0052, 0.6667, ...; `decimals=4`).
    """
    magnitudes = [0.0, 0.0625 / 12]
    for exponent_field in (1, 2, 3):
        for mantissa in (0, 1):
            magnitudes.append(2 ** (4 - exponent_field) * (1 + mantissa / 2) / 12)
    if decimals is not None:
        magnitudes = [round(m, decimals) for m in magnitudes]
    return torch.tensor(magnitudes + [-m if m else 0.0 for m in magnitudes], dtype=torch.float32)


def code_book(quant_type: str) -> torch.Tensor:
    """The 16 levels a 4-bit code decodes to."""
    if quant_type == "nf4":
        return NF4_CODE
    if quant_type == "fp4":
        return fp4_levels()
    raise ValueError(f"quant_type must be 'nf4' or 'fp4', not {quant_type!r}")


# --------------------------------------------------------------------------------------------------
# Blockwise 4-bit quantization in bitsandbytes' layout
# --------------------------------------------------------------------------------------------------


def _scaled_blocks(x: torch.Tensor, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each block divided by its absmax, in the exact float32 arithmetic bitsandbytes uses."""
    flat = x.reshape(-1).float()
    n = flat.numel()
    full = n - n % blocksize
    blocks = flat[:full].reshape(-1, blocksize)
    absmax = blocks.abs().max(dim=-1).values
    scaled = torch.clamp(blocks * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if full < n:  # a last, shorter block
        tail_max = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, tail_max.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / tail_max, -1, 1)])
    return scaled, absmax


def quantize_4bit(x: torch.Tensor, quant_type: str = "nf4", blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise 4-bit quantization. Returns (packed uint8 of shape [ceil(n/2), 1], float32 absmax per block).

    Each value goes to the nearest level of the code book (ties go to the lower level), and two 4-bit
    codes share a byte: the first in the high nibble.
    """
    levels = code_book(quant_type)
    order = torch.argsort(levels)
    sorted_levels = levels[order]
    midpoints = (sorted_levels[:-1] + sorted_levels[1:]) / 2
    scaled, absmax = _scaled_blocks(x, blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    rank = torch.searchsorted(midpoints, scaled)  # how many midpoints lie strictly below each value
    codes = order[rank].to(torch.uint8)  # position in the sorted list -> index in the code book
    packed = (codes[0::2] << 4) | codes[1::2]
    return packed.unsqueeze(1), absmax


def dequantize_4bit(
    packed: torch.Tensor,
    absmax: torch.Tensor,
    quant_type: str = "nf4",
    blocksize: int = 64,
    shape: tuple[int, ...] | torch.Size | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Unpack the nibbles, look up the levels and multiply each block by its absmax."""
    levels = code_book(quant_type)
    flat = packed.reshape(-1)
    codes = torch.stack([flat >> 4, flat & 0xF], dim=1).reshape(-1).long()
    n = math.prod(shape) if shape is not None else codes.numel()
    values = levels[codes[:n]]
    block_index = torch.arange(n) // blocksize
    out = values * absmax.float()[block_index]
    return out.reshape(shape if shape is not None else (n,)).to(dtype)


# --------------------------------------------------------------------------------------------------
# Double quantization: quantize the absmax constants themselves
# --------------------------------------------------------------------------------------------------


def dynamic_map(max_exponent_bits: int = 7, total_bits: int = 8) -> torch.Tensor:
    """The signed 8-bit 'dynamic' code (Dettmers, 2015): a decimal exponent plus a shrinking fraction.

    Small magnitudes get fine steps, large ones coarse: what a spread of absmax values needs.
    """
    data: list[float] = []
    non_sign = total_bits - 1
    for i in range(max_exponent_bits):
        items = 2 ** (i + non_sign - max_exponent_bits) + 1
        edges = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        magnitude = 10 ** (-(max_exponent_bits - 1) + i)
        data += (magnitude * means).tolist()
        data += (-magnitude * means).tolist()
    extra = 2 ** (non_sign - max_exponent_bits) - 1
    if extra > 0:
        edges = torch.linspace(0.1, 1, extra + 1, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        data += (10 ** (-(max_exponent_bits - 1) + max_exponent_bits - 1) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + max_exponent_bits - 1)) * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (2**total_bits - len(data))
    return torch.tensor(data, dtype=torch.float32).sort().values


@dataclass
class DoubleQuantized:
    codes: torch.Tensor  # uint8, one per first-level absmax
    absmax2: torch.Tensor  # float32, one per block of `blocksize2` first-level constants
    offset: float  # the mean subtracted first, so the constants are centred on zero
    blocksize2: int


def double_quantize(absmax: torch.Tensor, blocksize2: int = 256) -> DoubleQuantized:
    """8-bit blockwise quantization of the (positive) absmax constants after subtracting their mean."""
    code = dynamic_map()
    offset = absmax.float().mean()
    centred = absmax.float() - offset
    n = centred.numel()
    pad = (-n) % blocksize2
    blocks = torch.nn.functional.pad(centred, (0, pad)).reshape(-1, blocksize2)
    absmax2 = blocks.abs().amax(dim=1).clamp(min=1e-38)
    scaled = (blocks / absmax2[:, None]).reshape(-1)[:n]
    midpoints = (code[:-1] + code[1:]) / 2
    codes = torch.searchsorted(midpoints, scaled).to(torch.uint8)
    return DoubleQuantized(codes, absmax2, offset.item(), blocksize2)


def double_dequantize(dq: DoubleQuantized) -> torch.Tensor:
    code = dynamic_map()
    block_index = torch.arange(dq.codes.numel()) // dq.blocksize2
    return code[dq.codes.long()] * dq.absmax2[block_index] + dq.offset


def bits_per_parameter(bits: int = 4, blocksize: int = 64, double_quant: bool = False, blocksize2: int = 256) -> float:
    """Storage per weight: the code plus its share of the block constants.

    Plain: 4 + 32/64 = 4.5 bits. Double quantized: 4 + 8/64 + 32/(64*256) = 4.127 bits.
    """
    if not double_quant:
        return bits + 32 / blocksize
    return bits + 8 / blocksize + 32 / (blocksize * blocksize2)


# --------------------------------------------------------------------------------------------------
# BitNet b1.58: ternary weights
# --------------------------------------------------------------------------------------------------


def ternary_quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """absmean quantization to {-1, 0, +1}: scale = mean|w|, q = round(clip(w / scale, -1, 1))."""
    scale = w.float().abs().mean().clamp(min=1e-8)
    q = torch.round(torch.clamp(w.float() / scale, -1, 1)).to(torch.int8)
    return q, scale


def ternary_dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale


# --------------------------------------------------------------------------------------------------
# Applying a method to a whole model (simulated: weights are rounded, then kept in float)
# --------------------------------------------------------------------------------------------------

METHODS = ("bf16", "int8", "int4", "fp4", "nf4", "nf4-dq", "ternary")
METHOD_BITS = {  # storage bits per quantized weight, including block constants
    "bf16": 16.0,
    "int8": 8.0,  # one fp32 scale per row: negligible
    "int4": bits_per_parameter(4),
    "fp4": bits_per_parameter(4),
    "nf4": bits_per_parameter(4),
    "nf4-dq": bits_per_parameter(4, double_quant=True),
    "ternary": math.log2(3),  # 1.58 bits of information; packed storage uses 2
}


def fake_quantize(w: torch.Tensor, method: str) -> torch.Tensor:
    """The weight as the model will see it after quantizing with `method` and dequantizing."""
    if method == "bf16":
        return w.to(torch.bfloat16).to(w.dtype)
    if method == "int8":  # vector-wise absmax, one scale per output row (as LLM.int8 does)
        return absmax_roundtrip(w, 8, "channel")
    if method == "int4":  # blockwise absmax with 15 evenly spaced levels, same blocks as NF4
        return absmax_roundtrip(w, 4, "block", 64)
    if method in ("fp4", "nf4"):
        packed, absmax = quantize_4bit(w, method)
        return dequantize_4bit(packed, absmax, method, 64, w.shape, w.dtype)
    if method == "nf4-dq":
        packed, absmax = quantize_4bit(w, "nf4")
        absmax = double_dequantize(double_quantize(absmax))
        return dequantize_4bit(packed, absmax, "nf4", 64, w.shape, w.dtype)
    if method == "ternary":
        return ternary_dequantize(*ternary_quantize(w)).to(w.dtype)
    raise ValueError(f"Unknown method {method!r}; choose one of {METHODS}.")


@dataclass
class QuantizationReport:
    method: str
    relative_error: float  # ||W - Q(W)|| / ||W|| over all quantized weights
    size_mb: float  # quantized linear layers at their bits + everything else at 16 bits


@torch.no_grad()
def quantize_linear_weights(model: torch.nn.Module, method: str) -> QuantizationReport:
    """Replace every decoder nn.Linear weight with its quantized-then-dequantized value, in place.

    Embeddings and the output head stay in 16 bits, as bitsandbytes leaves them. Returns the
    reconstruction error and the size the model would take stored that way.
    """
    err2 = ref2 = 0.0
    quantized = other = 0
    seen = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            w = module.weight
            q = fake_quantize(w.data, method)
            err2 += (w.data.float() - q.float()).pow(2).sum().item()
            ref2 += w.data.float().pow(2).sum().item()
            w.data.copy_(q)
            quantized += w.numel()
            seen.add(id(w))
    for p in model.parameters():
        if id(p) not in seen:
            other += p.numel()
    size_bits = quantized * METHOD_BITS[method] + other * 16
    return QuantizationReport(method, math.sqrt(err2 / ref2), size_bits / 8 / 1e6)


@torch.no_grad()
def perplexity(model, tokenizer, text: str, max_tokens: int = 4096, window: int = 512) -> float:
    """exp(mean next-token loss) over the first `max_tokens` tokens of `text`, in non-overlapping windows."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0][:max_tokens]
    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    for start in range(0, ids.numel() - 1, window):
        chunk = ids[start : start + window].unsqueeze(0).to(device)
        if chunk.shape[1] < 2:
            break
        loss = model(input_ids=chunk, labels=chunk).loss
        total_loss += loss.item() * (chunk.shape[1] - 1)
        total_tokens += chunk.shape[1] - 1
    return math.exp(total_loss / total_tokens)


# --------------------------------------------------------------------------------------------------
# Memory footprint of a big model, from its config only (meta device: no weights)
# --------------------------------------------------------------------------------------------------


def footprint_from_config(config) -> dict[str, float]:
    """GB to hold a model's weights in each format, computed on the meta device (nothing downloaded)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linear = sum(
        m.weight.numel()
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not n.endswith("lm_head")
    )
    total = sum(p.numel() for p in model.parameters())
    other = total - linear
    gb = lambda bits_linear: (linear * bits_linear + other * 16) / 8 / 1e9  # noqa: E731
    return {
        "parameters_b": total / 1e9,
        "linear_share": linear / total,
        "fp32": total * 4 / 1e9,
        "bf16": total * 2 / 1e9,
        "int8": gb(8),
        "nf4": gb(bits_per_parameter(4)),
        "nf4-dq": gb(bits_per_parameter(4, double_quant=True)),
    }


# --------------------------------------------------------------------------------------------------
# The compute dtype of a 4-bit layer, and post-training quantization vs quantization-aware training
# --------------------------------------------------------------------------------------------------


@dataclass
class ComputeDtypeResult:
    compute_dtype: str
    ms: float  # median time of one forward
    relative_error: float  # against the same dequantized weights multiplied in float64


@torch.no_grad()
def compute_dtype_trial(weight: torch.Tensor, x: torch.Tensor, compute_dtype: torch.dtype, reps: int = 20,
                        device: str = "cpu") -> ComputeDtypeResult:
    """One bitsandbytes NF4 layer, its weights fixed, computing in `compute_dtype`: how fast, how far off.

    The 4-bit weights are the same in every trial; what changes is the dtype they are dequantized to before
    the matmul (and the input's dtype). The error is measured against the exact product of the same
    dequantized weights, so it is the compute dtype's error alone, not the 4-bit one."""
    import time

    import bitsandbytes as bnb

    layer = bnb.nn.Linear4bit(weight.shape[1], weight.shape[0], bias=False, compute_dtype=compute_dtype,
                              quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, quant_type="nf4")
    layer = layer.to(device)  # quantizes here
    layer.support_avx512bf16_for_cpu = False  # the training-safe CPU path (see helpers.models' guard)
    exact = x.to(device).double() @ bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).double().T
    xin = x.to(device, compute_dtype)
    out = layer(xin)  # warm-up
    times = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = layer(xin)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    error = ((out.double() - exact).norm() / exact.norm()).item()
    return ComputeDtypeResult(str(compute_dtype).removeprefix("torch."), 1000 * sorted(times)[len(times) // 2], error)


def toy_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A small non-linear regression (16 inputs -> 1 output) for the PTQ-vs-QAT experiment."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = torch.sin(x[:, :8]).sum(1, keepdim=True) + 0.5 * x[:, 8:].pow(2).mean(1, keepdim=True)
    return x, y


class FakeQuantLinear(torch.nn.Linear):
    """A linear layer that, with `bits` set, computes with its weight quantized (per output row, absmax) and
    passes the gradient straight through to the full-precision weight: quantization-aware training."""

    bits: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.bits is not None:
            w = w + (absmax_roundtrip(w, self.bits, "channel") - w).detach()  # straight-through estimator
        return torch.nn.functional.linear(x, w, self.bias)


def toy_mlp(seed: int = 1) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(FakeQuantLinear(16, 64), torch.nn.ReLU(), FakeQuantLinear(64, 64), torch.nn.ReLU(),
                               FakeQuantLinear(64, 1))


def train_toy(model: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 3e-3,
              qat_bits: int | None = None, seed: int = 0) -> torch.nn.Sequential:
    """Adam on mean squared error, batches of 128; with qat_bits the forward sees quantized weights."""
    for layer in model:
        if isinstance(layer, FakeQuantLinear):
            layer.bits = qat_bits
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[i]), y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for layer in model:
        if isinstance(layer, FakeQuantLinear):
            layer.bits = None
    return model


@torch.no_grad()
def toy_loss(model: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor, bits: int | None = None) -> float:
    """Mean squared error, with every weight quantized to `bits` first (post-training quantization) if given."""
    import copy

    model = copy.deepcopy(model)
    for layer in model:
        if isinstance(layer, FakeQuantLinear):
            layer.bits = None
            if bits is not None:
                layer.weight.copy_(absmax_roundtrip(layer.weight, bits, "channel"))
    return torch.nn.functional.mse_loss(model(x), y).item()
