"""FSDP-QLoRA measured without the hub: a course model with random weights, on one GPU and sharded over two.

The architecture decides memory and speed, not the weights. This trains a random-weight model built from
`data/configs/` through the workbook's own pieces (`runplan.decide`, `quantization_config`, `add_adapters`, `_sft_config` and
the workbook's SFTTrainer) on random token ids, and reports per process: peak GPU memory, step time,
tokens/s, and the memory planner's single-GPU estimate.

    python benchmarks/fsdp_emulate.py build llama-3.1-8b                      # once per machine (~1 min)
    python benchmarks/fsdp_emulate.py train llama-3.1-8b --batch 4 --json one.json            # one GPU
    torchrun --nproc_per_node 2 benchmarks/fsdp_emulate.py train llama-3.1-8b --batch 4 --fsdp --json two.json

`--tiny` builds a two-layer model of the same family instead (the CPU test runs it). Results are appended to
the JSON file as one row per run (rank 0 writes; every process's peak is in the row).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import replace as dc_replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed import step_timer, t4_like  # noqa: E402
from helpers import distributed  # noqa: E402
from helpers.memory import GIB, Architecture, estimate  # noqa: E402
from helpers.models import load_model_config, quantization_config  # noqa: E402
from helpers.profiles import detect_device  # noqa: E402
from helpers.runplan import decide  # noqa: E402
from helpers.training import ALL_LINEAR, TrainConfig, _sft_config, _trainer_class, add_adapters, validate_config  # noqa: E402


def model_config(name: str, tiny: bool = False):
    """The course architecture; `tiny` keeps its family and vocabulary shape but 2 small layers."""
    config = load_model_config(name)
    if tiny:
        config.num_hidden_layers, config.hidden_size, config.intermediate_size = 2, 64, 128
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 16
        config.vocab_size, config.bos_token_id, config.eos_token_id = 512, 1, 2
    return config


def word_tokenizer():
    """A three-token tokenizer: the data is already token ids, the trainer only needs pad and eos."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel({"<unk>": 0, "<pad>": 1, "</s>": 2}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")


def build(name: str, folder: Path, tiny: bool = False) -> Path:
    """A random-weight bf16 checkpoint (+ the word tokenizer) in `folder`; built on the GPU where there is one."""
    from transformers import AutoModelForCausalLM

    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(model_config(name, tiny), dtype=torch.bfloat16)
    started = time.perf_counter()
    model.save_pretrained(str(folder))
    word_tokenizer().save_pretrained(str(folder))
    print(f"built {name}{' (tiny)' if tiny else ''} in {folder}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B"
          f" parameters, saved in {time.perf_counter() - started:.0f} s", flush=True)
    del model
    gc.collect()
    return folder


