"""Profiles: one setting (WORKBOOK_PROFILE) picks model, data, sizes and every run's settings for every notebook.
Each profile is one literal below (what its settings mean is in helpers/config.py), so adding one is one edit, and
a name without a literal is an error that lists the profiles there are.

- smoke:   tiny sizes, seconds per notebook; what CI runs.
- default: offline CPU run with the embedded SmolLM2-135M and the shipped sample catalog.
- gpu:     the same model and data at full size on a CUDA GPU.
- course:  a hub model (Llama 3.1 8B by default) and the real Amazon metadata; needs network + GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from helpers.config import ALL_LINEAR, ChatSize, HeadConfig, LabSize, NotebookSizes, TrainConfig

ENV_VAR = "WORKBOOK_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Everything a profile decides, in one literal: model and data, split sizes, and the settings of every run the
    notebooks make (the training preset, the price head, the lab's sweeps, the chat fine-tune, the smaller knobs).
    Every field is required, so a profile added without one of them fails where it is written."""

    name: str
    description: str
    model_id: str | None  # None means the embedded SmolLM2-135M-Instruct
    dataset: str  # "sample" (shipped catalog) or "amazon" (Amazon Reviews 2023 metadata)
    n_train: int  # the training split's size (a run trains on `train.n_train` of it)
    n_val: int
    n_test: int
    eval_items: int  # test items an LLM is asked to price (generation is the slow part)
    ppl_tokens: int  # tokens of held-out text for perplexity measurements
    train: TrainConfig  # notebook 06's QLoRA run (and notebook 10's, with ChatSize's sizes)
    head: HeadConfig  # notebook 08's price head
    lab: LabSize  # notebook 09's sweeps
    chat: ChatSize  # notebook 10's instruction fine-tune
    notebook: NotebookSizes  # the knobs of notebooks 01, 02, 04 and 07
    requires_gpu: bool = False

    @property
    def uses_embedded_model(self) -> bool:
        return self.model_id is None


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="tiny sizes for CI: every notebook in seconds",
        model_id=None,
        dataset="sample",
        n_train=200,
        n_val=40,
        n_test=40,
        eval_items=8,
        ppl_tokens=256,
        train=TrainConfig(r=4, alpha=8, batch_size=4, n_train=16, n_val=8, max_steps=4, eval_steps=2, save_steps=2,
                          logging_steps=1),
        head=HeadConfig(r=4, alpha=8, batch_size=4, n_train=16, n_val=8, max_steps=4, eval_steps=2, save_steps=2,
                        logging_steps=1),
        lab=LabSize(n_train=4, n_val=2, words=8, batch_size=2, epochs_long=2, epochs_train=4, short=True),
        chat=ChatSize(source_items=60, n_train=16, n_val=8, per_task=2, words=12, max_steps=4),
        notebook=NotebookSizes(ptq_train_steps=300, qat_extra_steps=100, lora_steps=3, lora_ranks=(1, 8),
                               embed_train=200, decode_val_items=8, probe_train=16),
    ),
    "default": Profile(
        name="default",
        description="offline CPU run: embedded SmolLM2-135M, shipped sample catalog",
        model_id=None,
        dataset="sample",
        n_train=20_000,
        n_val=1_000,
        n_test=1_000,
        eval_items=250,
        ppl_tokens=4_096,
        # All linear layers at r=64 and lr 4e-4: on a GPU this cut the test MAE from $114 to $45 against q/k/v/o at
        # r=16 and 2e-4 (catalog v1, benchmarks/results/h100-2026-11-22). bf16 compute and no adapter dropout
        # trained 1.72x the tokens/s on 2 CPU cores at the same validation loss (benchmarks/results/speed-cpu-
        # 2026-11-23b), so a ~20-minute budget buys 1,600 examples; a CPU without AVX512-BF16 computes in fp32.
        train=TrainConfig(target_modules=ALL_LINEAR, r=64, alpha=128, learning_rate=4e-4, n_train=1600, n_val=80,
                          batch_size=8, eval_steps=40, save_steps=40, dropout=0.0, cpu_bf16=True),
        # The CPU budget of notebook 06 buys about one pass over 1,600 examples with a 4-bit base. The learning rate
        # was chosen on the 1,000 validation items with this recipe on a GPU (benchmarks/head_gpu.py sweep).
        head=HeadConfig(n_train=1_600, n_val=100, batch_size=8, epochs=1, eval_steps=50, save_steps=50),
        lab=LabSize(n_train=64, n_val=32, words=40, batch_size=8, epochs_long=16, epochs_train=8),
        chat=ChatSize(source_items=400, n_train=640, n_val=32, per_task=20, words=30),
        notebook=NotebookSizes(lora_steps=20, embed_train=4_000, decode_val_items=100, probe_train=400),
    ),
    "gpu": Profile(
        name="gpu",
        description="embedded model and sample catalog at full size on a CUDA GPU",
        model_id=None,
        dataset="sample",
        n_train=40_000,  # the shipped 20,000 + 20,000 generated past the shipped file from the same seed
        n_val=1_000,
        n_test=1_000,
        eval_items=1_000,
        ppl_tokens=16_384,
        # r=16 keeps the adapter small enough to ship; one pass over 40,000 examples. A 135M step is bound by the
        # CPU launching kernels, so batch 256 costs about what 64 did, at lr 1.6e-3 (linear scaling, chosen on
        # validation loss); the bf16 base fits (0.27 GB), so no 4-bit dequantisation; Liger's fused kernels where
        # installed (benchmarks/results/speed-h100-2026-11-23, fused-h200-2026-12-01). How it runs on a given GPU is
        # the run plan's (helpers/runplan.py): checkpointing on a smaller card, no wasted adapter input casts, no
        # cuDNN attention, batches collated beside the loop (cpu-side-h200-2026-12-02). Attention without the padding
        # mask (trl pads on the right): 2.5 GiB less at the same speed and validation loss over a whole run
        # (nomask-h200-2026-12-02).
        train=TrainConfig(target_modules=ALL_LINEAR, r=16, alpha=32, quantization="bf16", dropout=0.0,
                          learning_rate=1.6e-3, batch_size=256, epochs=1, eval_steps=25, save_steps=25,
                          optimizer="adamw_torch_fused", fused_kernels=None, padding_mask=False),
        # Two passes over 40,000 examples at batch 128 and lr 1e-3 (linear scaling from 5e-4 at batch 64)
        # (benchmarks/results/head-h200-2026-12-01; one run, not a sweep).
        head=HeadConfig(quantization="bf16", batch_size=128, learning_rate=1e-3, epochs=2, n_val=1_000, eval_steps=125,
                        save_steps=125, logging_steps=25),
        lab=LabSize(n_train=2048, n_val=256, words=120, batch_size=32, epochs_long=8, epochs_train=256),
        chat=ChatSize(source_items=5000, n_train=8000, n_val=256, per_task=250, words=60),
        notebook=NotebookSizes(),
        requires_gpu=True,
    ),
    "course": Profile(
        name="course",
        description="hub model and real Amazon product metadata (network, GPU, HF token)",
        model_id="meta-llama/Llama-3.1-8B",
        dataset="amazon",
        n_train=20_000,
        n_val=1_000,
        n_test=1_000,
        eval_items=1_000,
        ppl_tokens=16_384,
        # QLoRA r=32 on Llama 3.1 8B, seq 256, fp16 under a T4's 15 GiB: batch 16 with checkpointing peaked at
        # 11.6 GiB and trained ~10x the tokens/s of batch 1 x 16 accumulated (benchmarks/results/trainer-8b-
        # t4cap-h100-2026-11-23); decide_checkpointing turns checkpointing on wherever batch 16 would not fit.
        # With the frozen weights kept 16-bit on a GPU (the run plan) batch 16 peaks at 7.6 GiB and batch 32 fits
        # at 9.7 GiB (frozen-h200-2026-12-02); the batch stays 16, the one its learning rate was set for.
        train=TrainConfig(r=32, alpha=64, batch_size=16, grad_accum=1, epochs=1, eval_steps=200, save_steps=200,
                          learning_rate=1e-4),
        # A hub model in 4-bit (QLoRA), as in notebook 06's course settings.
        head=HeadConfig(r=32, alpha=64, batch_size=16, epochs=1, learning_rate=2e-4, n_val=500, eval_steps=200,
                        save_steps=200, gradient_checkpointing=True),
        lab=LabSize(),  # the default profile's lab sizes: 09's many runs on an 8B model stay short
        chat=ChatSize(source_items=5000, n_train=8000, n_val=256, per_task=250, words=60, dataset="guanaco"),
        notebook=NotebookSizes(),
        requires_gpu=True,
    ),
}


