"""Bad input by class (issue 29), with properties checked by Hypothesis (fixed seed, bounded examples): texts in any
script survive deduplication, a byte-order mark loses nothing, concurrent writers keep every result, and no name
writes outside the outputs folder."""

import dataclasses
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

@pytest.mark.parametrize("module", ["helpers.baselines", "helpers.sweeps", "helpers.price_head", "helpers.training",
                                    "benchmarks.speed recipes"])
def test_every_entry_point_reads_the_profile_from_the_environment(module):
    run = subprocess.run([sys.executable, "-m", *module.split()], capture_output=True, text=True, cwd=ROOT,
                         env={**__import__("os").environ, "WORKBOOK_PROFILE": "no-such-profile", "HF_HUB_OFFLINE": "1"},
                         timeout=300)
    assert run.returncode == 2 and "Unknown profile 'no-such-profile'" in run.stderr, run.stderr[-800:]
    assert "Traceback" not in run.stderr  # the user's setting: a message, not a traceback


def test_a_notebook_selection_that_matches_nothing_is_an_error():
    from helpers.run_notebooks import run

    with pytest.raises(SystemExit, match="no notebook in notebooks/ starts with that"):
        run("smoke", ROOT / "notebooks", ["99"])


@pytest.mark.parametrize("name", ["../evil", "a/..", "you/../../x", "-owner/repo", "you/", "you/repo/extra"])
def test_a_repository_name_that_is_not_owner_slash_name_is_refused(name):
    from helpers.repository import set_repository

    with pytest.raises(SystemExit, match="expected owner/name"):
        set_repository(name)


# --- raw tracebacks from the library's own entry points become messages; nothing readable is lost ------------------

def test_a_json_array_file_is_read_as_its_records(tmp_path):
    from helpers.curation import CurationReport, read_jsonl

    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps([{"title": "a", "price": 1}, 5, {"title": "b", "price": 2}], indent=2))
    report = CurationReport()
    assert [r["title"] for r in read_jsonl(path, report)] == ["a", "b"]
    assert report.read == 3 and report.dropped == {"malformed JSON": 1} and "one JSON array" in report.notes[0]


def test_a_record_that_gives_one_key_two_values_is_dropped_and_counted(tmp_path):
    from helpers.curation import CurationReport, read_jsonl

    lines = ['{"title": "a", "price": 5, "price": 500}',  # which one? not guessed
             '{"title": "b", "price": 7, "price": 7}',  # the same value twice: nothing is ambiguous
             '{"title": "c", "price": 9, "details": {"Brand": "X", "Brand": "Y"}}',  # nested too
             '{"title": "d", "price": 11}']
    for path, text in ((tmp_path / "lines.jsonl", "\n".join(lines)), (tmp_path / "array.json", f"[{','.join(lines)}]")):
        path.write_text(text)
        report = CurationReport()
        assert [(r["title"], r["price"]) for r in read_jsonl(path, report)] == [("b", 7), ("d", 11)]
        assert report.read == 4 and report.dropped == {"a key given twice with different values": 2}


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@PROPERTY
@given(st.lists(st.fixed_dictionaries({"title": TEXT, "description": TEXT, "price": st.floats(0.01, 999.0)}),
                min_size=1, max_size=5), st.booleans(), st.booleans())
def test_any_unicode_record_survives_a_jsonl_round_trip(tmp_path_factory, records, ascii_only, gzipped):
    """Whatever script, emoji or control character a learner's export holds, what was written is what is read."""
    import gzip

    from helpers.curation import CurationReport, read_jsonl

    text = "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records)
    path = tmp_path_factory.mktemp("byo") / ("own.jsonl.gz" if gzipped else "own.jsonl")
    path.write_bytes(gzip.compress(text.encode("utf-8")) if gzipped else text.encode("utf-8"))
    report = CurationReport()
    assert list(read_jsonl(path, report)) == records
    assert report.read == len(records) and not report.dropped


@pytest.mark.parametrize("name, content, message", [
    ("fake.jsonl.gz", b'{"title": "a"}\n', "ends in .gz but is not gzip-compressed"),
    ("broken.jsonl", b'[{"title": "a"},', "starts like a JSON array but does not parse"),
])
def test_a_file_that_is_not_what_its_name_says_gets_a_message(tmp_path, name, content, message):
    from helpers.curation import load_byo

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_byo(path)


