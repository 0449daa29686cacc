import math

import bitsandbytes.functional as bnbf
import pytest
import torch

from helpers import quantization as q

SHAPES = [(64, 64), (1000,), (33, 17), (7,), (128, 333), (300, 64)]  # several not divisible by 64
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_4bit_is_bit_identical_to_bitsandbytes(quant_type, dtype, shape):
    torch.manual_seed(hash((quant_type, str(dtype), shape)) % 2**31)
    x = (torch.randn(shape) * 3).to(dtype)
    x.view(-1)[0] = 0.0  # exact zeros and a heavy outlier are edge cases worth covering
    x.view(-1)[-1] = 40.0
    packed, absmax = q.quantize_4bit(x, quant_type, blocksize=64)
    ref_packed, state = bnbf.quantize_4bit(x, blocksize=64, quant_type=quant_type)
    assert packed.dtype == torch.uint8 and packed.shape == ref_packed.shape
    assert torch.equal(packed, ref_packed)
    assert torch.equal(absmax, state.absmax)
    ours = q.dequantize_4bit(packed, absmax, quant_type, 64, x.shape, dtype)
    theirs = bnbf.dequantize_4bit(ref_packed, state)
    assert ours.shape == x.shape and ours.dtype == dtype
    assert torch.equal(ours, theirs.reshape(x.shape))  # bitsandbytes returns (1, n) for 1-D input


def test_code_books_match_bitsandbytes():
    assert torch.equal(q.NF4_CODE, bnbf.get_4bit_type("nf4", device="cpu"))
    assert torch.equal(q.fp4_levels(), bnbf.get_4bit_type("fp4", device="cpu"))
    derived = q.nf4_levels()
    assert (derived - q.NF4_CODE).abs().max() < 3e-7  # the quantile derivation, to float32 rounding
    assert derived[7] == 0 and derived[0] == -1 and derived[-1] == 1
    assert q.fp4_levels(4)[1].item() == pytest.approx(0.0052)


def test_nf4_levels_have_equal_normal_mass():
    # the 8 positive levels are midpoint-free quantiles: their CDF values are evenly spaced
    normal = torch.distributions.Normal(0.0, 1.0)
    derived = q.nf4_levels().double()
    positive = derived[derived > 0] * normal.icdf(torch.tensor(0.9677083)).double()
    steps = torch.diff(normal.cdf(positive.float()).double())
    assert torch.allclose(steps, steps.mean().expand_as(steps), atol=1e-6)


def test_absmax_worked_example():
    x = torch.tensor([0.0, 500.0, 1000.0, 2000.0])
    codes, scale = q.absmax_quantize(x, bits=8)
    assert scale.item() == pytest.approx(127 / 2000)
    assert codes.tolist() == [0, 32, 64, 127]  # 500*0.0635 = 31.75 -> 32
    assert q.absmax_dequantize(codes, scale).tolist() == pytest.approx([0.0, 503.94, 1007.87, 2000.0], abs=0.01)


def test_zero_point_worked_examples():
    # 0..2000 onto 0..255: the zero-point is 0 and every level is used
    codes, scale, zp = q.zeropoint_quantize(torch.tensor([0.0, 1000.0, 2000.0]))
    assert zp.item() == 0 and codes.tolist() == [0, 128, 255]
    # -20..2000: the zero-point shifts so that 0.0 is representable exactly
    x = torch.tensor([-20.0, 0.0, 1000.0, 2000.0])
    codes, scale, zp = q.zeropoint_quantize(x)
    assert scale.item() == pytest.approx(255 / 2020)
    assert zp.item() == 3  # round(20 * 255/2020) = round(2.52)
    assert codes.tolist() == [0, 3, 129, 255]
    restored = q.zeropoint_dequantize(codes, scale, zp)
    assert restored[1].item() == 0.0
    assert (restored - x).abs().max().item() <= 0.5 / scale.item() + 1e-3  # at most half a step


def test_outlier_hurts_per_tensor_more_than_blockwise():
    torch.manual_seed(0)
    w = torch.randn(64, 256)
    w[3, 5] = 100.0
    errors = {g: (q.absmax_roundtrip(w, 8, g) - w).pow(2).mean().item() for g in ("tensor", "channel", "block")}
    assert errors["block"] < errors["channel"] < errors["tensor"]
    with pytest.raises(ValueError, match="granularity"):
        q.absmax_roundtrip(w, 8, "row")