class ProfileError(ValueError):
    """A profile that does not exist, or one that cannot run on this machine."""


def profile_name() -> str:
    """The profile every entry point starts from: $WORKBOOK_PROFILE, else `default` (an empty value is unset).
    Notebooks and command-line tools read it here, so `WORKBOOK_PROFILE=smoke python -m helpers.X` means smoke."""
    return os.environ.get(ENV_VAR) or "default"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named here, else in $WORKBOOK_PROFILE, else `default`; keyword overrides win."""
    name = name or profile_name()
    if name not in PROFILES:
        raise ProfileError(f"Unknown profile {name!r}. Choose one of: {', '.join(PROFILES)} (set {ENV_VAR}).")
    profile = PROFILES[name]
    unknown = set(overrides) - set(Profile.__dataclass_fields__)
    if unknown:
        raise ProfileError(f"Unknown profile setting(s) {sorted(unknown)}; valid: {', '.join(Profile.__dataclass_fields__)}")
    profile = replace(profile, **overrides) if overrides else profile
    sizes = {k: getattr(profile, k) for k in ("n_train", "n_val", "n_test", "eval_items", "ppl_tokens")}
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1}
    if bad:
        raise ProfileError(f"Profile sizes must be whole numbers >= 1 (a negative size would overlap the splits): {bad}")
    return profile


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cuda" or "cpu"
    name: str
    compute_dtype: torch.dtype  # dtype for 4-bit compute and mixed precision
    bf16: bool
    fp16: bool
    total_memory_gib: float | None


def native_bf16(capability: tuple[int, int] | None = None) -> bool:
    """True where the GPU computes bf16 in hardware: compute capability 8.0 or newer (A100, L4, H100).

    torch also reports bf16 as supported on a T4 (7.5), where it is only emulated: slow, and bitsandbytes'
    4-bit kernels then compute in a dtype the card has no units for. So the decision reads the capability.
    """
    if capability is None:
        if not torch.cuda.is_available():
            return False
        capability = torch.cuda.get_device_capability(0)
    return tuple(capability) >= (8, 0)


def detect_device() -> DeviceInfo:
    """bf16 where the GPU has it natively (capability >= 8.0), fp16 with loss scaling on older GPUs such as
    the T4, fp32 on CPU."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        bf16 = native_bf16((props.major, props.minor))
        return DeviceInfo(
            device="cuda",
            name=props.name,
            compute_dtype=torch.bfloat16 if bf16 else torch.float16,
            bf16=bf16,
            fp16=not bf16,
            total_memory_gib=props.total_memory / 2**30,
        )
    import platform

    return DeviceInfo(
        device="cpu",
        name=platform.processor() or platform.machine(),
        compute_dtype=torch.float32,
        bf16=False,
        fp16=False,
        total_memory_gib=None,
    )


