"""Where does the gpu profile's memory go? (issue 32)

    python benchmarks/memory_profile.py OUT [--steps 3] [NAME=VALUE ...]   # TrainConfig overrides

Records every CUDA allocation (`torch.cuda.memory._record_memory_history`) while the profile's trainer is built,
trains a few steps and runs one evaluation, then replays the allocation trace to find the moment of peak memory in
training and in evaluation, and lists what was alive then, grouped by the code that allocated it. Writes
OUT/memory_<tag>.json (the tables) and OUT/memory_<tag>.png (memory over time and the largest groups at each peak).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GIB = 2**30
# where an allocation comes from: the innermost frame outside torch's own modules names the code that asked for it
LIBRARIES = ("trl/", "transformers/", "peft/", "accelerate/", "liger_kernel/", "helpers/", "torch/optim/")


def phase_of(frames: list[dict]) -> str:
    names = {f["name"] for f in frames}
    if "evaluation_loop" in names or "prediction_step" in names:
        return "evaluation"
    if names & {"training_step", "compute_loss"}:
        return "training step"
    if "_inner_training_loop" in names:
        return "training loop (optimizer, scheduler)"
    return "setup (model, weights)"


def category_of(frames: list[dict], phase: str) -> str:
    """A coarse name for what a block holds, from its allocation stack."""
    files = " ".join(f["filename"] for f in frames)
    names = [f["name"] for f in frames]
    if not frames:  # allocated by a C++ thread: in a training step, autograd's engine running backward
        return "backward (autograd engine)" if phase == "training step" else f"other ({phase})"
    if "torch/optim/" in files:
        return "optimizer state (AdamW moments)"
    if phase == "setup (model, weights)":
        return "weights and adapters"
    if "backward" in names:
        return "backward (gradients)"
    if "compute_loss" in names and any(n in ("forward", "_fused_forward") for n in names):
        return "forward activations" if phase == "training step" else "evaluation forward"
    return f"other ({phase})"


def site_of(frames: list[dict]) -> str:
    """'library/file.py:function' of the innermost frame in a library of interest (frames are innermost first)."""
    for f in frames:
        name = f["filename"]
        for lib in LIBRARIES:
            at = name.rfind(lib)
            if at >= 0 and "torch/nn/" not in name:
                return f"{name[at:]}:{f['name']}:{f['line']}"
    return frames[0]["filename"].rsplit("/", 2)[-1] + ":" + frames[0]["name"] if frames else "(no Python frame)"


def replay(trace: list[dict]) -> dict:
    """Live bytes after every event; the live blocks at the highest point of each phase.

    Backward runs in autograd's C++ thread, so its allocations carry no Python frame: they belong to the phase of the
    last allocation that had one."""
    live: dict[int, tuple[int, list[dict], str]] = {}
    total = 0
    timeline = []
    peaks: dict[str, tuple[int, dict]] = {}
    phase = "setup (model, weights)"
    for event in trace:
        action = event["action"]
        if action == "alloc":
            frames = event.get("frames", [])
            if frames:
                phase = phase_of(frames)
            live[event["addr"]] = (event["size"], frames, phase)
            total += event["size"]
            if total > peaks.get(phase, (0, None))[0]:
                peaks[phase] = (total, dict(live))
        elif action == "free_requested" and event["addr"] in live:
            total -= live.pop(event["addr"])[0]
        else:
            continue
        timeline.append((total, phase))
    return {"timeline": timeline, "peaks": peaks}


def breakdown(blocks: dict, top: int = 12) -> dict:
    by_category: dict[str, int] = defaultdict(int)
    by_site: dict[str, int] = defaultdict(int)
    for size, frames, phase in blocks.values():
        by_category[category_of(frames, phase)] += size
        by_site[site_of(frames)] += size
    ordered = sorted(by_site.items(), key=lambda kv: -kv[1])
    return {"by_category_gib": {k: round(v / GIB, 3) for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
            "largest_sites_gib": {k: round(v / GIB, 3) for k, v in ordered[:top]},
            "rest_gib": round(sum(v for _, v in ordered[top:]) / GIB, 3)}


def plot(replayed: dict, tables: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    totals = [t / GIB for t, _ in replayed["timeline"]]
    axes[0].plot(totals, lw=0.6, color="C0")
    axes[0].set(xlabel="allocation event", ylabel="live tensors (GiB)", title=title)
    for ax, phase in zip(axes[1:], ("training step", "evaluation")):
        table = tables.get(phase)
        if not table:
            ax.set_axis_off()
            continue
        items = list(table["by_category_gib"].items())[::-1]
        ax.barh([k for k, _ in items], [v for _, v in items], color="C1" if phase == "evaluation" else "C0")
        ax.set(xlabel="GiB alive at the peak", title=f"at the {phase} peak ({table['peak_gib']:.1f} GiB)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_peaks(results: dict[str, dict], path: Path, phase: str = "training step", top: int = 8) -> None:
    """One panel per run: the code that allocated what was alive at the phase's peak (from the JSON files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 4.2), sharex=True, squeeze=False)
    for ax, (label, result) in zip(axes[0], results.items()):
        table = result["phases"][phase]
        sites = list(table["largest_sites_gib"].items())[:top]
        rest = table["peak_gib"] - sum(v for _, v in sites)
        names = [k.replace("transformers/", "").replace("models/llama/", "") for k, _ in sites] + ["everything else"]
        ax.barh(names[::-1], ([v for _, v in sites] + [rest])[::-1], color="C0")
        ax.set(xlabel="GiB alive at the peak", title=f"{label}: {table['peak_gib']:.1f} GiB")
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"What is alive at the {phase} peak, by the code that allocated it", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(out: Path, steps: int, pairs: list[str]) -> None:
    import torch

    from helpers.profiles import get_profile
    from helpers.training import config_for, make_trainer, parse_overrides

    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile("gpu")
    overrides = parse_overrides(pairs)
    base = config_for(profile, **overrides)
    config = replace(base, n_train=steps * base.batch_size, n_val=base.batch_size, max_steps=steps)
    torch.cuda.memory._record_memory_history(max_entries=3_000_000, stacks="python")
    trainer = make_trainer(profile, config, Path("/tmp/memory_profile"), evaluate=False, checkpoints=False)
    trainer.train()
    torch.cuda.synchronize()
    train_peak = torch.cuda.max_memory_allocated() / GIB
    torch.cuda.reset_peak_memory_stats()
    trainer.evaluate()
    torch.cuda.synchronize()
    eval_peak = torch.cuda.max_memory_allocated() / GIB
    snapshot = torch.cuda.memory._snapshot()
    torch.cuda.memory._record_memory_history(enabled=None)
    trace = snapshot["device_traces"][0]
    replayed = replay(trace)
    tables = {phase: {"peak_gib": round(total / GIB, 3), **breakdown(blocks)}
              for phase, (total, blocks) in replayed["peaks"].items()}
    tag = "_".join(pairs).replace("=", "-") or "profile"
    result = {"config_overrides": pairs, "batch_size": config.batch_size, "steps": steps,
              "torch_peak_training_gib": round(train_peak, 3), "torch_peak_evaluation_gib": round(eval_peak, 3),
              "events": len(trace), "phases": tables}
    (out / f"memory_{tag}.json").write_text(json.dumps(result, indent=2))
    plot(replayed, tables, out / f"memory_{tag}.png", f"gpu profile, batch {config.batch_size} ({tag})")
    print(json.dumps({k: v for k, v in result.items() if k != "phases"}))
    for phase, table in tables.items():
        print(f"\n{phase}: peak {table['peak_gib']:.2f} GiB")
        for k, v in table["by_category_gib"].items():
            print(f"  {v:7.2f}  {k}")
        for k, v in table["largest_sites_gib"].items():
            print(f"    {v:7.2f}  {k}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--plot":  # --plot OUT.png LABEL=RESULT.json ...: the peaks of runs side by side
        plot_peaks({label: json.loads(Path(file).read_text()) for label, file in (a.split("=", 1) for a in args[2:])},
                   Path(args[1]))
        sys.exit(0)
    steps = 3
    if "--steps" in args:
        i = args.index("--steps")
        steps = int(args[i + 1])
        del args[i:i + 2]
    main(Path(args[0]), steps, args[1:])
