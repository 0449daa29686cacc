"""Small hyperparameter sweeps with the workbook's own trainer, sized per profile (notebook 09).

Every run is a real QLoRA run through `helpers.training.make_trainer` (SFTTrainer, completion-only loss),
on short price prompts so that a CPU can afford a dozen of them. Each run records its validation-loss
curve, time, tokens/s and trainable parameters; a sweep's results go to outputs/<profile>/sweeps.json so
a later run (or a GPU run) can be compared.

    python -m helpers.sweeps --profile gpu [--only rank lr]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from helpers.lora import ATTENTION
from helpers.paths import REPO_ROOT, outputs_dir
from helpers.profiles import Profile, get_profile, profile_name
from helpers.training import ALL_LINEAR, TrainConfig

EPOCHS_LR = 2e-3  # the epochs sweep's learning rate (see sweeps())

def base_config(profile: Profile) -> TrainConfig:
    """The reference run every sweep varies one setting of: r=16, alpha=2r, q/k/v/o, dropout 0.1, lr 4e-4."""
    size = profile.lab
    steps_per_epoch = max(1, size.n_train // size.batch_size)
    return TrainConfig(target_modules=ATTENTION, r=16, alpha=32, dropout=0.1, learning_rate=4e-4, epochs=1,
                       batch_size=size.batch_size, n_train=size.n_train, n_val=size.n_val, max_steps=-1,
                       eval_steps=steps_per_epoch, save_steps=steps_per_epoch, logging_steps=1,
                       gradient_checkpointing=False)


def sweeps(profile: Profile) -> dict[str, list[tuple[str, TrainConfig]]]:
    """Sweep name -> [(label, config)] for a profile (sizes: `Profile.lab`); a short lab (smoke) keeps two points per sweep."""
    base = base_config(profile)
    size = profile.lab
    ranks = (4, 16) if size.short else (4, 16, 64)
    out = {
        "rank (alpha = 2r)": [(f"r={r}", replace(base, r=r, alpha=2 * r)) for r in ranks],
        "rank (alpha = 32)": [(f"r={r}", replace(base, r=r, alpha=32)) for r in ranks],
        "learning rate": [(f"{lr:g}", replace(base, learning_rate=lr))
                          for lr in ((1e-4, 1e-3) if size.short else (1e-4, 4e-4, 1e-3, 3e-3))],
        "target modules": [("attention (q,k,v,o)", base), ("all linear", replace(base, target_modules=ALL_LINEAR))],
        "dropout": [(f"{d:g}", replace(base, dropout=d)) for d in ((0.0, 0.3) if size.short else (0.0, 0.1, 0.3))],
        "batch x accumulation": [
            (f"{b} x {size.batch_size // b}", replace(base, batch_size=b, grad_accum=size.batch_size // b,
                                                      eval_steps=base.eval_steps, save_steps=base.save_steps))
            for b in ((size.batch_size, size.batch_size // 2) if size.short
                      else (size.batch_size, size.batch_size // 2, size.batch_size // 4))],
    }
    half = max(1, size.epochs_train // size.batch_size // 2)
    # at the reference 4e-4, 10 epochs of 16 examples still improved the validation loss at every step
    # (3.09 -> 1.05, default profile), and at 2e-3 16 examples only wobbled (best 1.013 at epoch 5, 1.026 at
    # 8): memorising needs more updates than a CPU budget allows, so this run uses a high learning rate and
    # 8 examples. Validation runs every half epoch, or every step when an epoch is a single step
    out["epochs"] = [(f"{size.epochs_long} epochs of {size.epochs_train} examples, lr {EPOCHS_LR:g}",
                      replace(base, epochs=size.epochs_long, n_train=size.epochs_train, eval_steps=half,
                              save_steps=half, learning_rate=EPOCHS_LR))]
    return out


@dataclass
class SweepRun:
    sweep: str
    label: str
    config: dict
    val_curve: list[tuple[float, float]]  # (epoch, validation loss), first point before any training
    final_val_loss: float
    best_val_loss: float
    best_epoch: float
    seconds: float
    train_tokens: int
    tokens_per_s: float
    trainable: int
    estimated_activation_gib: float | None = None  # planner estimate for the micro-batch (CPU has no peak counter)
    peak_memory_gb: float | None = None
    extra: dict = field(default_factory=dict)


def lab_data(profile: Profile, words: int | None = None):
    """The profile's splits with prompts rebuilt from the first `words` words of each description."""
    from datasets import DatasetDict

    from helpers.curation import make_prompt
    from helpers.data import load_splits

    words = words or profile.lab.words
    data, _ = load_splits(profile)
    shorten = lambda row: {"prompt": make_prompt(" ".join(row["text"].split()[:words]))}  # noqa: E731
    return DatasetDict({name: split.map(shorten) for name, split in data.items()})


