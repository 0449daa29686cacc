import pytest
import torch

from helpers.profiles import PROFILES, DeviceInfo, ProfileError, check_device, detect_device, get_profile


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PROFILE", "default")
    assert get_profile().name == "default"
    assert get_profile("smoke").name == "smoke"  # an explicit name beats the environment
    monkeypatch.delenv("WORKBOOK_PROFILE")
    assert get_profile().name == "default"


def test_unknown_profile_names_the_choices():
    with pytest.raises(ProfileError, match="smoke, default, gpu, course"):
        get_profile("huge")


def test_overrides_and_sizes_grow_with_profile():
    assert get_profile("smoke", n_test=3).n_test == 3
    assert PROFILES["smoke"].n_train < PROFILES["default"].n_train
    assert PROFILES["default"].uses_embedded_model and not PROFILES["course"].uses_embedded_model


def test_gpu_profile_without_gpu_says_what_to_do():
    cpu = DeviceInfo("cpu", "x86_64", torch.float32, False, False, None)
    with pytest.raises(ProfileError, match="needs a CUDA GPU"):
        check_device(PROFILES["gpu"], cpu)
    assert check_device(PROFILES["default"], cpu) is cpu


def test_detect_device_picks_a_compute_dtype():
    info = detect_device()
    if info.device == "cpu":
        assert info.compute_dtype == torch.float32 and not info.bf16
    else:
        assert info.compute_dtype in (torch.bfloat16, torch.float16) and info.bf16 != info.fp16


@pytest.mark.parametrize("name, capability, bf16", [("Tesla T4", (7, 5), False), ("Tesla V100", (7, 0), False),
                                                     ("NVIDIA A100", (8, 0), True), ("NVIDIA L4", (8, 9), True),
                                                     ("NVIDIA H100", (9, 0), True)])
def test_dtype_follows_compute_capability_not_is_bf16_supported(monkeypatch, name, capability, bf16):
    import types

    import torch

    from helpers.profiles import detect_device

    props = types.SimpleNamespace(name=name, major=capability[0], minor=capability[1], total_memory=16 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 reports (emulated)
    info = detect_device()
    assert info.bf16 is bf16 and info.fp16 is (not bf16)
    assert info.compute_dtype == (torch.bfloat16 if bf16 else torch.float16)


def test_a_bf16_base_loads_in_fp16_on_a_gpu_without_native_bf16(monkeypatch, embedded_dir):
    """On a T4 (capability 7.5) quantization='bf16' would be emulated: the loader switches the base to fp16.
    The GPU is faked up to the point where the model would move to it."""
    import torch

    import helpers.models as models

    seen = {}

    class Stop(Exception):
        pass

    def fake_from_pretrained(source, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 5))
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    with pytest.raises(Stop):
        models.load_base_model(quantization="bf16")
    assert seen["dtype"] == torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (8, 9))  # an L4: bf16 stays
    with pytest.raises(Stop):
        models.load_base_model(quantization="bf16")
    assert seen["dtype"] == torch.bfloat16
