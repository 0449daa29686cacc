import pytest
import torch
from torch import nn

from helpers.lora import (
    LoRALinear,
    apply_lora,
    count_lora_params,
    lora_params_for_shape,
    merge_lora,
    svd_energy,
    trainable_parameters,
)
from helpers.models import load_model_config


def _peft_pair(r=4, alpha=8, rslora=False):
    """A two-layer model wrapped by peft and by our LoRALinear, with identical weights."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = nn.Sequential()
    base.add_module("up", nn.Linear(16, 32))
    base.add_module("down", nn.Linear(32, 8))
    ours = nn.Sequential()
    ours.add_module("up", nn.Linear(16, 32))
    ours.add_module("down", nn.Linear(32, 8))
    ours.load_state_dict(base.state_dict())
    peft_model = get_peft_model(
        base, LoraConfig(r=r, lora_alpha=alpha, target_modules=["up", "down"], use_rslora=rslora)
    )
    apply_lora(ours, ["up", "down"], r=r, alpha=alpha, rslora=rslora)
    for name in ("up", "down"):
        theirs = peft_model.base_model.model.get_submodule(name)
        mine = ours.get_submodule(name)
        torch.nn.init.normal_(theirs.lora_B["default"].weight)  # non-zero B so the update matters
        mine.lora_A.data.copy_(theirs.lora_A["default"].weight.data)
        mine.lora_B.data.copy_(theirs.lora_B["default"].weight.data)
    return peft_model, ours


@pytest.mark.parametrize("rslora", [False, True])
def test_lora_linear_matches_peft(rslora):
    peft_model, ours = _peft_pair(rslora=rslora)
    x = torch.randn(5, 16)
    assert torch.allclose(peft_model(x), ours(x), atol=1e-6)
    assert trainable_parameters(ours)[0] == peft_model.get_nb_trainable_parameters()[0]
    expected_scaling = 8 / 2 if rslora else 8 / 4
    assert ours.up.scaling == expected_scaling


def test_merge_unmerge_round_trip_and_merge_and_unload():
    peft_model, ours = _peft_pair()
    x = torch.randn(5, 16)
    before = ours(x)
    weight = ours.up.base.weight.clone()
    ours.up.merge()
    ours.down.merge()
    assert torch.allclose(ours(x), before, atol=1e-5)
    ours.up.unmerge()
    assert torch.allclose(ours.up.base.weight, weight, atol=1e-6)
    merged_peft = peft_model.merge_and_unload()
    merged_ours = merge_lora(ours)
    assert isinstance(merged_ours.up, nn.Linear) and isinstance(merged_peft.up, nn.Linear)
    assert torch.allclose(merged_ours(x), merged_peft(x), atol=1e-5)


def test_initial_update_is_zero_and_base_frozen():
    layer = LoRALinear(nn.Linear(10, 6), r=2, alpha=4)
    x = torch.randn(3, 10)
    assert torch.equal(layer(x), layer.base(x))
    assert not layer.base.weight.requires_grad and layer.lora_A.requires_grad
    with pytest.raises(ValueError, match="at least 1"):
        LoRALinear(nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="No nn.Linear"):
        apply_lora(nn.Sequential(nn.ReLU()), ["q_proj"])


def test_square_matrix_counts():
    counts = {r: lora_params_for_shape(4096, 4096, r) for r in (1, 2, 4, 8, 16, 32, 64)}
    assert counts[1] == 8192 and counts[64] == 524_288
    assert counts[8] / (4096 * 4096) == pytest.approx(0.0039, abs=1e-4)


def test_llama_8b_counts():
    config = load_model_config("llama-3.1-8b")
    assert count_lora_params(config, 32, ["q_proj", "k_proj", "v_proj", "o_proj"]) == 27_262_976
    assert count_lora_params(config, 32, ["q_proj", "v_proj"]) == 13_631_488
    all_linear = count_lora_params(config, 32, "all-linear")
    assert all_linear == 83_886_080
    with pytest.raises(ValueError, match="No nn.Linear"):
        count_lora_params(config, 8, ["nope"])


def test_svd_energy_of_a_rank_two_matrix():
    torch.manual_seed(0)
    delta = torch.randn(50, 2) @ torch.randn(2, 40)
    energy = svd_energy(delta, [1, 2, 10])
    assert energy[1] < 1.0 and energy[2] == pytest.approx(1.0, abs=1e-6) and energy[10] == pytest.approx(1.0)
