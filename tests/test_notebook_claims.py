"""Numbers written in a notebook's prose must come from its run (issue 18: markdown numbers go stale).

Committed notebooks carry the outputs of the default run. Every number in a markdown cell that looks measured
(a decimal such as 1.245, or a thousands-separated count such as 65,656) must appear, at the precision written,
in some output of the same notebook, so re-publishing a notebook whose numbers changed fails here until the prose
follows. The exceptions below are definitions, settings, quotations or measurements made elsewhere; each says
why, and where it names a results file, the number is checked there instead.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NUMBER = re.compile(r"(?<![\w.\-/])(\d{1,3}(?:,\d{3})+|\d+\.\d+)(?![\w.]*\d)")

# (notebook prefix, cell id) -> (why, numbers allowed, results file that must contain them or None)
EXCEPTIONS: dict[tuple[str, str], tuple[str, set[str], str | None]] = {
    ("00", "x00e"): ("an exercise's given: SmolLM2-135M's parameter count", {"134.5"}, None),
    ("00", "p00a"): ("the same exercise, asked before section 2 prints the answer", {"134.5"}, None),
    ("01", "c14"): ("the NF4 code book's end probability (a definition)", {"0.9677"}, None),
    ("01", "c16"): ("an FP4 level of the code book (a definition)", {"1.5"}, None),
    ("01", "c33"): ("quoted from the QLoRA paper, Table 2", {"34.34", "31.07", "29.48", "27.41"}, None),
    ("03", "c12"): ("the price filter's upper bound (a setting)", {"999.49"}, None),
    ("03", "6bc4c914"): ("the catalog's spec range and noise (data card), targets of the catalog issue",
                         {"3,000", "50,000", "0.22", "0.60", "0.85", "0.35"}, None),
    ("04", "c06"): ("the 95% normal quantile (a definition)", {"1.96"}, None),
    ("06", "c24s"): ("H100 speed profile: kernels per step, and ratios of the rows of the cited run",
                     {"7,000", "4.4", "1.7"}, None),
    ("06", "c25"): ("the gpu profile's training-set size (a setting)", {"40,000"}, None),
    ("06", "c26"): ("measured on 2 x H200 (README, benchmarks/results/h200x2-2026-11-22)",
                    {"4,096", "2.08", "1.96"}, None),
    ("07", "0d2177c0"): ("the shipped adapter's size and its provenance (adapters/.../workbook_training.json)",
                         {"9.8", "2.9"}, None),
    ("08", "h00"): ("the shipped head's size (adapters/smollm2-135m-price-head-gpu, printed by section 7)", {"9.8"},
                    None),
    ("08", "h20"): ("the gpu profile's training-set size (a setting)", {"40,000"}, None),
    ("08", "h22"): ("training-set sizes of the default and gpu profiles (settings)", {"1,600", "40,000"}, None),
    ("08", "h25"): ("the data curve's sizes and test items (settings of benchmarks/data_curve.py)",
                    {"1,000", "40,000"}, None),
    ("08", "h31"): ("an exercise's given (a training size of the data curve) and a model's name (Llama 3.1 8B)",
                    {"16,000", "3.1"}, None),
    ("09", "c06"): ("the gpu profile's sweep size (a setting)", {"2,048"}, None),
    ("09", "c22"): ("the noise threshold the summary applies (a stated judgement)", {"0.02"}, None),
    ("09", "c22c"): ("the gpu profile's sweep size (a setting)", {"2,048"}, None),
}
# measured numbers that a results file holds literally
SOURCED: dict[tuple[str, str], tuple[set[str], str]] = {
    ("03", "6bc4c914"): ({"0.62", "0.24"}, "benchmarks/results/catalog-v2/baselines.md"),
    ("06", "c23p"): ({"11.57", "12.19", "0.63", "13.48", "13.58"},
                     "benchmarks/results/optimizers-t4cap-h200-2026-12-01/README.md"),
    ("06", "c24m"): ({"38.7", "39.0", "21.5", "5.9", "4.0", "3.0", "0.3", "0.04", "4.9", "3.5", "32.1", "1.25"},
                     "benchmarks/results/fused-h200-2026-12-01/README.md"),
    ("06", "c24k"): ({"21.7", "107,976", "74,124", "28.70", "51,236", "74,204"},
                     "benchmarks/results/compile-h200-2026-12-02/README.md"),
    ("06", "c24r"): ({"8,192", "32.10", "25.79", "112,736", "70,950", "1.59", "0.1"},
                     "benchmarks/results/cpu-side-h200-2026-12-02/README.md"),
    ("06", "c23f"): ({"3.9", "2.0", "7.96", "11.57", "10.20", "7.58", "11.16", "8,596", "6,693", "9.66",
                                "0.9582", "0.9585"},
                     "benchmarks/results/frozen-h200-2026-12-02/README.md"),
    ("06", "c24p"): ({"0.79", "93,040", "78,041", "100,000", "85,154", "16.41", "76,575", "13.25", "3.00",
                                "100,092", "88,155", "15.54"},
                     "benchmarks/results/partial-h200-2026-12-02/README.md"),
    ("06", "c24n"): ({"40,000", "8,192", "25.81", "23.27", "88,582", "89,055", "0.8913", "0.8909", "100,000",
                      "14.87", "73,876", "87,221", "114,881"},
                     "benchmarks/results/nomask-h200-2026-12-02/README.md"),
}


def _outputs(notebook: dict) -> str:
    parts = []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for kind, value in out.get("data", {}).items():
                if kind in ("text/plain", "text/html", "text/markdown"):
                    parts.append("".join(value))
    return "\n".join(parts)


def _values(text: str) -> list[float]:
    values = []
    for match in re.finditer(r"\d[\d,]*(?:\.\d+)?", text):
        try:
            values.append(float(match.group(0).replace(",", "")))
        except ValueError:
            pass
    return values


def _shown(number: str, values: list[float]) -> bool:
    """Written at some precision: an output rounds to it (as a value, or as a percentage of a fraction)."""
    places = len(number.split(".")[1]) if "." in number else 0
    target = float(number.replace(",", ""))
    return any(round(v, places) == target or round(100 * v, places) == target for v in values)


def prose_numbers(source: str) -> list[str]:
    """Measured-looking numbers of a markdown cell; equations, code spans and links are not prose."""
    source = re.sub(r"\$\$.*?\$\$", "", source, flags=re.S)
    source = re.sub(r"`[^`]*`|\(https?://[^)]*\)|benchmarks/results/\S+", "", source)
    return [m.group(1) for m in NUMBER.finditer(source)]


def unbacked_numbers(notebook: dict, prefix: str) -> dict[str, list[str]]:
    values = _values(_outputs(notebook))
    found = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        key = (prefix, cell.get("id"))
        allowed = EXCEPTIONS.get(key, ("", set(), None))[1] | SOURCED.get(key, (set(), ""))[0]
        missing = [n for n in prose_numbers("".join(cell["source"])) if n not in allowed and not _shown(n, values)]
        if missing:
            found[cell.get("id")] = missing
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_prose_is_printed_by_the_run(path):
    notebook = json.loads(path.read_text())
    unbacked = unbacked_numbers(notebook, path.name[:2])
    assert not unbacked, (f"{path.name}: numbers in markdown that no output shows (print them from the run, or "
                          f"add a reasoned exception in this test): {unbacked}")


def test_exceptions_name_cells_that_exist_and_sourced_numbers_are_in_their_files():
    for prefix, cell_id in {**EXCEPTIONS, **SOURCED}:
        path = next(p for p in NOTEBOOKS if p.name.startswith(prefix))
        ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
        assert cell_id in ids, f"{path.name} has no cell {cell_id}: remove its exception"
    for (prefix, cell_id), (numbers, source) in SOURCED.items():
        values = _values((ROOT / source).read_text())
        assert all(_shown(n, values) for n in numbers), (prefix, cell_id, source)


def test_the_check_catches_a_stale_number():
    notebook = {"cells": [
        {"cell_type": "code", "source": [], "outputs": [{"text": "80 steps in 8.0 min, 65,656 tokens; loss 1.2453; share 0.125"}]},
        {"cell_type": "markdown", "id": "m", "source": ["80 steps in 10.8 min, 65,656 tokens, loss 1.245 (12.5%)"]},
    ]}
    assert unbacked_numbers(notebook, "99") == {"m": ["10.8"]}


def _sizes():
    from helpers.profiles import PROFILES

    default = PROFILES["default"]
    return {"06": default.train.n_train, "06 split": default.n_train, "08": default.head.n_train,
            "09": default.lab.n_train, "09 val": default.lab.n_val}


# what a cell prints about the size of its run -> the default profile's setting it must equal (issue 28: 06 once
# printed the split's 20,000 as the examples trained, 1,600)
PRINTED_SIZES = [("06", r"([\d,]+) training examples \(of ([\d,]+) in the split\)", ("06", "06 split")),
                 ("08", r"price head \([\w.]+, [\w-]+, ([\d,]+) examples\)", ("08",)),
                 ("09", r"([\d,]+) training examples per run, ([\d,]+) validation examples", ("09", "09 val"))]


def printed_sizes(notebook: dict, pattern: str) -> list[tuple[int, ...]]:
    return [tuple(int(g.replace(",", "")) for g in m.groups()) for m in re.finditer(pattern, _outputs(notebook))]


def size_mismatches(notebook: dict, pattern: str, expected: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [found for found in printed_sizes(notebook, pattern) if found != expected]


@pytest.mark.parametrize("prefix,pattern,keys", PRINTED_SIZES, ids=[p[0] for p in PRINTED_SIZES])
def test_printed_run_sizes_are_the_default_profiles(prefix, pattern, keys):
    path = next(p for p in NOTEBOOKS if p.name.startswith(prefix))
    notebook = json.loads(path.read_text())
    assert printed_sizes(notebook, pattern), f"{path.name}: no output matches {pattern!r} any more: update PRINTED_SIZES"
    expected = tuple(_sizes()[k] for k in keys)
    wrong = size_mismatches(notebook, pattern, expected)
    assert not wrong, f"{path.name}: printed {wrong}, the default profile runs {expected}"


def test_the_size_check_catches_a_split_printed_as_the_examples_trained():
    stale = {"cells": [{"cell_type": "code", "source": [],
                        "outputs": [{"text": "- 20,000 training examples (of 20,000 in the split), batch 8"}]}]}
    assert size_mismatches(stale, PRINTED_SIZES[0][1], (1600, 20000)) == [(20000, 20000)]
    assert size_mismatches(stale, PRINTED_SIZES[0][1], (20000, 20000)) == []


ABSOLUTE = re.compile(r"(?<![\w.])/(?:work|tmp|root|home|Users|content|check|opt|var)/[\w.\-/]+")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_published_outputs_print_paths_relative_to_the_repository(path):
    """A learner's machine is not this one: a printed path starts at the repository (paths.shown)."""
    notebook = json.loads(path.read_text())
    found = {cell.get("id"): ABSOLUTE.findall(_outputs({"cells": [cell]})) for cell in notebook["cells"]}
    assert not {k: v for k, v in found.items() if v}, f"{path.name}: absolute paths in outputs"


def test_shipped_adapters_name_no_machine_path():
    for config in sorted(ROOT.glob("adapters/*/adapter_config.json")):
        assert not ABSOLUTE.search(config.read_text()), config
        assert json.loads(config.read_text())["base_model_name_or_path"] is None, config


def test_results_files_name_no_machine_path():
    """Results files come back from the lent GPU, whose scratch folders mean nothing to a reader: they are written
    as $SCRATCH/... when a run's log is committed."""
    found = []
    for path in sorted((ROOT / "benchmarks" / "results").rglob("*")):
        if path.suffix in (".json", ".txt", ".log", ".md", ".csv") and path.is_file():
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in ABSOLUTE.finditer(path.read_text())]
    assert not found, found[:10]
