"""What trained a saved adapter (or adapters + price head) and what it scored: one typed record, written and read by
code everywhere.

Every saved adapter folder holds its record as JSON (`workbook_training.json` for a generative adapter,
`workbook_head.json` for a price head). Training writes it, shipping adds the commit and the weights' dtype, the GPU
benchmarks add the scores they measured, and notebooks 01, 06 and 07 read it. Reading refuses a key this class does
not know, so a benchmark that writes a new one fails its test here instead of a notebook later.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from helpers.paths import shown

TRAINING_FILE = "workbook_training.json"  # beside a generative adapter
HEAD_FILE = "workbook_head.json"  # beside a price head's adapters + head


class ProvenanceError(ValueError):
    """A provenance record with a key no code writes, or without one every record has."""


@dataclass(frozen=True)
class Provenance:
    # --- what was trained on what ---
    profile: str
    model: str  # the base model's id ("embedded SmolLM2-135M-Instruct" offline)
    dataset: str
    n_train: int
    n_val: int
    config: dict  # the run's settings (TrainConfig or HeadConfig as a dict)
    scale: dict | None = None  # price heads: the standardisation of log price, without which outputs are not prices
    # --- how the run went ---
    best_checkpoint: str | None = None
    best_eval_loss: float | None = None  # generative adapters: validation loss of the kept checkpoint
    best_val_mae: float | None = None  # price heads: validation MAE of the kept checkpoint
    global_step: int | None = None
    resumed_from: str | None = None
    seconds: float | None = None  # this process's training time (after a resume: this run only)
    train_tokens: int | None = None  # the whole run's tokens (generative adapters)
    tokens_this_run: int | None = None  # after a resume, this process's tokens (generative adapters)
    train_tokens_this_run: int | None = None  # this process's tokens (price heads)
    tokens_per_second: float | None = None
    processes: int = 1
    peak_gpu_gb: float | None = None
    peak_rss_gb: float | None = None
    # --- added when shipped (ladder.ship_adapter, benchmarks/gpu_ladder.py, benchmarks/head_gpu.py) ---
    commit: str | None = None  # the code that trained it
    commit_note: str | None = None
    weights_dtype: str | None = None
    device: str | None = None  # where it was trained
    settings_note: str | None = None
    decoding: str | None = None  # generative adapters: the decoding chosen on validation
    validation_mae: dict | None = None  # per decoding
    test_mae: dict | None = None  # "n=1000", "n=250": on the first n test items
    test_mae_device: str | None = None
    test_mae_cpu: dict | None = None  # re-measured on a CPU (notebook 07)
    test_mae_cpu_device: str | None = None
    test_mae_gpu_fp32: dict | None = None  # re-measured on a GPU with fp32 compute
    test_mae_gpu_fp32_device: str | None = None

    def to_dict(self) -> dict:
        """The JSON form: what training records always, the rest only where it was measured."""
        return {k: v for k, v in asdict(self).items() if v is not None or k in ALWAYS_WRITTEN}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def with_fields(self, **values) -> Provenance:
        """A copy with more fields set (shipping, scores); an unknown name is refused, not stored."""
        unknown = sorted(set(values) - FIELDS)
        if unknown:
            raise ProvenanceError(f"no provenance field {', '.join(unknown)}: add it to helpers.provenance.Provenance "
                                  "(with a comment saying who writes it) before writing it")
        return replace(self, **values)


FIELDS = {f.name for f in fields(Provenance)}
ALWAYS_WRITTEN = {"best_checkpoint", "best_eval_loss", "resumed_from", "peak_gpu_gb", "peak_rss_gb"}  # null = not so
REQUIRED = {f.name for f in fields(Provenance) if f.default is dataclasses.MISSING}


def from_dict(values: dict, source: str = "provenance") -> Provenance:
    unknown, missing = sorted(set(values) - FIELDS), sorted(REQUIRED - set(values))
    if unknown or missing:
        raise ProvenanceError(f"{source}: " + "; ".join(
            ([f"keys no code writes: {', '.join(unknown)} (add them to helpers.provenance.Provenance)"] if unknown else [])
            + ([f"missing {', '.join(missing)}"] if missing else [])))
    return Provenance(**values)


def read(folder_or_file: str | Path, name: str = TRAINING_FILE) -> Provenance:
    """The record in an adapter folder (or the file itself); a clear error where there is none."""
    path = Path(folder_or_file)
    path = path / name if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"No {path.name} in {path.parent}: pass the folder training saved the adapter to "
                                "(outputs/<profile>/.../adapter) or a shipped one (adapters/).")
    return from_dict(json.loads(path.read_text()), shown(path))
