"""Data-parallel training with accelerate: the same entry point on 1, 2 or N processes.

`accelerate launch --num_processes N -m helpers.training ...` starts N copies of the training script.
Each process loads the 4-bit base on its own device (`device_map={"": local_rank}`), the Trainer wraps the
model in DistributedDataParallel, every process trains on its own shard of each batch, and the LoRA
gradients are averaged across processes before every optimizer step, so all copies stay identical.
On CPU the processes talk over gloo, which is how CI tests this path without a GPU. (`accelerate launch`
hands CPU-only multi-process runs to mpirun, which few machines have, so on CPU we start the processes with
torchrun, the launcher `accelerate launch` itself uses for GPUs.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

from helpers.paths import REPO_ROOT

ACCELERATE_CONFIGS = REPO_ROOT / "configs" / "accelerate"


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    return rank() == 0


def launch_command(num_processes: int = 2, profile: str = "gpu", cpu: bool = False, extra: str = "") -> str:
    """The exact command that trains `profile` on `num_processes` GPUs (or CPU processes)."""
    if num_processes < 1:
        raise ValueError("num_processes must be at least 1")
    if cpu:
        parts = ["torchrun", "--nproc_per_node", str(num_processes), "-m", "helpers.training", "--profile", profile]
    else:
        config = ACCELERATE_CONFIGS / {1: "1gpu.yaml", 2: "2gpu.yaml"}.get(num_processes, "multi_gpu.yaml")
        parts = ["accelerate", "launch", "--config_file", str(config.relative_to(REPO_ROOT)),
                 "--num_processes", str(num_processes), "-m", "helpers.training", "--profile", profile]
    return " ".join(shlex.quote(p) for p in parts) + (f" {extra}" if extra else "")


def _row_key(ids, pad_id: int | None) -> str:
    values = [int(v) for v in ids]
    while values and pad_id is not None and values[-1] == pad_id:
        values.pop()
    return hashlib.sha1(json.dumps(values).encode()).hexdigest()[:16]


def shard_recorder(output_dir: Path, pad_id: int | None):
    """A TrainerCallback that writes which examples this process trained on, and its adapter at the end.

    Used by the distributed test: the ranks must see different examples, and the adapter the Trainer saves
    must equal what each rank holds in memory (DDP keeps the copies identical).
    """
    from transformers import TrainerCallback

    class ShardRecorder(TrainerCallback):
        def __init__(self):
            self.seen: list[str] = []
            self.handle = None

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            def hook(module, inputs):
                if module.training and inputs and inputs[0] is not None:
                    self.seen += [_row_key(row, pad_id) for row in inputs[0]]

            embeddings = model.get_input_embeddings()
            self.handle = embeddings.register_forward_pre_hook(hook)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            from safetensors.torch import save_file

            self.handle.remove()
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / f"rank{rank()}_seen.json").write_text(json.dumps(self.seen))
            lora = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if "lora_" in k}
            save_file(lora, str(output_dir / f"rank{rank()}_adapter.safetensors"))

    return ShardRecorder()
