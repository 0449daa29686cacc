"""The library objects a learner copies from notebooks 06 and 08 (BitsAndBytesConfig, LoraConfig, SFTConfig /
TrainingArguments) are what the helpers build for the same profile: the notebook's own cells are executed here
for every profile that can run on this machine, without loading a model, and compared field by field."""

import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers.profiles import DeviceInfo, get_profile

ROOT = Path(__file__).resolve().parents[1]
CPU = DeviceInfo("cpu", "x86_64", torch.float32, False, False, None)
H100 = DeviceInfo("cuda", "H100", torch.bfloat16, True, False, 80.0)
T4 = DeviceInfo("cuda", "T4", torch.float16, False, True, 15.0)


def _cells(notebook: str, ids: list[str]) -> list[str]:
    cells = {c.get("id"): "".join(c["source"]) for c in json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]}
    missing = [i for i in ids if i not in cells]
    assert not missing, f"{notebook} has no cells {missing}: the API cells were renamed"
    return [cells[i] for i in ids]


def _run(sources: list[str], namespace: dict) -> dict:
    for source in sources:
        exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace


def _model_stub(profile):
    from transformers import AutoConfig

    from helpers.models import embedded_model_dir, load_model_config

    config = (AutoConfig.from_pretrained(str(embedded_model_dir())) if profile.uses_embedded_model
              else load_model_config("llama-3.1-8b"))
    return SimpleNamespace(config=config)


@pytest.mark.parametrize("name,device", [("smoke", CPU), ("default", CPU), ("gpu", H100), ("course", T4)])
def test_notebook_06_objects_equal_the_helpers(name, device, tmp_path, monkeypatch, embedded_dir):
    from helpers.runplan import plan
    from helpers.training import compute_dtype_for, config_for, object_differences, workbook_objects

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path))
    profile = get_profile(name)
    config = config_for(profile)
    namespace = {"profile": profile, "device": device, "config": config, "model": _model_stub(profile),
                 "dtype": compute_dtype_for(config, device), "run_plan": plan(profile, config, device=device)}
    # an SFTConfig for a GPU cannot be built on a machine without one: on CPU profiles the settings cell runs too
    ids = ["api-bnb", "api-lora"] + (["api-sft"] if device.device == "cpu" else [])
    _run(_cells("06_qlora_training.ipynb", ids), namespace)
    expected = workbook_objects(config, device, namespace.get("output_dir", tmp_path), namespace["checkpointing"],
                                sft="api-sft" in ids)
    mine = {k: namespace[k] for k in ("bnb_config", "lora_config", "sft_config") if k in namespace}
    assert len(mine) == len(ids) and object_differences(mine, {k: expected[k] for k in mine}) == []


def _as_a_gpu_machine(monkeypatch, module, name: str):
    """A GPU machine with cores to spare and Liger installed (the plan then collates in workers and fuses kernels),
    and `module.name` (trl's SFTConfig, transformers' TrainingArguments: neither can be built for a GPU here)
    replaced by a recorder of its arguments with the same fields. Returns the real class."""
    import helpers.runplan as runplan

    monkeypatch.setattr(runplan, "fused_kernels_problem", lambda cuda: None)
    monkeypatch.setattr(runplan.os, "cpu_count", lambda: 16)
    real = getattr(module, name)
    module = sys.modules[module.__name__]  # resolving a lazy name can put another module object there

    class Recorder:
        __dataclass_fields__ = real.__dataclass_fields__

        def __init__(self, **kwargs):
            self.kwargs = kwargs

    monkeypatch.setattr(module, name, Recorder)
    return real


def _differences(mine: dict, theirs: dict, real, tmp_path) -> dict:
    """Every argument the helpers pass that the notebook's config does not get, as given or as the class's default
    (resolved by its __post_init__): name -> (notebook's, helpers')."""
    import dataclasses

    plain = real(output_dir=str(tmp_path), use_cpu=True)
    defaults = {f.name: getattr(plain, f.name) for f in dataclasses.fields(real)}
    return {k: (mine.get(k, defaults.get(k)), v) for k, v in theirs.items() if mine.get(k, defaults.get(k)) != v}