def train_run(folder: Path, name: str, batch: int, seq: int, steps: int, fsdp: bool, checkpointing: bool,
              r: int = 32, tiny: bool = False, fsdp_version: int = 2, cap_gib: float | None = None,
              fp16: bool = False, fused_kernels: bool = False, optimizer: str | None = None,
              targets: tuple[str, ...] = ALL_LINEAR, dropout: float = 0.05, frozen_fp32: bool | None = None,
              checkpoint_layers: int | None = None) -> dict:
    """One training run in this process (one of several under torchrun); returns this process's row."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    rank, world, local = distributed.rank(), distributed.world_size(), distributed.local_rank()
    if cuda:
        torch.cuda.set_device(local)
        if cap_gib:  # a smaller card's memory (a T4 shows 15.0 GiB usable)
            total = torch.cuda.get_device_properties(local).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * GIB / total), local)
        torch.cuda.reset_peak_memory_stats()
    config = validate_config(TrainConfig(
        target_modules=tuple(targets), r=r, alpha=2 * r, dropout=dropout, batch_size=batch, max_length=seq,
        max_steps=steps, gradient_checkpointing=checkpointing, fsdp=fsdp, fsdp_version=fsdp_version, logging_steps=1, warmup_ratio=0.0,
        group_by_length=False, learning_rate=1e-4, fused_kernels=fused_kernels, optimizer=optimizer,
        checkpoint_layers=checkpoint_layers))
    device = detect_device()
    if cuda and fp16:  # a T4 emulated on a newer card: its fp16 mixed precision and its memory
        device = t4_like(device, cap_gib)
    run_plan = decide(config, device)  # checkpointing is given: no model config needed
    if frozen_fp32 is not None:  # the plan's alternative, to measure what its decision saves
        run_plan = dc_replace(run_plan, frozen_fp32=frozen_fp32)
    dtype = run_plan.compute_dtype
    qconfig = quantization_config(config.quantization, dtype, quant_storage=dtype if fsdp else None)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, quantization_config=qconfig,
                                                 device_map={"": local if cuda else "cpu"})
    load_s = time.perf_counter() - started
    loaded_gib = torch.cuda.memory_allocated() / GIB if cuda else None
    torch.manual_seed(0)  # the same adapter initialisation in every process
    model = add_adapters(model, config, run_plan.checkpointing, run_plan.frozen_fp32, run_plan.checkpoint_layers)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)  # every process draws the same ids; the sampler shards them
    ids = torch.randint(3, vocab, (steps * batch * world, seq), generator=gen)
    data = Dataset.from_dict({"input_ids": ids.tolist()})
    out_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"fsdp_emulate_{name}_{rank}"
    args = _sft_config(config, out_dir, run_plan, evaluate=False, checkpoints=False)
    args.disable_tqdm = True
    timer = step_timer()
    trainer = _trainer_class()(model=model, args=args, train_dataset=data,
                               processing_class=AutoTokenizer.from_pretrained(str(folder)), callbacks=[timer])
    try:
        output = trainer.train()
    except torch.OutOfMemoryError as error:
        return {"rank": rank, "world": world, "fsdp_version": fsdp_version if fsdp else None,
                "optimizer": str(args.optim), "fsdp_enabled": bool(getattr(trainer, "is_fsdp_enabled", False)),
                "wrapped_in": type(trainer.model_wrapped).__name__, "fits": False, "cap_gib": cap_gib,
                "fused_kernels": fused_kernels, "frozen_fp32": run_plan.frozen_fp32,
                "checkpoint_layers": run_plan.checkpoint_layers, "targets": list(config.target_modules), "dropout": config.dropout,
                "compute_dtype": str(dtype).removeprefix("torch."), "error": str(error).splitlines()[0][:200],
                "steps": len(timer.times), "step_ms": None, "load_seconds": round(load_s, 1), "train_loss": None,
                "peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 2) if cuda else None}
    timed = sorted(timer.times[3:]) or sorted(timer.times)
    step_s = timed[len(timed) // 2]
    row = {"fits": True, "cap_gib": cap_gib, "fused_kernels": fused_kernels, "frozen_fp32": run_plan.frozen_fp32,
           "checkpoint_layers": run_plan.checkpoint_layers,
           "targets": list(config.target_modules), "dropout": config.dropout, "compute_dtype": str(dtype).removeprefix("torch."),
           "rank": rank, "world": world, "fsdp_version": fsdp_version if fsdp else None, "optimizer": str(args.optim), "fsdp_enabled": bool(getattr(trainer, "is_fsdp_enabled", False)),
           "wrapped_in": type(trainer.model_wrapped).__name__, "steps": len(timer.times),
           "step_ms": round(1000 * step_s, 1), "tokens_per_s_process": round(batch * seq / step_s),
           "load_seconds": round(load_s, 1), "train_loss": round(float(output.training_loss), 4)}
    if cuda:
        row.update(loaded_gib=round(loaded_gib, 2), load_peak_gib=round(timer.load_peak_gib, 2),
                   before_train_gib=round(timer.before_train_gib, 2), peak_gib=round(torch.cuda.max_memory_allocated() / GIB, 2),
                   peak_reserved_gib=round(torch.cuda.max_memory_reserved() / GIB, 2),
                   # the whole device, after training: paged optimizer state (CUDA managed memory) and the context
                   # are outside PyTorch's allocator, so its peaks above do not count them
                   device_used_after_gib=round((lambda f, t: (t - f) / GIB)(*torch.cuda.mem_get_info(local)), 2),
                   device=torch.cuda.get_device_name(local))
    return row


def summarise(rows: list[dict], name: str, batch: int, seq: int, fsdp: bool, checkpointing: bool, r: int,
              tiny: bool) -> dict:
    """One result row from every process's row: the planner's single-GPU figure next to the measured peaks."""
    arch = Architecture.from_config(model_config(name, tiny))
    first = rows[0]
    planned = estimate(arch, "qlora", batch, seq, r=r, targets=tuple(first.get("targets", ALL_LINEAR)),
                       gradient_checkpointing=checkpointing, loss="fused", lora_dropout=first.get("dropout", 0.05),
                       fused_kernels=first.get("fused_kernels", False), frozen_fp32=first.get("frozen_fp32", True),
                       checkpoint_layers=first.get("checkpoint_layers"),
                       paged_optimizer="paged" in str(first.get("optimizer", "")).lower())
    world = rows[0]["world"]
    peaks = [row.get("peak_gib") for row in rows]  # training only: reset when training begins (after wrapping)
    fits = all(row["fits"] for row in rows)
    step_ms = max(row["step_ms"] for row in rows) if fits else None
    return {"model": name + (" (tiny)" if tiny else ""), "gpus": world, "fsdp": fsdp,
            "fsdp_version": rows[0]["fsdp_version"], "optimizer": str(rows[0]["optimizer"]), "batch_per_gpu": batch,
            "fused_kernels": rows[0].get("fused_kernels", False), "frozen_fp32": first.get("frozen_fp32", True),
            "targets": first.get("targets"), "dropout": first.get("dropout"),
            "checkpoint_layers": first.get("checkpoint_layers"),
            "seq": seq, "r": r, "checkpointing": checkpointing,
            "fsdp_enabled": rows[0]["fsdp_enabled"], "wrapped_in": rows[0]["wrapped_in"],
            "peak_gib_per_gpu": peaks, "planned_one_gpu_gib": round(planned.total / GIB, 2),
            "fits": fits, "cap_gib": rows[0]["cap_gib"], "compute_dtype": rows[0]["compute_dtype"],
            "step_ms": step_ms, "tokens_per_s": round(world * batch * seq / (step_ms / 1000)) if fits else None,
            "load_seconds": max(row["load_seconds"] for row in rows), "train_loss": rows[0]["train_loss"],
            "processes": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["build", "train"])
    parser.add_argument("model", help="a config in data/configs, e.g. llama-3.1-8b")
    parser.add_argument("--folder", type=Path, help="where the random checkpoint lives (default /tmp/random-MODEL)")
    parser.add_argument("--tiny", action="store_true", help="two small layers of the same family (CPU test)")
    parser.add_argument("--batch", type=int, default=4, help="examples per GPU per step")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--r", type=int, default=32)
    parser.add_argument("--fsdp", action="store_true", help="shard base and adapters over the processes")
    parser.add_argument("--fsdp-version", type=int, default=2, choices=(1, 2))
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--cap-gib", type=float, help="cap each process's GPU memory here (a T4: 15)")
    parser.add_argument("--fp16", action="store_true", help="compute in fp16, as on a T4 (no bf16)")
    parser.add_argument("--json", type=Path, help="append the result row here")
    parser.add_argument("--fused-kernels", action="store_true", help="Liger's fused kernels (fused_kernels=True)")
    parser.add_argument("--optimizer", help="the Trainer's optim (default: the workbook's, paged AdamW on a GPU)")
    parser.add_argument("--targets", default=",".join(ALL_LINEAR), help="adapted matrices, comma-separated "
                        "(the course profile's: q_proj,k_proj,v_proj,o_proj)")
    parser.add_argument("--dropout", type=float, default=0.05, help="adapter dropout (the course profile's: 0.1)")
    parser.add_argument("--checkpoint-layers", type=int, help="recompute only the first N decoder layers (default: all)")
    parser.add_argument("--frozen-fp32", choices=("on", "off"), help="override the plan: upcast the 4-bit base's "
                        "other weights to fp32 (peft's preparation) or keep them 16-bit (default: the plan's)")
    args = parser.parse_args(argv)
    folder = args.folder or Path(f"/tmp/random-{args.model}{'-tiny' if args.tiny else ''}")
    if args.stage == "build":
        build(args.model, folder, args.tiny)
        return 0
    if not (folder / "config.json").exists():
        raise SystemExit(f"No random checkpoint at {folder}: run `python {sys.argv[0]} build {args.model}` first.")
    checkpointing = not args.no_checkpointing
    row = train_run(folder, args.model, args.batch, args.seq, args.steps, args.fsdp, checkpointing, args.r, args.tiny,
                    args.fsdp_version, args.cap_gib, args.fp16, args.fused_kernels, args.optimizer,
                    tuple(args.targets.split(",")), args.dropout,
                    None if args.frozen_fp32 is None else args.frozen_fp32 == "on", args.checkpoint_layers)
    rows = [row]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rows = [None] * row["world"]
        torch.distributed.all_gather_object(rows, row)
    if row["rank"] == 0:
        result = summarise(rows, args.model, args.batch, args.seq, args.fsdp, checkpointing, args.r, args.tiny)
        print(json.dumps({k: v for k, v in result.items() if k != "processes"}), flush=True)
        if args.json:
            old = json.loads(args.json.read_text()) if args.json.exists() else []
            args.json.write_text(json.dumps(old + [result], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
