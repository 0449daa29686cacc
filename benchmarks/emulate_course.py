"""Course models measured without the hub: Llama 3.2 3B / 3.1 8B with random weights, on a capped GPU.

The architecture decides memory and speed, not the weights. This builds a model from `data/configs/`
with random weights, saves it, loads it in NF4 + double quant exactly as the course profile does, caps
the process at a smaller GPU's memory (`torch.cuda.set_per_process_memory_fraction`), computes in fp16
(no bf16, as on a T4) and runs QLoRA training steps on random token ids: peak memory against the
planner (`helpers.memory.estimate`), tokens/s, and whether it fits.

    python benchmarks/emulate_course.py OUT_JSON --cap-gib 15 --runs llama-3.2-3b:4 llama-3.1-8b:1 llama-3.1-8b:16

Each run is `config:batch`; results are appended to OUT_JSON after every run (a cut-off call keeps them).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fsdp_emulate import build  # noqa: E402  (the one random-weight builder)

from helpers.memory import Architecture, estimate  # noqa: E402
from helpers.models import load_model_config  # noqa: E402


def build_random(name: str, folder: Path) -> Path:
    """The random-weight checkpoint (benchmarks/fsdp_emulate.py builds it; loading here converts it to fp16)."""
    torch.cuda.set_per_process_memory_fraction(1.0)  # the build is not part of the measurement: no cap here
    folder = build(name, folder)
    torch.cuda.empty_cache()
    return folder


def run_one(name: str, batch: int, seq: int, steps: int, cap_gib: float, r: int, targets: list[str],
            checkpointing: bool) -> dict:
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    folder = build_random(name, Path(f"/tmp/random-{name}"))
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total))
    torch.cuda.reset_peak_memory_stats()
    arch = Architecture.from_config(load_model_config(name))
    planned = estimate(arch, "qlora", batch, seq, r=r, targets=tuple(targets), gradient_checkpointing=checkpointing)
    row = {"model": name, "batch": batch, "seq": seq, "r": r, "targets": targets, "checkpointing": checkpointing,
           "cap_gib": cap_gib, "compute_dtype": "float16", "planned_gib": round(planned.total / 2**30, 2),
           "planned_parts_gib": {k: round(v, 2) for k, v in planned.gib().items()}}
    model = None
    try:
        qconfig = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=torch.float16)
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(str(folder), quantization_config=qconfig, dtype=torch.float16,
                                                     device_map={"": 0})
        row["load_seconds"] = round(time.perf_counter() - started, 1)
        row["loaded_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.05, target_modules=targets,
                                                 task_type="CAUSAL_LM"))
        optimizer = bnb.optim.PagedAdamW32bit([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        scaler = torch.amp.GradScaler("cuda")
        model.train()
        gen = torch.Generator(device="cuda").manual_seed(0)
        times = []
        for _ in range(steps):
            ids = torch.randint(0, arch.vocab, (batch, seq), device="cuda", generator=gen)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.float16):
                loss = model(input_ids=ids, labels=ids).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        timed = sorted(times[3:]) or times
        step_s = timed[len(timed) // 2]
        row.update(fits=True, steps=steps, step_ms=round(1000 * step_s, 1), tokens_per_s=round(batch * seq / step_s),
                   loss=round(float(loss), 3))
    except torch.OutOfMemoryError as error:
        row.update(fits=False, error=str(error).splitlines()[0][:300])
    row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    row["planner_error"] = round((row["planned_gib"] - row["peak_gib"]) / row["peak_gib"], 3) if row.get("fits") else None
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", nargs="+", default=["llama-3.2-3b:4", "llama-3.1-8b:1", "llama-3.1-8b:16"])
    parser.add_argument("--cap-gib", type=float, default=15.0, help="a T4 shows 15.0 GiB usable")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--r", type=int, default=32)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    parser.add_argument("--no-checkpointing", action="store_true")
    args = parser.parse_args(argv)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    for spec in args.runs:
        name, batch = spec.split(":")
        row = run_one(name, int(batch), args.seq, args.steps, args.cap_gib, args.r, args.targets.split(","),
                      not args.no_checkpointing)
        rows.append(row)
        args.out.write_text(json.dumps(rows, indent=2))
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
