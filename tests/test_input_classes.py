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
