"""A trained adapter after training: load it on its base, merge it into the base, score it on the test split,
upload it, and ship it in the repository (bf16 weights + the typed provenance of helpers.provenance).

Training writes the adapter (helpers.training.fit_adapter, helpers.price_head.fit); everything that happens to it
afterwards is here, so notebook 07, the price head and the GPU scripts share one copy.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch

from helpers.paths import REPO_ROOT, shown
from helpers.profiles import Profile
from helpers.provenance import TRAINING_FILE
from helpers.provenance import from_dict as provenance_from_dict
from helpers.provenance import read as read_provenance

SHIPPED_ADAPTER = REPO_ROOT / "adapters" / "smollm2-135m-price-gpu"  # trained at gpu-profile scale (notebook 07)


def load_adapter(profile: Profile, adapter_dir: str | os.PathLike, quantization: str | None = None,
                 same_kernels_as_training: bool = True, compute_dtype: torch.dtype | None = None):
    """Base model (4-bit by default) + a saved adapter, ready for inference.

    same_kernels_as_training keeps bitsandbytes' CPU bf16 inference repack off, so the reloaded model
    computes exactly as it did during training (the repacked path rounds through bf16: logits move by
    up to ~0.7 on SmolLM2, enough to change a greedy digit now and then).
    """
    from peft import PeftModel

    from helpers.models import check_adapter_files, guard_bnb_cpu_training, load_base_model

    quantization = quantization or read_provenance(check_adapter_files(adapter_dir)).config["quantization"]
    loaded = load_base_model(profile.model_id, quantization=quantization, compute_dtype=compute_dtype)
    if same_kernels_as_training and quantization in ("nf4", "nf4-dq", "fp4"):
        guard_bnb_cpu_training(loaded.model)
    model = PeftModel.from_pretrained(loaded.model, str(adapter_dir)).eval()
    return model, loaded.tokenizer


def merge_adapter(profile: Profile, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Fold the LoRA update into a 16/32-bit copy of the base (W + (alpha/r)·BA) and save a plain model.

    A 4-bit base cannot hold the merged weights exactly, so deployment merges into the unquantized base:
    bf16 on a GPU, fp32 on CPU. The result loads with AutoModelForCausalLM alone, no peft needed.
    """
    from peft import PeftModel

    from helpers.models import load_base_model

    loaded = load_base_model(profile.model_id, quantization="bf16" if torch.cuda.is_available() else "fp32")
    merged = PeftModel.from_pretrained(loaded.model, str(adapter_dir)).merge_and_unload()
    out_dir = Path(out_dir)
    merged.save_pretrained(str(out_dir))
    loaded.tokenizer.save_pretrained(str(out_dir))
    return out_dir


def evaluate_adapter(profile: Profile, adapter_dir: str | os.PathLike, n_items: int | None = None,
                     batch_size: int | None = None, results_file: Path | None = None, record: bool = True,
                     label: str = "QLoRA") -> list:
    """Score base + adapter on the test split three ways (greedy, expected price, median price); record them."""
    from helpers.data import load_splits
    from helpers.evaluation import record_result, train_median
    from helpers.inference import score_decodings

    data, _ = load_splits(profile)
    test = data["test"].select(range(min(n_items or profile.eval_items, len(data["test"]))))
    model, tokenizer = load_adapter(profile, adapter_dir)
    short = (profile.model_id or "SmolLM2-135M-Instruct").split("/")[-1]
    scored = score_decodings(model, tokenizer, test, fallback=train_median(data), label=f"{short} + {label}",
                             profile=profile.name, split="test", dataset=profile.dataset,
                             batch_size=batch_size or (64 if torch.cuda.is_available() else 8))
    results = [scored["greedy"], scored["expected price"], scored["median price"]]
    if record:
        for result in results:
            record_result(result, results_file)
    return results


def push_adapter(adapter_dir: str | os.PathLike, repo_id: str, private: bool = True, token: str | None = None) -> str:
    """Upload a saved adapter folder (weights, config, provenance; never the base model) to the Hugging Face hub.

    Off unless called. The token comes from `hf auth login`, Colab's HF_TOKEN secret or `token`; it is never
    printed. Returns the repository's URL."""
    from huggingface_hub import HfApi

    folder = Path(adapter_dir)
    if not (folder / "adapter_model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} holds no adapter_model.safetensors: pass the adapter folder that training "
                                "saved (outputs/<profile>/training/adapter)")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                      commit_message="adapter from the fine-tuning workbook",
                      allow_patterns=["adapter_*", TRAINING_FILE, "README.md", "tokenizer*",
                                      "special_tokens_map.json", "chat_template.jinja"])
    return str(url)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship_adapter(adapter_dir: str | Path, out_dir: str | Path = SHIPPED_ADAPTER, extra: dict | None = None,
                 provenance: str = TRAINING_FILE) -> Path:
    """Copy a trained adapter as bf16 safetensors plus its config and provenance (no tokenizer, no base).

    bf16 halves the fp32 training copy; LoRA weights lose nothing that shows at 4-bit inference (the
    recorded MAE is measured on the bf16 copy itself).
    """
    from safetensors.torch import load_file, save_file

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()},
              str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None  # the training machine's path means nothing elsewhere
    (out_dir / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    info = read_provenance(adapter_dir / provenance)
    info.with_fields(**{"commit": git_commit(), "weights_dtype": "bfloat16", **(extra or {})}).write(out_dir / provenance)
    return out_dir


def shipped_provenance(adapter_dir: str | Path = SHIPPED_ADAPTER) -> dict:
    """The shipped adapter's provenance, or a clear error saying what is missing."""
    path = Path(adapter_dir) / TRAINING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No shipped adapter at {adapter_dir}: the repository should contain it "
                                "(git checkout -- adapters/); it is trained with `bash benchmarks/gpu_run.sh ladder`.")
    values = json.loads(path.read_text())
    provenance_from_dict(values, str(shown(path)))
    return values  # checked against Provenance, returned as written
