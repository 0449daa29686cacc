"""Bad input by class (issue 29), with properties checked by Hypothesis (fixed seed, bounded examples): texts in any
script survive deduplication, a byte-order mark loses nothing, concurrent writers keep every result, and no name
writes outside the outputs folder."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.curation import _normalized

ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(derandomize=True, max_examples=150, deadline=None)
WORDS = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lo", "Nd"]), min_size=1, max_size=12)


@PROPERTY
@given(st.lists(WORDS, min_size=1, max_size=6))
def test_the_duplicate_key_keeps_the_words_of_any_script(words):
    text = " - ".join(words)
    key = _normalized(text)
    assert _normalized(key) == key  # a key is its own key
    assert key == " ".join(k for k in map(_normalized, words) if k)  # every word's own key kept, in order
    assert key or not any(map(_normalized, words))


LETTERS = st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lo"]), min_size=1, max_size=12)  # (digits mixed
# with letters look like part numbers, which cleaning scrubs on purpose)


@PROPERTY
@given(st.lists(LETTERS, min_size=2, max_size=8, unique_by=lambda w: _normalized(w)))
def test_distinct_texts_in_any_script_all_survive_curation(words):
    from helpers.curation import curate

    words = [w for w in words if _normalized(w)]
    records = [{"title": f"{w} {w} {w} product with a long enough description", "price": 10.0 + i}
               for i, w in enumerate(words)]
    items, report = curate(records)
    assert len(items) == len(words), report.dropped


def test_four_russian_products_stay_four(tmp_path):
    from helpers.curation import load_byo

    rows = ["Дрель аккумуляторная, два аккумулятора и зарядное устройство", "Кресло офисное с поясничной опорой и подлокотниками",
            "Набор барабанных палочек, клен, пять пар", "Пусковое устройство для дизельных двигателей"]
    path = tmp_path / "ru.csv"
    path.write_text("text,price\n" + "\n".join(f'"{t}",{10 + i}' for i, t in enumerate(rows)) + "\n")
    items, report = load_byo(path)
    assert len(items) == 4 and not report.dropped


def test_a_byte_order_mark_loses_no_record(tmp_path):
    from helpers.curation import CurationReport, read_jsonl

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"title": "a", "price": 1}\n{"title": "b", "price": 2}\n')
    report = CurationReport()
    assert [r["title"] for r in read_jsonl(path, report)] == ["a", "b"] and not report.dropped


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from helpers.evaluation import evaluate, record_result
    path, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    items = [{"id": "x", "price": 10.0}, {"id": "y", "price": 20.0}]
    for i in range(n):
        record_result(evaluate([11.0, 19.0], items, f"{who} {i}", profile="t"), path)
""")


def test_two_processes_recording_at_once_keep_every_result(tmp_path):
    path = tmp_path / "results.json"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, "40"], cwd=ROOT)
               for who in ("notebook", "cli")]
    assert all(w.wait(300) == 0 for w in writers)
    entries = json.loads(path.read_text())
    assert len(entries) == 80 and len({e["model"] for e in entries}) == 80
    assert not list(tmp_path.glob("results.json.damaged*")) and not list(tmp_path.glob("*.tmp"))


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(1, 500)), min_size=1, max_size=12))
def test_the_store_keeps_the_last_result_of_each_model(tmp_path_factory, writes):
    from helpers.evaluation import evaluate, load_results, record_result

    path = tmp_path_factory.mktemp("store") / "results.json"
    items = [{"id": "x", "price": 10.0}]
    for model, prediction in writes:
        record_result(evaluate([prediction], items, model, profile="t"), path)
    last = dict(writes)
    assert {e["model"]: round(e["mae"], 6) for e in load_results("t", path)} == \
        {m: round(abs(p - 10.0), 6) for m, p in last.items()}


@PROPERTY
@given(st.text(min_size=0, max_size=20))
def test_no_name_writes_outside_the_outputs_folder(tmp_path_factory, name):
    import os

    from helpers.paths import outputs_dir

    root = tmp_path_factory.mktemp("outputs")
    os.environ["WORKBOOK_OUTPUTS"] = str(root)
    try:
        try:
            path = outputs_dir("smoke", name)
        except (ValueError, OSError):
            return  # refused (or a name the file system itself refuses)
        assert root.resolve() in path.resolve().parents
    finally:
        del os.environ["WORKBOOK_OUTPUTS"]


def test_escaping_names_are_refused_and_an_empty_setting_means_unset(monkeypatch, tmp_path):
    from helpers.paths import REPO_ROOT, cache_dir, outputs_dir

    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path))
    for bad in ("../../x", "/etc", "a/b", "..", ""):
        with pytest.raises(ValueError, match="plain folder name"):
            outputs_dir(bad)
    monkeypatch.setenv("WORKBOOK_CACHE", "")
    assert cache_dir() == REPO_ROOT / ".cache"


# --- the price reader: one grammar for a model's answer, a record's field and the BYO loader -----------------------

def _grouped(dollars: int, sep: str) -> str:
    return f"{dollars:,}".replace(",", sep)


