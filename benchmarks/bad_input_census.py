"""A census of bad inputs by class (issue 29): each case is run and its outcome sorted into
handled (the right result, counted), clear error (an error that says what to do), traceback (a library error
nobody wrote for the user), wrong (a silently wrong or lost result) or no check (an older version without the
function that checks it: the case fails later, after the model has loaded).

The cases are new ones, written for the classes of issue 29, none taken from its list or from the fault table.
Run it in any checkout to compare versions:  python benchmarks/bad_input_census.py [--json out.json]
It needs no model and no network; every case is fast.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))
CLEAR = ("ValueError", "TypeError", "ConfigError", "SystemExit", "FileNotFoundError", "ProfileError")


def _byo(tmp: Path, name: str, content: str | bytes):
    from helpers.curation import load_byo

    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return load_byo(path)


def _prices(items):
    return sorted(round(i.price, 2) for i in items[0])


TEXT = "Stainless steel kettle with a keep-warm plate and a two-litre jug, cordless"


def cases(tmp: Path):
    """(class, case, call, check): check(result) is True when the result is right."""
    from helpers.prices import parse_price_text as p

    def price(text, want):
        return ("misread", f"answer {text!r}", lambda: p(text), lambda v: v == want)

    yield price("£2 499.50", 2499.5)
    yield price("EUR 1.050,25", 1050.25)
    yield price("19,95 €", 19.95)
    yield price("2.3K", 2300.0)
    yield price("US$ 79", 79.0)
    yield price("Part no. 4410, price $35", 35.0)
    yield price("SKU 88213", None)
    yield price("Pack of 6 for $14.99", 14.99)
    yield price("A 1500W heater", None)
    yield price("It weighs 12 lbs", None)
    yield ("lost", "BYO texts in Greek and Hindi", lambda: _byo(tmp, "g.csv", "text,price\n" + "\n".join(
        f'"{w} {w} {w} προϊόν με αρκετά μεγάλη περιγραφή εδώ για να μείνει",{10 + i}' for i, w in
        enumerate(["κατσαρόλα", "τηγάνι", "μαχαίρι", "πιάτο"]))), lambda v: len(v[0]) == 4)
    yield ("lost", "BYO texts in Devanagari", lambda: _byo(tmp, "h.csv", "text,price\n" + "\n".join(
        f'"{w} {w} {w} एक लंबा विवरण जो काफी लंबा है ताकि यह रहे",{10 + i}' for i, w in
        enumerate(["केतली", "कड़ाही", "चाकू"]))), lambda v: len(v[0]) == 3)
    yield ("lost", "JSONL with a BOM and CRLF line ends", lambda: _byo(
        tmp, "bom.jsonl", b"\xef\xbb\xbf" + "\r\n".join(json.dumps({"text": f"{TEXT} {i}", "price": 10 + i})
                                                      for i in range(3)).encode()), lambda v: len(v[0]) == 3)
    yield ("lost", "a pretty-printed JSON array", lambda: _byo(tmp, "arr.jsonl", json.dumps(
        [{"text": f"{TEXT} {i}", "price": 5 + i} for i in range(4)], indent=2)), lambda v: len(v[0]) == 4)
    yield ("misread", "BYO price '€1.299,00' (above the filter)", lambda: _byo(
        tmp, "eu.csv", f'text,price\n"{TEXT}","€1.299,00"\n'), lambda v: v[1].dropped == {"price out of range": 1})
    yield ("misread", "BYO price '12 USD'", lambda: _byo(tmp, "usd.csv", f'text,price\n"{TEXT}",12 USD\n'),
           lambda v: _prices(v) == [12.0])
    yield ("misread", "BYO price '0.2k'", lambda: _byo(tmp, "k.csv", f'text,price\n"{TEXT}",0.2k\n'),
           lambda v: _prices(v) == [200.0])
    yield ("misread", "BYO price 'from $5'", lambda: _byo(tmp, "from.csv", f'text,price\n"{TEXT}",from $5\n'),
           lambda v: v[1].dropped == {"unparseable price": 1})

    def evaluate(predictions, **kw):
        from helpers.evaluation import evaluate as ev

        return ev(predictions, [{"price": 10.0}, {"price": 20.0}], "m", profile="census", **kw)

    yield ("misread", "predictions as a Series indexed 1, 0", lambda: evaluate(
        __import__("pandas").Series([20.0, 10.0], index=[1, 0])), lambda v: v.mae == 0.0)
    yield ("misread", "fallback=inf", lambda: evaluate(["?", 20.0], fallback=float("inf")),
           lambda v: v.mae < 1e9)

    def settings(**overrides):
        from helpers.profiles import get_profile
        from helpers.training import config_for

        return config_for(get_profile("smoke"), **overrides)

    yield ("setting", "epochs=nan", lambda: settings(epochs=float("nan")), lambda v: False)
    yield ("setting", "seed=2**40", lambda: settings(seed=2**40), lambda v: False)
    yield ("setting", "optimizer='adam_w'", lambda: settings(optimizer="adam_w"), lambda v: False)
    yield ("setting", "save_steps=3 with eval_steps=2", lambda: settings(save_steps=3, eval_steps=2),
           lambda v: False)
    yield ("setting", "max_steps=-5", lambda: settings(max_steps=-5), lambda v: False)

    def run_check(**overrides):
        from dataclasses import replace

        from helpers.profiles import get_profile
        from helpers.training import check_run, config_for

        profile = get_profile("smoke")
        return check_run(profile, replace(config_for(profile), **overrides), tmp / "file", resume=False)

    (tmp / "file").write_text("x")
    yield ("setting", "--output-dir that is a file", lambda: run_check(), lambda v: False)
    yield ("setting", "target_modules=('attn',)", lambda: run_check(target_modules=("attn",)), lambda v: False)

    def cli(*args, env=None):
        run = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=120)
        if run.returncode == 0:
            return run.stdout
        tail = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""
        if "Traceback" in run.stderr:
            raise RuntimeError(tail)  # a traceback, whatever its message
        raise SystemExit(tail)  # a one-line message and a non-zero exit

    yield ("target", "sweeps with WORKBOOK_PROFILE=nope", lambda: cli("helpers.sweeps", env={"WORKBOOK_PROFILE": "nope"}),
           lambda v: False)
    yield ("target", "run_notebooks --only 42", lambda: cli("helpers.run_notebooks", "--only", "42"), lambda v: False)
    yield ("target", "repository set 'me/../../etc'", lambda: __import__("helpers.repository", fromlist=["x"])
           .set_repository("me/../../etc"), lambda v: False)
    yield ("target", "outputs_dir('..')", lambda: __import__("helpers.paths", fromlist=["x"]).outputs_dir(".."),
           lambda v: False)

    def extra(n):
        from helpers.data import extra_training_items

        return extra_training_items(n, [], None, None)

    yield ("unbounded", "10 million generated training items", lambda: extra(10_000_000), lambda v: False)

    def prompts(prompts, batch_size=8):
        from helpers.inference import generate_completions

        return generate_completions(None, None, prompts, batch_size=batch_size)

    yield ("traceback", "a NaN among the prompts", lambda: prompts(["a", float("nan")]), lambda v: False)
    yield ("traceback", "batch_size=-1", lambda: prompts(["a"], batch_size=-1), lambda v: False)
    yield ("traceback", "a .csv.gz that is plain text", lambda: _byo(tmp, "x.csv.gz", f"text,price\n{TEXT},5\n"),
           lambda v: False)
    yield ("traceback", "read_jsonl on a folder", lambda: __import__("helpers.curation", fromlist=["x"]).read_jsonl(
        tmp, __import__("helpers.curation", fromlist=["x"]).CurationReport()).__next__(), lambda v: False)
    yield ("traceback", "a CSV field of 300,000 characters", lambda: _byo(
        tmp, "long.csv", f'text,price\n"{"long " * 60_000}",9\n'), lambda v: len(v[0]) == 1)
    (tmp / "adapter").mkdir()
    (tmp / "adapter" / "adapter_config.json").write_text("{}")
    (tmp / "adapter" / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    yield ("traceback", "an adapter whose weights are cut short", lambda: __import__(
        "helpers.models", fromlist=["x"]).check_adapter_files(tmp / "adapter"), lambda v: False)


class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung


def outcome(call, check, seconds: int = 30) -> str:
    import signal

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        result = call()
    except _Hung:
        return f"hung ({seconds} s)"
    except BaseException as error:  # noqa: BLE001 - sorting every outcome is the point
        name = type(error).__name__
        if name in ("ImportError", "AttributeError") and "helpers" in str(error):
            return "no check"  # this version has no such check: the case fails later, after the model loads
        if name in CLEAR and str(error):
            return "clear error"
        return "traceback"
    finally:
        signal.alarm(0)
    try:
        return "handled" if check(result) else "wrong"
    except Exception:
        return "wrong"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ["WORKBOOK_OUTPUTS"] = tempfile.mkdtemp()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cls, case, call, check in cases(Path(tmp)):
            rows.append({"class": cls, "case": case, "outcome": outcome(call, check)})
            print(f"{cls:<10} {rows[-1]['outcome']:<12} {case}", flush=True)
    by_class = {}
    for row in rows:
        by_class.setdefault(row["class"], Counter())[row["outcome"]] += 1
    print("\n" + "\n".join(f"{cls}: {dict(counts)}" for cls, counts in by_class.items()))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "by_class": {k: dict(v) for k, v in by_class.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