def check_device(profile: Profile, device: DeviceInfo | None = None) -> DeviceInfo:
    """Fail early, with what to do, when a GPU-only profile meets a machine without a GPU."""
    device = device or detect_device()
    if profile.requires_gpu and device.device != "cuda":
        raise ProfileError(
            f"Profile {profile.name!r} needs a CUDA GPU and none was found. "
            "On Colab: Runtime > Change runtime type > GPU. Locally, use WORKBOOK_PROFILE=default (CPU)."
        )
    return device


def environment_report(profile: Profile | None = None) -> dict[str, str]:
    """Versions, device, profile and free memory: the first thing to paste into a bug report."""
    import importlib.metadata as metadata
    import platform

    import psutil

    profile = profile or get_profile()
    device = detect_device()
    report = {"python": platform.python_version()}
    for package in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets"):
        try:
            report[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            report[package] = "not installed"
    memory = psutil.virtual_memory()
    report.update(
        {
            "profile": f"{profile.name} ({profile.description})",
            "model": profile.model_id or "embedded SmolLM2-135M-Instruct",
            "device": f"{device.device} ({device.name})",
            "compute dtype": str(device.compute_dtype).replace("torch.", ""),
            "cpu cores": str(os.cpu_count()),
            "free memory": f"{memory.available / 2**30:.1f} GiB of {memory.total / 2**30:.1f} GiB",
        }
    )
    if device.device == "cuda":
        free, total = torch.cuda.mem_get_info()
        report["free GPU memory"] = f"{free / 2**30:.1f} GiB of {total / 2**30:.1f} GiB"
    return report
