"""The data-parallel path on CPU: two processes over gloo, started by torchrun (what accelerate uses on GPUs)."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers.distributed import ACCELERATE_CONFIGS, _row_key, launch_command
from helpers.paths import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launch_commands_name_a_config_that_exists():
    for n, name in ((1, "1gpu.yaml"), (2, "2gpu.yaml"), (8, "multi_gpu.yaml")):
        command = launch_command(n, profile="gpu")
        assert f"configs/accelerate/{name}" in command and f"--num_processes {n}" in command
        assert (ACCELERATE_CONFIGS / name).is_file()
    assert launch_command(2, profile="smoke", cpu=True).startswith("torchrun --nproc_per_node 2 -m helpers.training")
    with pytest.raises(ValueError):
        launch_command(0)


def test_row_key_ignores_trailing_padding():
    assert _row_key(torch.tensor([5, 6, 2, 2]), pad_id=2) == _row_key([5, 6], pad_id=2) != _row_key([6, 5], pad_id=2)


def test_two_cpu_processes_train_different_shards_and_save_what_rank0_holds(tmp_path, embedded_dir):
    from helpers.data import load_splits
    from helpers.profiles import get_profile

    load_splits(get_profile("smoke"))  # build the cached splits once, before two processes want them
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()), "-m", "helpers.training", "--profile", "smoke",
               "--output-dir", str(out), "--record-shards", "--set", "n_train=8", "--set", "batch_size=2",
               "--set", "max_steps=2", "--set", "eval_steps=2", "--set", "save_steps=2", "--set", "n_val=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    seen = [json.loads((out / "shards" / f"rank{r}_seen.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 4  # 2 steps x 2 examples on each process
    assert not set(seen[0]) & set(seen[1])  # different shards
    assert len(set(seen[0]) | set(seen[1])) == 8  # together: the 8 training examples, each once

    saved = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    ranks = [load_file(str(out / "shards" / f"rank{r}_adapter.safetensors")) for r in (0, 1)]
    assert len(saved) == len(ranks[0]) > 0
    for key, value in ranks[0].items():
        assert torch.equal(saved[key.replace(".default", "")], value)  # the file is rank 0's adapter
        assert torch.equal(ranks[1][key], value)  # and DDP kept both copies identical
    info = json.loads((out / "adapter" / "workbook_training.json").read_text())
    assert info["processes"] == 2 and info["n_train"] == 8
