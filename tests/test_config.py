"""helpers.config: a run's settings, their help in field metadata, one preset per profile, checked early."""

import dataclasses

import pytest

from helpers.config import (
    ChatSize,
    ConfigError,
    HeadConfig,
    LabSize,
    NotebookSizes,
    TrainConfig,
    config_for,
    describe,
    help_field,
)
from helpers.profiles import PROFILES, Profile, ProfileError, get_profile


def test_every_setting_says_what_it_does_from_its_metadata():
    rows = describe(TrainConfig())
    assert [name for name, _, _ in rows] == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(text for _, _, text in rows), [name for name, _, text in rows if not text]
    assert dict((n, t) for n, _, t in rows)["r"] == "LoRA rank: size of the low-rank update"

    @dataclasses.dataclass(frozen=True)
    class Other:
        depth: int = help_field("how deep", 3)
        plain: int = 1  # a field without help describes as ""

    assert describe(Other()) == [("depth", 3, "how deep"), ("plain", 1, "")]


def test_a_profile_is_one_literal_with_every_setting_and_an_unknown_one_is_refused():
    kinds = {"train": TrainConfig, "head": HeadConfig, "lab": LabSize, "chat": ChatSize, "notebook": NotebookSizes}
    for profile in PROFILES.values():
        assert {name: type(getattr(profile, name)) for name in kinds} == kinds, profile.name
    # a profile written without its settings fails where it is written, naming what is missing
    sizes = dict(name="t4", description="", model_id=None, dataset="sample", n_train=10, n_val=2, n_test=2,
                 eval_items=2, ppl_tokens=16)
    with pytest.raises(TypeError, match="train.*head.*lab.*chat.*notebook"):
        Profile(**sizes)
    with pytest.raises(ProfileError, match="Unknown profile 't4'"):
        get_profile("t4")
    # a new profile is one edit: its literal carries its training preset, and config_for reads it from there
    t4 = Profile(**sizes, train=TrainConfig(batch_size=4), head=HeadConfig(), lab=LabSize(), chat=ChatSize(),
                 notebook=NotebookSizes())
    assert config_for(t4).batch_size == 4 and config_for(t4, batch_size=2).batch_size == 2
    assert config_for(get_profile("default")) is PROFILES["default"].train
    assert config_for(get_profile("default"), r=8).r == 8
    with pytest.raises(ConfigError, match="r=0: must be an integer >= 1"):
        config_for(get_profile("default"), r=0)


def test_the_config_module_loads_no_model_library():
    """A config can be built and checked anywhere: importing helpers.config pulls in neither transformers nor peft."""
    import subprocess
    import sys

    code = ("import sys, helpers.config; "
            "print(sorted(m for m in ('transformers', 'peft', 'trl', 'bitsandbytes') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_launcher_environment_is_read_in_one_place(monkeypatch):
    """helpers.distributed reads RANK / LOCAL_RANK / WORLD_SIZE; the training modules ask it instead of os.environ."""
    from pathlib import Path

    from helpers import distributed

    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert (distributed.rank(), distributed.local_rank(), distributed.world_size(), distributed.is_main_process()) == \
        (0, 0, 1, True)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (distributed.rank(), distributed.local_rank(), distributed.world_size(), distributed.is_main_process()) == \
        (3, 1, 4, False)
    helpers = Path(distributed.__file__).parent
    readers = [p.name for p in helpers.glob("*.py") if p.name != "distributed.py"
               and any(f'"{v}"' in p.read_text() or f"'{v}'" in p.read_text() for v in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))]
    assert readers == [], f"these modules read the launcher's environment themselves: {readers}"