def quiet_progress(trainer):
    """Drop the Trainer's progress bar (in Jupyter an HTML table per run, kept in the notebook's outputs): a sweep
    prints one line per run instead (`run_sweeps`)."""
    from transformers.trainer_callback import ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (NotebookProgressCallback, ProgressCallback):
        trainer.remove_callback(callback)
    return trainer


def run_one(profile: Profile, sweep: str, label: str, config: TrainConfig, data, workdir: Path) -> SweepRun:
    """Train one configuration (no checkpoints written) and read its validation curve."""
    from helpers.memory import Architecture, estimate
    from helpers.training import make_trainer

    torch.manual_seed(config.seed)
    trainer = quiet_progress(make_trainer(profile, config, workdir, data, evaluate=True, checkpoints=False))
    start_loss = float(trainer.evaluate()["eval_loss"])
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    steps_per_epoch = max(1, trainer.state.max_steps / max(config.epochs, 1e-9))
    curve = [(0.0, start_loss)] + [(round(e["step"] / steps_per_epoch, 3), float(e["eval_loss"]))
                                   for e in history if "eval_loss" in e]
    if curve[-1][0] < trainer.state.global_step / steps_per_epoch - 1e-6:  # the last step was not evaluated
        curve.append((round(trainer.state.global_step / steps_per_epoch, 3), float(trainer.evaluate()["eval_loss"])))
    best_epoch, best = min(curve[1:], key=lambda p: p[1])
    tokens = int(max((float(e["num_tokens"]) for e in history if "num_tokens" in e), default=0))
    model = trainer.model
    arch = Architecture.from_config(model.config)
    seq = tokens / max(1, config.n_train * config.epochs)
    act = estimate(arch, "qlora", config.batch_size, max(1, int(seq)), config.r, tuple(config.target_modules))
    result = SweepRun(
        sweep=sweep, label=label, config=asdict(config), val_curve=curve, final_val_loss=curve[-1][1],
        best_val_loss=best, best_epoch=best_epoch, seconds=round(seconds, 2), train_tokens=tokens,
        tokens_per_s=tokens / seconds if seconds else 0.0,
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        estimated_activation_gib=(act.activations + act.logits) / 2**30,
        peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        extra={"train_curve": [(round(e["step"] / steps_per_epoch, 3), float(e["loss"])) for e in history
                               if "loss" in e and "step" in e]},
    )
    del trainer, model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return result


def run_sweeps(profile: Profile, only: list[str] | None = None, progress: bool = True) -> list[SweepRun]:
    """Run every sweep (or those named in `only`); a configuration shared by two sweeps runs once."""
    data = lab_data(profile)
    done: dict[str, SweepRun] = {}
    results: list[SweepRun] = []
    plan = [(name, label, config, json.dumps(asdict(config), sort_keys=True))
            for name, runs in sweeps(profile).items() if not only or name in only for label, config in runs]
    to_train = len({key for *_, key in plan})  # the progress counts trainings, not sweep rows
    for name, label, config, key in plan:
        if key not in done:
            if progress:
                print(f"[run {len(done) + 1}/{to_train}] {name}: {label}", flush=True)
            done[key] = run_one(profile, name, label, config, data, outputs_dir(profile.name, "sweeps", "run"))
        results.append(replace(done[key], sweep=name, label=label))
    return results


def distinct_runs(results: list[SweepRun]) -> int:
    """How many trainings produced `results`: a configuration shared by two sweeps is one run, listed twice."""
    return len({json.dumps(r.config, sort_keys=True) for r in results})


def save(results: list[SweepRun], profile: str, path: Path | None = None) -> Path:
    path = path or outputs_dir(profile) / "sweeps.json"
    path.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return path