@pytest.mark.parametrize("name,device", [("gpu", H100), ("course", T4)])
def test_notebook_06_sft_settings_equal_the_helpers_on_a_gpu(name, device, tmp_path, monkeypatch, embedded_dir):
    """The SFTConfig arguments of notebook 06's settings cell and of the helpers, on a GPU machine (compared as
    arguments: an SFTConfig for a GPU cannot be built here)."""
    import trl

    from helpers.runplan import plan
    from helpers.training import _sft_config, compute_dtype_for, config_for

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path))
    real = _as_a_gpu_machine(monkeypatch, trl, "SFTConfig")
    profile = get_profile(name)
    config = config_for(profile)
    run_plan = plan(profile, config, device=device)
    namespace = {"profile": profile, "device": device, "config": config, "model": _model_stub(profile),
                 "dtype": compute_dtype_for(config, device), "run_plan": run_plan}
    _run(_cells("06_qlora_training.ipynb", ["api-bnb", "api-lora", "api-sft"]), namespace)
    mine = namespace["sft_config"].kwargs
    theirs = _sft_config(config, Path(mine["output_dir"]), replace(run_plan, checkpointing=namespace["checkpointing"])).kwargs
    assert theirs["dataloader_num_workers"] == 2 and theirs["use_liger_kernel"] == run_plan.fused_kernels
    assert _differences(mine, theirs, real, tmp_path) == {}


@pytest.mark.parametrize("name,device", [("gpu", H100), ("course", T4)])
def test_notebook_08_training_arguments_equal_the_helpers_on_a_gpu(name, device, tmp_path, monkeypatch, embedded_dir):
    """The same for notebook 08's TrainingArguments."""
    import transformers

    from helpers.paths import outputs_dir
    from helpers.price_head import config_for, training_arguments
    from helpers.runplan import decide

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path))
    real = _as_a_gpu_machine(monkeypatch, transformers, "TrainingArguments")
    profile = get_profile(name)
    config = config_for(profile)
    namespace = {"profile": profile, "device": device, "config": config, "cuda": True, "torch": torch,
                 "outputs_dir": outputs_dir, "dtype": device.compute_dtype}
    _run(_cells("08_price_head.ipynb", ["head-bnb", "head-lora", "head-args"]), namespace)
    mine = namespace["args"].kwargs
    theirs = training_arguments(config, mine["output_dir"], decide(config, device)).kwargs
    assert theirs["dataloader_num_workers"] == 2
    assert _differences(mine, theirs, real, tmp_path) == {}


def test_a_changed_setting_is_reported(tmp_path):
    from dataclasses import replace

    from helpers.training import config_for, object_differences, workbook_objects

    config = config_for(get_profile("default"))
    a = workbook_objects(config, CPU, tmp_path)
    b = workbook_objects(replace(config, r=8, learning_rate=1e-3), CPU, tmp_path)
    found = object_differences(a, b)
    assert "lora_config.r: 64 != 8" in found and any(f.startswith("sft_config.learning_rate") for f in found)
    assert object_differences({"bnb_config": None}, {"bnb_config": a["bnb_config"]}) == ["bnb_config: missing != BitsAndBytesConfig"]


@pytest.mark.parametrize("name,device", [("smoke", CPU), ("default", CPU), ("gpu", H100), ("course", T4)])
def test_notebook_08_objects_equal_the_helpers(name, device, tmp_path, monkeypatch, embedded_dir):
    from helpers.price_head import compute_dtype, config_for, workbook_objects
    from helpers.training import object_differences

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path))
    profile = get_profile(name)
    config = config_for(profile)
    cuda = device.device == "cuda"
    namespace = {"profile": profile, "device": device, "config": config, "cuda": cuda, "torch": torch,
                 "outputs_dir": __import__("helpers.paths", fromlist=["outputs_dir"]).outputs_dir,
                 "dtype": device.compute_dtype if cuda else compute_dtype(config, False)}
    ids = ["head-bnb", "head-lora"] + ([] if cuda else ["head-args"])
    _run(_cells("08_price_head.ipynb", ids), namespace)
    expected = workbook_objects(config, device, namespace.get("output_dir", tmp_path), arguments=not cuda)
    mine = {k: namespace[k] for k in ("bnb_config", "lora_config") if k in namespace}
    if not cuda:
        mine["training_args"] = namespace["args"]
    assert len(mine) == len(ids) and object_differences(mine, expected) == []
