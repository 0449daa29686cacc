"""The fault table of issue 21, one row per faulty input: what it did before, and the outcome class now.

Every row calls a user-facing entry point. The outcome must be one of two classes:
- "counted": the call returns, the bad part is counted with a reason (or handled), and the rest is kept;
- "error": the call stops with a clear error of a user-facing type whose message says what to do.
Anything else (another exception type, a wrong value) fails the row: no raw traceback, no silent wrong number.
`python tests/test_fault_table.py` prints the table as markdown.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

GOOD = {"title": "Acme cordless drill with two batteries and a charger, 20V", "price": 59.0, "parent_asin": "B1"}
ITEMS = [{"price": 10.0}, {"price": 100.0}]


def _russian_byo(tmp_path):
    from helpers.curation import load_byo

    rows = ["Дрель аккумуляторная, два аккумулятора и зарядное устройство",
            "Кресло офисное с поясничной опорой и подлокотниками", "Набор барабанных палочек, клен, пять пар",
            "Пусковое устройство для дизельных двигателей"]
    return load_byo(_write(tmp_path, "ru.csv", "text,price\n" + "\n".join(f'"{t}",{10 + i}' for i, t in enumerate(rows))))


def _two_writers(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys\nfrom helpers.evaluation import evaluate, record_result\nfrom pathlib import Path\n"
            "for i in range(30):\n    record_result(evaluate([11.0], [{'price': 10.0}], f'{sys.argv[2]} {i}', "
            "profile='t'), Path(sys.argv[1]))\n")
    path = tmp_path / "results.json"
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), who], cwd=root) for who in ("a", "b")]
    assert all(p.wait(300) == 0 for p in procs)
    return json.loads(path.read_text()), sorted(p.name for p in tmp_path.iterdir())


def _record_outside(tmp_path):
    import os

    from helpers.evaluation import evaluate, record_result

    os.environ["WORKBOOK_OUTPUTS"] = str(tmp_path)
    try:
        return record_result(evaluate([10.0], [{"price": 10.0}], "m", profile="../../x"))
    finally:
        del os.environ["WORKBOOK_OUTPUTS"]


def _empty_cache_setting(tmp_path):
    import os

    from helpers.paths import REPO_ROOT, cache_dir

    os.environ["WORKBOOK_CACHE"] = ""
    try:
        return cache_dir(), REPO_ROOT
    finally:
        del os.environ["WORKBOOK_CACHE"]


@dataclass(frozen=True)
class Fault:
    case: str
    before: str  # what the input did before issue 21 (from the report)
    outcome: str  # "counted" or "error"
    run: Callable  # run(tmp_path) -> value; for "counted", check(value) must hold
    check: Callable | None = None
    error: type | tuple = ()
    match: str = ""


def _write(tmp_path, name, data: bytes | str):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _read_jsonl(path):
    from helpers.curation import CurationReport, read_jsonl

    report = CurationReport()
    return list(read_jsonl(path, report)), report


def _byo(path):
    from helpers.curation import load_byo

    return load_byo(path)


def _price(text):
    from helpers.prices import parse_price_text

    return parse_price_text(text)


def _curation_price(value):
    from helpers.curation import parse_record_price

    return parse_record_price(value)


def _evaluate(predictions, items, **kw):
    from helpers.evaluation import evaluate

    return evaluate(predictions, items, "m", **kw)


def _profile(**override):
    from helpers.profiles import get_profile

    return get_profile("smoke", **override)


def _train_cli(*pairs):
    from helpers.training import main

    return main(["--profile", "smoke", *[a for p in pairs for a in ("--set", p)]])


def _record_into_damaged(tmp_path):
    from helpers.evaluation import evaluate, load_results, record_result

    path = _write(tmp_path, "results.json", '[{"model": "x", "data')
    record_result(evaluate([10, 100], ITEMS, "m", profile="t"), path)
    return load_results("t", path), sorted(p.name.split("-")[0] for p in tmp_path.glob("results.json.damaged-*"))


def _checkpoints(tmp_path, layout):
    from helpers.training import CHECKPOINT_FILES

    for step, complete in layout:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in CHECKPOINT_FILES if complete else CHECKPOINT_FILES[:1]:
            (folder / name).write_text("x")
    return tmp_path


def _resume(tmp_path, resume):
    from helpers.training import resume_plan

    return resume_plan(_checkpoints(tmp_path, [(2, True), (4, False)]), resume)


def _damaged_model(tmp_path, monkeypatch_env):
    from helpers.models import embedded_model_dir, load_base_model

    source = embedded_model_dir()
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if (source / name).exists():
            (broken / name).write_bytes((source / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    monkeypatch_env("WORKBOOK_MODEL_DIR", str(broken))
    return load_base_model(None, "fp32")


def _local_model(path):
    from helpers.models import load_tokenizer

    return load_tokenizer(path)


def _prompts_string():
    from helpers.inference import generate_completions

    return generate_completions(None, None, "How much?")


def _split_overlap():
    from helpers.curation import Item, split

    return split([Item(str(i), "A", "t", f"text {i}", 10.0) for i in range(20)], 10, 5, -3)


def _curate(records):
    from helpers.curation import curate

    return curate(records)


def _errors():
    from helpers.models import ModelSetupError
    from helpers.profiles import ProfileError

    return ValueError, TypeError, FileNotFoundError, SystemExit, ModelSetupError, ProfileError


gz_whole = gzip.compress(("\n".join(json.dumps({**GOOD, "parent_asin": f"B{i}"}) for i in range(200)) + "\n").encode())

FAULTS = [
    # --- price parsing: what the models really write --------------------------------------------------
    Fault("model answer '-1'", "read as $1", "counted", lambda t: _price("-1"), lambda v: v is None),
    Fault("model answer '-$5'", "read as $5", "counted", lambda t: _price("-$5"), lambda v: v is None),
    Fault("model answer '12,3456'", "read as $12,345", "counted", lambda t: _price("12,3456"), lambda v: v is None),
    Fault("model answer '1.299,99'", "read as $1.299", "counted", lambda t: _price("1.299,99"), lambda v: v == 1299.99),
    Fault("model answer '1e3'", "read as $1", "counted", lambda t: _price("1e3"), lambda v: v == 1000.0),
    Fault("model answer 'about $1,299.99'", "handled", "counted", lambda t: _price("about $1,299.99"),
          lambda v: v == 1299.99),
    Fault("model answer '1 299,00 €' (space thousands, currency after)", "read as $1", "counted",
          lambda t: _price("1 299,00 €"), lambda v: v == 1299.0),
    Fault("model answer '12.5k'", "read as $12.50", "counted", lambda t: _price("12.5k"), lambda v: v == 12500.0),
    Fault("model answer 'Model 3000 costs $12'", "read as $3000", "counted",
          lambda t: (_price("Model 3000 costs $12"), _price("Model 3000 costs 12")), lambda v: v == (12.0, None)),
    Fault("BYO price '1 299,00 €' / '-€5' / '$5 - $9'", "unparseable / unparseable / unparseable", "counted",
          lambda t: [_curation_price(x) for x in ("1 299,00 €", "-€5", "$5 - $9")],
          lambda v: v == [(None, "price out of range"), (None, "zero or negative price"), (None, "unparseable price")]),
    Fault("model answer '' or None", "handled", "counted", lambda t: (_price(""), _price(None)),
          lambda v: v == (None, None)),
    # --- curation of raw files --------------------------------------------------------------------------
    Fault("one non-UTF-8 byte in a .jsonl", "UnicodeDecodeError, 0 records", "counted",
          lambda t: _read_jsonl(_write(t, "m.jsonl", json.dumps(GOOD).encode() + b"\n" + b'{"title": "caf\xe9"}\n')),
          lambda v: len(v[0]) == 1 and v[1].dropped == {"not UTF-8 text": 1}),
    Fault("a truncated .jsonl.gz", "EOFError, the records read were lost", "counted",
          lambda t: _read_jsonl(_write(t, "m.jsonl.gz", gz_whole[: len(gz_whole) // 2])),
          lambda v: 0 < len(v[0]) < 200 and "cut short" in v[1].notes[0]),
    Fault("a malformed JSON line in a .jsonl", "handled", "counted",
          lambda t: _read_jsonl(_write(t, "m.jsonl", json.dumps(GOOD) + '\n{"title": \n')),
          lambda v: len(v[0]) == 1 and sum(v[1].dropped.values()) == 1),
    Fault("a price that is a 401-digit integer", "OverflowError ended the run", "counted",
          lambda t: _curation_price(int("9" * 401)), lambda v: v == (None, "price out of range")),
    Fault("price NaN / true / -5 / missing", "NaN and True slipped through", "counted",
          lambda t: [_curation_price(x)[1] for x in (float("nan"), True, -5, None)],
          lambda v: v == ["unparseable price", "unparseable price", "zero or negative price", "missing price"]),
    Fault("conflicting duplicate (same text, other price)", "dropped, no word on which price was kept", "counted",
          lambda t: _curate([GOOD, {**GOOD, "parent_asin": "B3", "price": 99.0}]),
          lambda v: [i.price for i in v[0]] == [59.0]
          and v[1].dropped == {"duplicate text with another price (the first price is kept)": 1}),
    Fault("100k-character text without a tokenizer", "kept whole", "counted",
          lambda t: _curate([{**GOOD, "title": "word " * 30_000}]),
          lambda v: len(v[0][0].text) <= 4000 and sum(v[1].changed.values()) == 1),
    # --- bring your own file ----------------------------------------------------------------------------
    Fault("BYO .jsonl with one truncated line", "the whole file rejected", "counted",
          lambda t: _byo(_write(t, "b.jsonl", "\n".join([json.dumps({"text": GOOD["title"], "price": 10}),
                                                           '{"text": "cut', json.dumps({"text": GOOD["title"] + " kit",
                                                                                        "price": 12})]))),
          lambda v: [i.price for i in v[0]] == [10.0, 12.0] and v[1].dropped == {"malformed JSON": 1}),
    Fault("BYO CSV with an unquoted comma in a text", "columns shifted, row kept with the wrong text", "counted",
          lambda t: _byo(_write(t, "b.csv", f"text,price\n\"{GOOD['title']}\",10\nDrill, with case,12\n")),
          lambda v: [i.price for i in v[0]] == [10.0]
          and v[1].dropped == {"wrong number of columns (unquoted comma in a text?)": 1}),
    Fault("BYO JSON `true` as the price", "became $1.00", "counted",
          lambda t: _byo(_write(t, "b.jsonl", json.dumps({"text": GOOD["title"], "price": True}))),
          lambda v: v[0] == [] and v[1].dropped == {"unparseable price": 1}),
    Fault("BYO latin-1 CSV", "pandas traceback", "counted",
          lambda t: _byo(_write(t, "b.csv", f"text,price\n{GOOD['title'].replace(',', '')} caf\xe9 edition,10\n"
                                     .encode("latin-1"))),
          lambda v: "café" in v[0][0].text and "not UTF-8" in v[1].notes[0]),
    Fault("BYO empty CSV", "pandas traceback", "error", lambda t: _byo(_write(t, "b.csv", "")), error=ValueError,
          match="is empty"),
    Fault("BYO file that does not exist", "traceback", "error", lambda t: _byo(t / "nowhere.csv"),
          error=FileNotFoundError, match="No file at"),
    # --- evaluation --------------------------------------------------------------------------------------
    Fault("a NaN true price", "MAE = nan, no error", "error",
          lambda t: _evaluate([10, 20], [{"price": float("nan")}, {"price": 5.0}], fallback=1.0),
          error=ValueError, match="no valid true price"),
    Fault("a prediction above 1e155", "OverflowError", "counted",
          lambda t: _evaluate([1e200, 100], ITEMS, fallback=50.0),
          lambda v: v.unparseable == 1 and v.mae == pytest.approx(20.0)),
    Fault("an unparseable answer with no fallback", "filled with the test median (a leak)", "error",
          lambda t: _evaluate([None, 100], ITEMS), error=ValueError, match="fallback"),
    Fault("one string as the predictions", "scored character by character", "error",
          lambda t: _evaluate("12", ITEMS), error=TypeError, match="one string"),
    Fault("one string as the prompts", "generated character by character", "error", lambda t: _prompts_string(),
          error=TypeError, match="one string"),
    Fault("a truncated results.json", "record_result crashed", "counted", _record_into_damaged,
          lambda v: [e["model"] for e in v[0]] == ["m"] and v[1] == ["results.json.damaged"]),
    # --- profiles and the training command line, checked at the door -------------------------------------
    Fault("profile n_test = -5", "test split overlapped train (a leak)", "error", lambda t: _profile(n_test=-5),
          error=_errors(), match="whole numbers >= 1"),
    Fault("profile setting with a typo (n_tests)", "ignored", "error", lambda t: _profile(n_tests=5),
          error=_errors(), match="Unknown profile setting"),
    Fault("split sizes that overlap", "silent overlap", "error", lambda t: _split_overlap(), error=ValueError,
          match="overlap"),
    Fault("--set r=true", "became a bool", "error", lambda t: _train_cli("r=true"), error=SystemExit,
          match="expected an integer"),
    Fault("--set gradient_checkpointing=maybe", "accepted", "error",
          lambda t: _train_cli("gradient_checkpointing=maybe"), error=SystemExit, match="expected true or false"),
    Fault("--set grad_accum=0", "crashed deep inside, after ~25 s of loading", "error",
          lambda t: _train_cli("grad_accum=0"), error=SystemExit, match="grad_accum=0"),
    Fault("--set max_length=0", "crashed deep inside", "error", lambda t: _train_cli("max_length=0"),
          error=SystemExit, match="max_length=0"),
    Fault("--set lr=1e-4 (no such setting)", "traceback", "error", lambda t: _train_cli("lr=1e-4"),
          error=SystemExit, match="NAME one of"),
    Fault("--set report_to=mlflow", "(new setting)", "error", lambda t: _train_cli("report_to=mlflow"),
          error=SystemExit, match="report_to"),
    # --- resume ------------------------------------------------------------------------------------------
    Fault("checkpoints exist, no --resume", "restarted from step 0 silently", "counted",
          lambda t: _resume(t, False), lambda v: v[0] is None and "Pass --resume" in v[1]),
    Fault("--resume with an incomplete newest checkpoint", "crashed", "counted", lambda t: _resume(t, True),
          lambda v: v[0].endswith("checkpoint-2")),
    # --- issue 29: classes rather than rows ---------------------------------------------------------------
    Fault("BYO texts in Russian (4 distinct products)", "3 of 4 dropped as duplicates (the key kept only a-z 0-9)",
          "counted", _russian_byo, lambda v: len(v[0]) == 4 and not v[1].dropped),
    Fault("a JSONL file with a byte-order mark", "lost its first record", "counted",
          lambda t: _read_jsonl(_write(t, "bom.jsonl", b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")),
          lambda v: len(v[0]) == 1 and not v[1].dropped),
    Fault("two processes recording results at once", "44 of 119 entries kept; a valid file moved aside as damaged",
          "counted", _two_writers,
          lambda v: len(v[0]) == 60 and not [n for n in v[1] if "damaged" in n or n.endswith(".tmp")]),
    Fault("record_result(profile='../../x')", "wrote outside the outputs folder", "error", _record_outside,
          error=ValueError, match="plain folder name"),
    Fault("an empty WORKBOOK_CACHE=", "cached in the current folder", "counted", _empty_cache_setting,
          lambda v: v[0] == v[1] / ".cache"),
    # --- models ------------------------------------------------------------------------------------------
    Fault("a missing local model path", "reported as 'not in the Hugging Face cache'", "error",
          lambda t: _local_model("./no/such/model"), error=_errors(), match="No model folder at"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.case for f in FAULTS])
def test_fault(fault, tmp_path, capsys):
    assert fault.outcome in ("counted", "error")
    if fault.outcome == "error":
        with pytest.raises(fault.error, match=fault.match):
            fault.run(tmp_path)
        return
    value = fault.run(tmp_path)
    assert fault.check(value), f"{fault.case}: unexpected result {value!r}"


def test_a_damaged_converted_model_is_a_clear_error(tmp_path, monkeypatch, embedded_dir):
    from helpers.models import ModelSetupError

    with pytest.raises(ModelSetupError, match="delete that folder"):
        _damaged_model(tmp_path, monkeypatch.setenv)


def test_no_row_is_a_silent_pass():
    """Every counted row checks a value; every error row names its message."""
    assert all(f.check is not None for f in FAULTS if f.outcome == "counted")
    assert all(f.match and f.error for f in FAULTS if f.outcome == "error")
    assert len({f.case for f in FAULTS}) == len(FAULTS)


def markdown() -> str:
    rows = ["| case | before | now |", "| --- | --- | --- |"]
    rows += [f"| {f.case} | {f.before} | {'handled and counted' if f.outcome == 'counted' else 'clear error: ' + f.match} |"
             for f in FAULTS]
    rows.append("| a damaged converted model cache | raw SafetensorError | clear error: delete that folder |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
    print(f"\n{len(FAULTS) + 1} rows: {sum(f.outcome == 'counted' for f in FAULTS)} handled and counted, "
          f"{sum(f.outcome == 'error' for f in FAULTS) + 1} clear errors; 0 raw tracebacks, 0 silent wrong values")