def load(path: Path) -> list[SweepRun]:
    return [SweepRun(**{**r, "val_curve": [tuple(p) for p in r["val_curve"]]}) for r in json.loads(path.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hyperparameter sweeps (notebook 09) from the command line")
    parser.add_argument("--profile", default=profile_name(), help="default: $WORKBOOK_PROFILE, else default")
    parser.add_argument("--only", nargs="+", help="sweep names, e.g. 'learning rate' dropout")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    started = time.perf_counter()
    results = run_sweeps(profile, args.only)
    for r in results:
        print(f"{r.sweep:<22} {r.label:<20} val {r.final_val_loss:.4f} (best {r.best_val_loss:.4f} at epoch "
              f"{r.best_epoch:g})  {r.seconds:6.1f} s  {r.tokens_per_s:8,.0f} tok/s  {r.trainable / 1e6:.2f} M")
    print(f"written: {save(results, profile.name, args.json)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))


# --------------------------------------------------------------------------------------------------
# reading a sweep: one plot and one measured sentence each
# --------------------------------------------------------------------------------------------------

SECOND_AXIS = {"rank (alpha = 2r)": "trainable", "rank (alpha = 32)": "trainable", "target modules": "trainable",
               "learning rate": "seconds", "dropout": "seconds", "batch x accumulation": "tokens_per_s"}
SECOND_LABEL = {"trainable": "trainable parameters (M)", "seconds": "training time (s)",
                "tokens_per_s": "training tokens/s"}


def of(results: list[SweepRun], sweep: str) -> list[SweepRun]:
    return [r for r in results if r.sweep == sweep]


def conclude(results: list[SweepRun], sweep: str) -> str:
    """One sentence from the measured numbers of a sweep."""
    runs = of(results, sweep)
    if not runs:
        return f"{sweep}: not run."
    if sweep == "epochs":
        run = runs[0]
        start = run.val_curve[0][1]
        later = [loss for epoch, loss in run.val_curve if epoch > run.best_epoch]
        rise = f", then rose to {max(later):.4f} by epoch {run.val_curve[-1][0]:g}" if later else ""
        keep = "keep the best checkpoint, not the last" if later and max(later) > run.best_val_loss else \
            "no overfitting yet at this length: the last checkpoint is the best"
        return (f"Validation loss fell from {start:.4f} to its lowest, {run.best_val_loss:.4f}, at epoch "
                f"{run.best_epoch:g}{rise}: {keep}.")
    best = min(runs, key=lambda r: r.final_val_loss)
    worst = max(runs, key=lambda r: r.final_val_loss)
    spread = worst.final_val_loss - best.final_val_loss
    text = (f"{sweep}: best {best.label} (validation loss {best.final_val_loss:.4f}), worst {worst.label} "
            f"({worst.final_val_loss:.4f}), a spread of {spread:.4f}")
    if sweep.startswith("rank") or sweep == "target modules":
        text += f"; trainable parameters {min(r.trainable for r in runs) / 1e6:.2f}-{max(r.trainable for r in runs) / 1e6:.2f} M"
    if sweep == "batch x accumulation":
        speeds = ", ".join(f"{r.label}: {r.tokens_per_s:,.0f} tok/s" for r in runs)
        text += f"; same effective batch, so the loss should match: speed {speeds}"
    return text + "."


# --------------------------------------------------------------------------------------------------
# the same sweeps on a GPU, scored by validation MAE (benchmarks/sweep_mae.py): read here on any machine
# --------------------------------------------------------------------------------------------------

GPU_SWEEP_ORDER = ("rank (alpha = 2r)", "rank (alpha = 32)", "learning rate", "target modules", "epochs",
                   "winners combined", "training examples")
# measured on an H200 with benchmarks/sweep_mae.py (README beside it); notebook 09 reads it on any machine
GPU_SWEEP_RESULTS = REPO_ROOT / "benchmarks/results/sweep-mae-h200-2026-12-02/sweep_mae.json"


def load_gpu_sweep(path: Path) -> list[dict]:
    """The rows of a committed sweep_mae.json (one per run and sweep; a run shared by two sweeps appears twice)."""
    rows = json.loads(Path(path).read_text())
    missing = [r.get("label") for r in rows if "val_mae" not in r or "sweep" not in r]
    if missing:
        raise ValueError(f"{path}: {len(missing)} row(s) without a sweep or a validation MAE ({missing[:3]}): "
                         "not a benchmarks/sweep_mae.py results file")
    return rows


def seed_noise(rows: list[dict]) -> float | None:
    """How far the same configuration moves with another seed: the yardstick for every other difference."""
    maes = [r["val_mae"] for r in rows if r["sweep"] == "noise (seed)"]
    return max(maes) - min(maes) if len(maes) >= 2 else None


def conclude_gpu(rows: list[dict], sweep: str) -> str:
    """One sentence from a GPU sweep's validation MAEs, read against the seed noise."""
    runs = [r for r in rows if r["sweep"] == sweep]
    if not runs:
        return f"{sweep}: not in this results file."
    noise = seed_noise(rows)
    if sweep == "epochs":
        points = runs[0]["by_epoch"]
        best = min(points, key=lambda p: p["val_mae"])
        last = points[-1]
        trend = ", ".join(f"epoch {p['epoch']:g}: ${p['val_mae']:.2f}" for p in points)
        verdict = ("the last epoch is the best" if best is last else
                   f"the best is epoch {best['epoch']:g}, ${last['val_mae'] - best['val_mae']:.2f} below the last")
        return f"epochs (one {runs[0]['label']} run, each epoch's checkpoint): {trend}; {verdict}."
    best = min(runs, key=lambda r: r["val_mae"])
    worst = max(runs, key=lambda r: r["val_mae"])
    spread = worst["val_mae"] - best["val_mae"]
    text = (f"{sweep}: best {best['label']} (validation MAE ${best['val_mae']:.2f}), worst {worst['label']} "
            f"(${worst['val_mae']:.2f}), a spread of ${spread:.2f}")
    if noise is not None:
        text += (f", {spread / noise:.1f}x the seed noise (${noise:.2f})" if noise > 0 else
                 ", the two seeds agreed to the cent")
    return text + "."


def _winner_place(labels: list[str], best: str, sweep: str) -> str:
    if sweep == "target modules":
        return best
    index = labels.index(best)
    return "the smallest" if index == 0 else "the largest" if index == len(labels) - 1 else "a middle value"


def compare_cpu_gpu(cpu: list[SweepRun], gpu: list[dict], sweep: str) -> str:
    """Where this run's CPU sweep (validation loss, a few dozen examples) and the GPU sweep (validation MAE) agree."""
    cpu_runs, gpu_runs = of(cpu, sweep), [r for r in gpu if r["sweep"] == sweep]
    if not cpu_runs or not gpu_runs:
        return f"{sweep}: not run on both."
    if sweep == "epochs":
        cpu_run, gpu_points = cpu_runs[0], gpu_runs[0]["by_epoch"]
        cpu_last = cpu_run.best_epoch >= cpu_run.val_curve[-1][0]
        gpu_best = min(gpu_points, key=lambda p: p["val_mae"])
        gpu_last = gpu_best is gpu_points[-1]
        say = lambda last, where: "the last point is the best" if last else f"the best is epoch {where:g}"  # noqa: E731
        agree = "agree" if cpu_last == gpu_last else "DISAGREE"
        return (f"epochs: CPU {say(cpu_last, cpu_run.best_epoch)}; GPU {say(gpu_last, gpu_best['epoch'])}: {agree}.")
    cpu_best = min(cpu_runs, key=lambda r: r.final_val_loss)
    gpu_best = min(gpu_runs, key=lambda r: r["val_mae"])
    cpu_place = _winner_place([r.label for r in cpu_runs], cpu_best.label, sweep)
    gpu_place = _winner_place([r["label"] for r in gpu_runs], gpu_best["label"], sweep)
    noise = seed_noise(gpu)
    spread = max(r["val_mae"] for r in gpu_runs) - gpu_best["val_mae"]
    if noise is not None and spread <= noise:
        return (f"{sweep}: CPU best {cpu_best.label} ({cpu_place}); on the GPU the spread (${spread:.2f}) is within "
                f"the seed noise (${noise:.2f}): no winner there, so the CPU's rule does not carry over.")
    close = [r["label"] for r in gpu_runs if r is not gpu_best and noise is not None
             and r["val_mae"] - gpu_best["val_mae"] <= noise]
    tie = f", with {' and '.join(close)} within the seed noise of it" if close else ""
    agree = "agree" if cpu_place == gpu_place else "DISAGREE"
    return f"{sweep}: CPU best {cpu_best.label} ({cpu_place}); GPU best {gpu_best['label']} ({gpu_place}{tie}): {agree}."