def test_double_quant_bits_and_measured_footprint():
    assert q.bits_per_parameter(4) == 4.5
    assert q.bits_per_parameter(4, double_quant=True) == pytest.approx(4.127, abs=1e-3)
    torch.manual_seed(0)
    w = torch.randn(1024, 1024)
    _, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    measured_bits = (state.absmax.numel() * 8 + state.state2.absmax.numel() * 32) / w.numel()
    assert measured_bits == pytest.approx(q.bits_per_parameter(4, double_quant=True) - 4, rel=0.01)


def test_double_quantization_error_is_small():
    torch.manual_seed(0)
    _, absmax = q.quantize_4bit(torch.randn(512, 512), "nf4")
    dq = q.double_quantize(absmax)
    assert dq.codes.dtype == torch.uint8 and dq.absmax2.numel() == math.ceil(absmax.numel() / 256)
    restored = q.double_dequantize(dq)
    assert ((restored - absmax).abs() / absmax).max() < 0.02
    assert torch.equal(q.dynamic_map(), bnbf.create_dynamic_map(True).sort().values)


def test_ternary_absmean():
    w = torch.tensor([[0.4, -0.05, -1.2], [0.1, 0.0, 0.9]])
    codes, scale = q.ternary_quantize(w)
    assert scale.item() == pytest.approx(w.abs().mean().item())
    assert codes.tolist() == [[1, 0, -1], [0, 0, 1]]
    assert set(q.ternary_dequantize(codes, scale).unique().tolist()) <= {-scale.item(), 0.0, scale.item()}


def test_float_bits():
    one = q.float_bits(1.0, "fp32")
    assert (one.sign, one.exponent, one.mantissa) == ("0", "01111111", "0" * 23)
    neg = q.float_bits(-2.5, "bf16")
    assert (neg.sign, neg.exponent, neg.mantissa) == ("1", "10000000", "0100000")
    third = q.float_bits(1 / 3, "fp16")
    assert (
        len(third.exponent) == 5 and len(third.mantissa) == 10 and third.stored_value == pytest.approx(1 / 3, rel=1e-3)
    )
    assert q.format_summary("bf16")["max"] > q.format_summary("fp16")["max"]


def test_fake_quantize_orders_errors_by_bits():
    torch.manual_seed(0)
    w = torch.randn(256, 256) * 0.02
    err = {m: ((q.fake_quantize(w, m) - w).norm() / w.norm()).item() for m in q.METHODS}
    assert err["bf16"] < err["int8"] < err["nf4"] < err["ternary"]
    assert err["nf4"] < err["int4"]  # normal-shaped levels beat evenly spaced ones on normal weights
    assert err["nf4-dq"] == pytest.approx(err["nf4"], rel=0.05)
    with pytest.raises(ValueError, match="Unknown method"):
        q.fake_quantize(w, "int2")


def test_footprint_from_config_llama_8b():
    from helpers.models import load_model_config

    sizes = q.footprint_from_config(load_model_config("llama-3.1-8b"))
    assert sizes["parameters_b"] == pytest.approx(8.03, abs=0.01)
    assert sizes["bf16"] == pytest.approx(16.06, abs=0.01)
    assert sizes["nf4"] < sizes["int8"] < sizes["bf16"] and sizes["nf4-dq"] < sizes["nf4"]


def test_compute_dtype_trial_measures_the_dtype_error_alone():
    """fp32 compute reproduces the exact product of the dequantized weights; bf16 is ~1e-3 off, fp16 in between."""
    torch.manual_seed(0)
    w, x = torch.randn(64, 128) * 0.02, torch.randn(8, 128)
    results = {d: q.compute_dtype_trial(w, x, d, reps=2) for d in (torch.float32, torch.bfloat16, torch.float16)}
    assert results[torch.float32].relative_error < 1e-5
    assert 1e-4 < results[torch.bfloat16].relative_error < 2e-2
    assert results[torch.float16].relative_error < results[torch.bfloat16].relative_error
    assert all(r.ms > 0 for r in results.values())


def test_quantization_aware_training_beats_post_training_quantization_at_two_bits():
    x, y = q.toy_task(2048, seed=0)
    xv, yv = q.toy_task(512, seed=1)
    model = q.train_toy(q.toy_mlp(), x, y, steps=600)
    fp32, ptq = q.toy_loss(model, xv, yv), q.toy_loss(model, xv, yv, bits=2)
    assert ptq > 3 * fp32  # two bits per weight, after training, ruin the model
    qat = q.train_toy(model, x, y, steps=300, lr=1e-3, qat_bits=2)
    assert q.toy_loss(qat, xv, yv, bits=2) < 0.5 * ptq  # training with the quantizer in the loop recovers
    assert all(layer.bits is None for layer in qat if isinstance(layer, q.FakeQuantLinear))
