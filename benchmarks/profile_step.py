"""Where does a training step of the gpu profile spend its time? (issue 19)

    python benchmarks/profile_step.py OUT [NAME=VALUE ...]   # TrainConfig overrides, e.g. quantization=bf16

Runs the profile's SFTTrainer for a few steps under torch.profiler and writes OUT/profile_<tag>.txt: the
operators by GPU time and by CPU time, and how much of each step's wall time the GPU was busy.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.speed import step_timer  # noqa: E402
from helpers.profiles import get_profile  # noqa: E402
from helpers.training import config_for, make_trainer, parse_overrides  # noqa: E402

WAIT, WARMUP, ACTIVE = 3, 2, 5


def main(out: Path, pairs: list[str]) -> None:
    profile = get_profile("gpu")
    overrides = parse_overrides(pairs)
    base = config_for(profile, **overrides)
    steps = WAIT + WARMUP + ACTIVE
    config = replace(base, n_train=steps * base.batch_size, n_val=base.batch_size, max_steps=steps)
    trainer = make_trainer(profile, config, Path("/tmp/profile_step"), evaluate=False, checkpoints=False)
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    schedule = torch.profiler.schedule(wait=WAIT, warmup=WARMUP, active=ACTIVE)
    with torch.profiler.profile(activities=activities, schedule=schedule) as prof:
        callback = step_timer(after_step=prof.step)
        trainer.add_callback(callback)
        trainer.train()
    events = prof.key_averages()
    # the ProfilerStep# annotations carry their steps' whole device time: leave them out of the kernel sum
    gpu_us = sum(e.self_device_time_total for e in events if not e.key.startswith("ProfilerStep")) / ACTIVE
    wall = sorted(callback.times[-ACTIVE:])[ACTIVE // 2]
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    tag = "_".join(pairs).replace("=", "-") or "profile"
    lines = [f"config overrides: {pairs or 'none'}; batch {config.batch_size}",
             f"median step wall {wall * 1000:.0f} ms; GPU busy (sum of kernel time) {gpu_us / 1000:.0f} ms per step "
             f"({gpu_us / 1e6 / wall:.0%}); kernel launches per step {launches / ACTIVE:,.0f}",
             "", "by GPU time:", events.table(sort_by="self_device_time_total", row_limit=25),
             "", "by CPU time:", events.table(sort_by="self_cpu_time_total", row_limit=25)]
    (out / f"profile_{tag}.txt").write_text("\n".join(lines))
    print("\n".join(lines[:2]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