def test_a_folder_instead_of_a_file_gets_a_message(tmp_path):
    from helpers.curation import CurationReport, read_jsonl

    (tmp_path / "data.jsonl").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        list(read_jsonl(tmp_path / "data.jsonl", CurationReport()))


def test_a_very_long_csv_field_is_a_record_not_an_error(tmp_path):
    from helpers.curation import load_byo

    path = tmp_path / "long.csv"
    path.write_text(f'text,price\n"{"word " * 40_000}",12\n')  # 200,000 characters
    items, report = load_byo(path)
    assert [i.price for i in items] == [12.0] and report.read == 1


@pytest.mark.parametrize("prompts, batch_size, error, message", [
    (["a", None, "b"], 8, TypeError, "1 of 3 prompts are not text .*position 1"),
    (["a"], 0, ValueError, "batch_size=0"),
    (["a"], 2.5, ValueError, "batch_size=2.5"),
    ("a", 8, TypeError, "prompts is one string"),
])
def test_prompts_and_batch_sizes_are_checked_before_any_model_runs(prompts, batch_size, error, message):
    from helpers.inference import generate_completions, price_distributions
    from helpers.price_head import PriceScale, predict

    for call in (lambda: generate_completions(None, None, prompts, batch_size=batch_size),
                 lambda: price_distributions(None, None, prompts, batch_size=batch_size),
                 lambda: predict(None, None, prompts, PriceScale(1.0, 1.0), batch_size=batch_size)):
        with pytest.raises(error, match=message):
            call()


def test_an_over_long_prompt_is_cut_on_the_left_with_a_count(embedded_dir):
    from helpers.inference import generate_completions
    from helpers.models import load_base_model

    loaded = load_base_model(quantization="fp32", device="cpu")
    question = "\n\nPrice is $"
    long_prompt = "cable " * 3000 + question
    with pytest.warns(UserWarning, match="1 of 2 prompts are longer than 64 tokens"):
        cut = generate_completions(loaded.model, loaded.tokenizer, [long_prompt, "A cable" + question], max_new_tokens=3,
                                   batch_size=2, progress=False, max_prompt_tokens=64)
    tail = loaded.tokenizer.decode(loaded.tokenizer(long_prompt)["input_ids"][-64:])
    same = generate_completions(loaded.model, loaded.tokenizer, [tail], max_new_tokens=3, batch_size=1, progress=False)
    assert cut[0] == same[0] and loaded.tokenizer.truncation_side == "right"


# --- sizes: what cannot be given is refused up front, what is cut is counted ----------------------------------------

def test_a_training_size_the_split_cannot_give_is_refused():
    from datasets import Dataset

    from helpers.profiles import PROFILES
    from helpers.training import ConfigError, first_examples

    data = {"train": Dataset.from_dict({"x": list(range(200))}), "validation": Dataset.from_dict({"x": list(range(20))})}
    for config in (PROFILES["default"].train, PROFILES["default"].head):
        with pytest.raises(ConfigError, match=r"n_train=100,000, but the train split of profile p has 200 examples"):
            first_examples(data, dataclasses.replace(config, n_train=100_000, n_val=None), "p")
        train, val = first_examples(data, dataclasses.replace(config, n_train=150, n_val=None))
        assert (len(train), len(val)) == (150, 20)
        with pytest.warns(UserWarning, match="the train data passed in has 200 examples: all 200 are used"):
            train, _ = first_examples(data, dataclasses.replace(config, n_train=500, n_val=None), strict=False)
        assert len(train) == 200  # data a caller passed in: the preset size is a cap, said out loud


def test_examples_longer_than_max_length_are_counted(embedded_dir):
    from datasets import Dataset

    from helpers.models import load_tokenizer
    from helpers.training import warn_over_length

    tokenizer = load_tokenizer(None)
    rows = Dataset.from_dict({"prompt": ["short one, Price is $", "word " * 300 + "Price is $"], "completion": ["5.00"] * 2})
    with pytest.warns(UserWarning, match="1 of 2 training examples are longer than max_length=64"):
        assert warn_over_length(rows, tokenizer, 64) == 1


def test_more_generated_training_items_than_the_cap_are_refused_before_any_work():
    from helpers.data import MAX_EXTRA_ITEMS, extra_training_items

    with pytest.raises(ValueError, match=f"the generator makes at most {MAX_EXTRA_ITEMS:,} more"):
        extra_training_items(MAX_EXTRA_ITEMS + 1, [], None, None)