WRITERS = {  # how people write a price of `cents`; every one must read back to the same cents
    "us": lambda c: f"${_grouped(c // 100, ',')}.{c % 100:02d}",
    "us, no mark": lambda c: f"{_grouped(c // 100, ',')}.{c % 100:02d}",
    "european": lambda c: f"{_grouped(c // 100, '.')},{c % 100:02d} €",
    "space groups, decimal comma": lambda c: f"{_grouped(c // 100, ' ')},{c % 100:02d} €",
    "no-break space groups": lambda c: f"€{_grouped(c // 100, chr(0xA0))},{c % 100:02d}",
    "narrow space groups, point": lambda c: f"{_grouped(c // 100, chr(0x202F))}.{c % 100:02d} USD",
    "code before": lambda c: f"USD {c // 100}.{c % 100:02d}",
    "word after": lambda c: f"{c // 100}.{c % 100:02d} dollars",
    "pound": lambda c: f"£{c // 100}.{c % 100:02d}",
}
CENTS = st.integers(min_value=1, max_value=99_999_999)


@PROPERTY
@given(CENTS, st.sampled_from(sorted(WRITERS)))
def test_any_price_in_any_supported_format_reads_back_to_the_same_cents(cents, style):
    from helpers.prices import parse_price_field, parse_price_text

    written = WRITERS[style](cents)
    value, reason = parse_price_field(written)
    assert reason is None and round(value * 100) == cents, (written, value, reason)
    for sentence in (f"The price is {written}.", f"{written}\n\nThe product is", f"Model 3000 costs {written}"):
        if style.endswith("no mark") and sentence.startswith("Model"):
            continue  # an unmarked number after a model number is refused: tested below
        read = parse_price_text(sentence)
        assert read is not None and round(read * 100) == cents, (sentence, read)


@PROPERTY
@given(st.integers(min_value=1, max_value=9_999), st.sampled_from(["k", "K", " k"]), st.sampled_from(["", "$", "€"]))
def test_a_thousands_suffix_multiplies(tenths, suffix, mark):
    from helpers.prices import parse_price_text

    written = f"{mark}{tenths / 10:g}{suffix}"
    assert round(parse_price_text(written) * 100) == tenths * 10_000, written  # tenths of a thousand dollars


@PROPERTY
@given(st.integers(min_value=1, max_value=99_999), st.sampled_from(["Model", "model no.", "SKU", "#", "pack of", "Size"]),
       st.integers(min_value=1, max_value=9_999))
def test_a_labelled_number_is_never_the_price(number, label, price):
    from helpers.prices import parse_price_text

    assert parse_price_text(f"{label} {number}") is None  # refused, not guessed
    assert parse_price_text(f"{label} {number} costs {price}") is None
    assert parse_price_text(f"{label} {number} costs ${price}") == price


@pytest.mark.parametrize("text", ["20V drill", "300ml", "15%", "5 kg", "12 GB", "2 x 3", "RTX3000"])
def test_a_quantity_is_never_the_price(text):
    from helpers.prices import parse_price_text

    assert parse_price_text(text) is None


@pytest.mark.parametrize("field, reason", [("from $5", "unparseable price"), ("$5 - $9", "unparseable price"),
                                           ("N/A", "unparseable price"), ("-€5", "zero or negative price"),
                                           ("12,3456", "unparseable price"), ("5 kg", "unparseable price")])
def test_a_field_that_is_not_one_price_is_refused_with_its_reason(field, reason):
    from helpers.curation import parse_record_price

    assert parse_record_price(field) == (None, reason)


def test_the_byo_loader_reads_prices_in_every_format(tmp_path):
    from helpers.curation import load_byo

    text = "Cordless drill with two batteries, a charger and a case, for wood and metal"
    rows = ['"1 299,00 €"', '"$1,299.00"', '"1.299,00 €"', "1.3k", "USD 12.50", "12.5 dollars", "from $5"]
    path = tmp_path / "prices.csv"
    path.write_text("text,price\n" + "\n".join(f'"{text} variant {i}",{p}' for i, p in enumerate(rows)) + "\n")
    items, report = load_byo(path)
    assert [i.price for i in items] == [12.5, 12.5]  # 1,299 and 1,300 are above the price filter's bound
    assert report.dropped == {"price out of range": 4, "unparseable price": 1}


# --- wrong target, no word: every entry point reads the same profile; names and selections that match nothing ------

@pytest.mark.parametrize("module", ["baselines", "sweeps", "price_head", "training", "benchmark recipes"])
def test_every_entry_point_reads_the_profile_from_the_environment(module):
    run = subprocess.run([sys.executable, "-m", *f"helpers.{module}".split()], capture_output=True, text=True, cwd=ROOT,
                         env={**__import__("os").environ, "WORKBOOK_PROFILE": "no-such-profile", "HF_HUB_OFFLINE": "1"},
                         timeout=300)
    assert run.returncode != 0 and "Unknown profile 'no-such-profile'" in run.stderr, run.stderr[-800:]


def test_a_notebook_selection_that_matches_nothing_is_an_error():
    from helpers.run_notebooks import run

    with pytest.raises(SystemExit, match="no notebook in notebooks/ starts with that"):
        run("smoke", ROOT / "notebooks", ["99"])


@pytest.mark.parametrize("name", ["../evil", "a/..", "you/../../x", "-owner/repo", "you/", "you/repo/extra"])
def test_a_repository_name_that_is_not_owner_slash_name_is_refused(name):
    from helpers.repository import set_repository

    with pytest.raises(SystemExit, match="expected owner/name"):
        set_repository(name)
