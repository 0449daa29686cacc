"""The FSDP benchmark (benchmarks/fsdp_emulate.py) on CPU with a two-layer model of the course family, and the
adapter preparation it shares with the workbook's training under FSDP."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from helpers.training import ALL_LINEAR, TrainConfig, add_adapters

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("fsdp_emulate", ROOT / "benchmarks" / "fsdp_emulate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fsdp_emulate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "random-llama-3.1-8b-tiny"
    _script().build("llama-3.1-8b", folder, tiny=True)
    return folder


def test_the_benchmark_trains_a_random_model_and_writes_its_row(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    out = tmp_path / "rows.json"
    code = _script().main(["train", "llama-3.1-8b", "--tiny", "--folder", str(tiny_folder), "--batch", "2",
                           "--seq", "16", "--steps", "3", "--r", "4", "--json", str(out)])
    assert code == 0
    (row,) = json.loads(out.read_text())
    assert row["model"] == "llama-3.1-8b (tiny)" and row["gpus"] == 1 and row["fsdp"] is False
    assert row["processes"][0]["steps"] == 3 and row["step_ms"] > 0 and row["tokens_per_s"] > 0
    assert 0 < row["train_loss"] < 20  # random ids over a 512-token vocabulary: ~ln(512) = 6.2
    assert row["planned_one_gpu_gib"] >= 0 and row["wrapped_in"] == "PeftModelForCausalLM"
    with pytest.raises(SystemExit, match="build llama-3.1-8b"):
        _script().main(["train", "llama-3.1-8b", "--folder", str(tmp_path / "missing")])


def test_under_fsdp_every_parameter_of_a_shard_unit_keeps_the_storage_dtype(tiny_folder):
    """FSDP flattens a decoder layer with its adapters: one dtype for all. Without FSDP the workbook upcasts
    norms and embeddings to fp32 (prepare_model_for_kbit_training) and keeps the adapters in fp32."""
    from transformers import AutoModelForCausalLM

    from helpers.models import quantization_config

    def loaded():
        q = quantization_config("nf4-dq", torch.bfloat16, quant_storage=torch.bfloat16)
        return AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.bfloat16, quantization_config=q,
                                                    device_map={"": "cpu"})

    config = TrainConfig(target_modules=ALL_LINEAR, r=4, alpha=8, fsdp=True)
    sharded = add_adapters(loaded(), config, checkpointing=True)
    dtypes = {p.dtype for p in sharded.parameters()}
    assert dtypes == {torch.bfloat16}, dtypes
    assert sharded.base_model.model.is_gradient_checkpointing
    trainable = [n for n, p in sharded.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    plain = add_adapters(loaded(), TrainConfig(target_modules=ALL_LINEAR, r=4, alpha=8), checkpointing=False)
    assert torch.float32 in {p.dtype for p in plain.parameters()}  # the non-FSDP path upcasts, as before


def test_a_run_that_runs_out_of_memory_is_a_row_that_says_so(tiny_folder, tmp_path, monkeypatch):
    """A capped card that cannot hold the batch: the row says fits=False with the error, no traceback."""
    script = _script()
    real = script._trainer_class

    def failing():
        class OutOfMemory(real()):
            def train(self, *args, **kwargs):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return OutOfMemory

    monkeypatch.setattr(script, "_trainer_class", failing)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    out = tmp_path / "rows.json"
    assert script.main(["train", "llama-3.1-8b", "--tiny", "--folder", str(tiny_folder), "--batch", "2",
                        "--seq", "16", "--steps", "2", "--r", "4", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["fits"] is False and row["tokens_per_s"] is None and row["step_ms"] is None
    assert "out of memory" in row["processes"][0]["error"]


def test_a_4_bit_base_kept_in_its_dtype_upcasts_nothing_and_still_trains_its_adapters(tiny_folder):
    """The run plan on a GPU (frozen_fp32=False): embeddings, head and norms stay 16-bit, the adapters fp32, and
    gradients reach every adapter through the checkpointed layers."""
    from transformers import AutoModelForCausalLM

    from helpers.models import quantization_config

    def loaded():
        return AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.bfloat16, device_map={"": "cpu"},
                                                    quantization_config=quantization_config("nf4-dq", torch.bfloat16))

    config = TrainConfig(target_modules=ALL_LINEAR, r=4, alpha=8, dropout=0.0)
    kept = add_adapters(loaded(), config, checkpointing=True, frozen_fp32=False)
    frozen = {p.dtype for p in kept.parameters() if not p.requires_grad} - {torch.uint8}  # 4-bit weights: packed
    assert frozen == {torch.bfloat16}
    assert {p.dtype for p in kept.parameters() if p.requires_grad} == {torch.float32}
    kept.train()
    ids = torch.randint(3, 500, (2, 12), generator=torch.Generator().manual_seed(0))
    kept(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in kept.named_parameters() if "lora_B" in n)
    upcast = add_adapters(loaded(), config, checkpointing=True)  # peft's preparation, as on CPU
    assert upcast.get_input_embeddings().weight.dtype == torch.float32


def test_only_the_first_layers_recompute_through_the_trainer(tiny_folder, tmp_path, monkeypatch):
    """checkpoint_layers=1 on the two-layer model: in every training step the first layer runs twice (forward, then
    again in backward) and the second once; the Trainer is not told to checkpoint, so it does not switch the second
    layer back on. Without the setting both layers run twice."""
    from transformers.models.llama.modeling_llama import LlamaMLP

    calls: dict[int, int] = {}  # MLP calls per layer (the layer's own forward is what transformers wraps)
    real = LlamaMLP.forward

    def counted(self, *args, **kwargs):
        calls[self.layer] = calls.get(self.layer, 0) + 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LlamaMLP, "forward", counted)
    real_init = LlamaMLP.__init__
    made = iter(range(100))

    def numbered(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.layer = next(made) % 2  # two layers per model, built in order

    monkeypatch.setattr(LlamaMLP, "__init__", numbered)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    script = _script()
    row = script.train_run(tiny_folder, "llama-3.1-8b", batch=2, seq=16, steps=3, fsdp=False, checkpointing=True,
                           r=4, tiny=True, checkpoint_layers=1)
    assert row["fits"] and row["checkpoint_layers"] == 1 and calls == {0: 6, 1: 3}
    calls.clear()
    made = iter(range(100))
    row = script.train_run(tiny_folder, "llama-3.1-8b", batch=2, seq=16, steps=3, fsdp=False, checkpointing=True,
                           r=4, tiny=True)
    assert row["checkpoint_layers"] is None and calls == {0: 6, 1: 6}
