"""Profiles: one setting (WORKBOOK_PROFILE) picks model, data and sizes for every notebook.

- smoke:   tiny sizes, seconds per notebook; what CI runs.
- default: offline CPU run with the embedded SmolLM2-135M and the shipped sample catalog.
- gpu:     the same model and data at full size on a CUDA GPU.
- course:  a hub model (Llama 3.1 8B by default) and the real Amazon metadata; needs network + GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

ENV_VAR = "WORKBOOK_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model_id: str | None  # None means the embedded SmolLM2-135M-Instruct
    dataset: str  # "sample" (shipped catalog) or "amazon" (Amazon Reviews 2023 metadata)
    n_train: int
    n_val: int
    n_test: int
    eval_items: int  # test items an LLM is asked to price (generation is the slow part)
    ppl_tokens: int  # tokens of held-out text for perplexity measurements
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