@pytest.mark.parametrize("damage", ["truncate weights", "truncate config", "remove weights"])
def test_a_damaged_adapter_is_named_before_any_model_loads(tmp_path, damage):
    import shutil

    from helpers.models import check_adapter_files
    from helpers.price_head import SHIPPED_HEAD

    folder = tmp_path / "head"
    shutil.copytree(SHIPPED_HEAD, folder)
    assert check_adapter_files(folder) == folder
    weights, config = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    if damage == "remove weights":
        weights.unlink()
        error, message = FileNotFoundError, "adapter_model.safetensors is missing"
    else:
        path = weights if "weights" in damage else config
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        error, message = ValueError, f"{path.name} in head/ is damaged"
    with pytest.raises(error, match=message):
        check_adapter_files(folder)


# --- settings that used to pass the check and fail a minute later, after the model had loaded -----------------------

def test_a_run_that_would_fail_after_loading_is_refused_at_the_door(tmp_path, embedded_dir):
    from helpers.profiles import get_profile
    from helpers.training import ConfigError, check_run

    profile = get_profile("smoke")
    config = profile.train
    check_run(profile, config, tmp_path / "run", resume=False)  # a good run passes
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = dataclasses.replace(config, target_modules=("q_proj", "qkv"), report_to="wandb" if
                              __import__("importlib").util.find_spec("wandb") is None else "none")
    with pytest.raises(ConfigError) as caught:
        check_run(profile, bad, a_file, resume=False)
    message = str(caught.value)
    assert "is a file" in message and "target_modules ['qkv'] name no linear layer" in message and "q_proj" in message
    if bad.report_to == "wandb":
        assert "the wandb package is not installed" in message


def test_a_resume_with_other_settings_says_what_differs(tmp_path, embedded_dir):
    from helpers.profiles import get_profile
    from helpers.training import ConfigError, check_run, train

    profile = get_profile("smoke")
    config = dataclasses.replace(get_profile("smoke").train, max_steps=2, eval_steps=2, save_steps=2)
    train(profile, config, tmp_path / "run")
    check_run(profile, dataclasses.replace(config, max_steps=4), tmp_path / "run", resume=True)  # more steps: fine
    changed = dataclasses.replace(config, r=8, alpha=16, learning_rate=config.learning_rate * 2)
    with pytest.raises(ConfigError, match=r"checkpoint-2 with other settings \(r: checkpoint 4, asked 8; alpha: "
                                          r"checkpoint 8, asked 16; learning_rate"):
        check_run(profile, changed, tmp_path / "run", resume=True)


def test_a_duplicated_column_is_refused_and_a_missing_category_is_not_nan(tmp_path):
    import pandas as pd

    from helpers.curation import load_byo

    text = "Stainless steel kettle with a keep-warm plate and a two-litre jug, cordless"
    path = tmp_path / "twice.csv"
    path.write_text(f'text,price,price\n"{text}",10,99\n')
    with pytest.raises(ValueError, match=r"\['price'\] appear more than once"):
        load_byo(path)
    frame = pd.DataFrame({"text": [f"{text} {i}" for i in range(3)], "price": [5.0, 6.0, 7.0],
                          "cat": ["Kitchen", None, float("nan")]})
    frame.to_parquet(tmp_path / "cats.parquet")
    items, _ = load_byo(tmp_path / "cats.parquet", category_column="cat")
    assert [i.category for i in items] == ["Kitchen", "Custom", "Custom"]


def test_the_census_of_bad_inputs_finds_nothing_wrong_lost_or_hung(tmp_path):
    """benchmarks/bad_input_census.py: 38 cases by class (its README has the before/after table)."""
    out = tmp_path / "census.json"
    run = subprocess.run([sys.executable, "benchmarks/bad_input_census.py", "--json", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    bad = [r for r in rows if r["outcome"] not in ("handled", "clear error")]
    assert len(rows) >= 38 and not bad, bad


def test_conversational_examples_are_measured_through_the_chat_template(embedded_dir):
    from datasets import Dataset

    from helpers.models import load_tokenizer
    from helpers.training import warn_over_length

    tokenizer = load_tokenizer(None)
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "word " * n}],
                               "completion": [{"role": "assistant", "content": "5.00"}]} for n in (5, 300)])
    with pytest.warns(UserWarning, match="1 of 2 training examples are longer than max_length=128"):
        assert warn_over_length(rows, tokenizer, 128) == 1
