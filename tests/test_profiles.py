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
