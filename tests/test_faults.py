"""The fault table (issue 21): bad input is either handled and counted with a reason, or stopped by a clear
error that says what to do. Never a raw traceback from deep inside, never a silently wrong number."""

import gzip
import json

import pytest

from helpers.curation import MAX_CHARS, CurationReport, curate, load_byo, parse_record_price, read_jsonl
from helpers.evaluation import evaluate, load_results, record_result
from helpers.prices import parse_price_text

GOOD = {"title": "Acme cordless drill with two batteries and a charger, 20V", "price": 59.0, "parent_asin": "B1"}


def _jsonl(path, lines, gz=False):
    data = "\n".join(lines).encode("utf-8") + b"\n"
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --- reading raw files ----------------------------------------------------------------------------

def test_a_non_utf8_line_is_counted_and_the_rest_kept(tmp_path):
    path = tmp_path / "meta.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"title": "caf\xe9"}\n' + json.dumps(GOOD).encode() + b"\n")
    report = CurationReport()
    assert len(list(read_jsonl(path, report))) == 2
    assert report.read == 3 and report.dropped == {"not UTF-8 text": 1}


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path):
    whole = gzip.compress(("\n".join(json.dumps({**GOOD, "parent_asin": f"B{i}"}) for i in range(200)) + "\n").encode())
    path = tmp_path / "meta.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    report = CurationReport()
    records = list(read_jsonl(path, report))
    assert 0 < len(records) < 200 and "cut short" in report.notes[0]


@pytest.mark.parametrize("price, reason", [
    (int("9" * 401), "price out of range"),  # was an OverflowError ending the run
    ("9" * 401, "unparseable price"),
    (True, "unparseable price"),
    (float("nan"), "unparseable price"),
    (-5, "zero or negative price"),
    (None, "missing price"),
])
def test_absurd_prices_are_counted_with_a_reason(price, reason):
    assert parse_record_price(price) == (None, reason)


def test_conflicting_duplicates_say_which_price_was_kept():
    items, report = curate([GOOD, {**GOOD, "parent_asin": "B2"}, {**GOOD, "parent_asin": "B3", "price": 99.0}])
    assert [i.price for i in items] == [59.0]
    assert report.dropped == {"duplicate": 1, "duplicate text with another price (the first price is kept)": 1}


def test_long_text_without_a_tokenizer_is_cut_and_counted():
    items, report = curate([{**GOOD, "title": "word " * 30_000}])
    assert len(items[0].text) <= MAX_CHARS and sum(report.changed.values()) == 1


# --- bring your own file --------------------------------------------------------------------------

def test_byo_jsonl_with_a_truncated_line_keeps_the_others(tmp_path):
    path = _jsonl(tmp_path / "mine.jsonl", [json.dumps({"text": GOOD["title"], "price": 10}), '{"text": "cut',
                                           json.dumps({"text": GOOD["title"] + " kit", "price": 12})])
    items, report = load_byo(path)
    assert [i.price for i in items] == [10.0, 12.0] and report.dropped == {"malformed JSON": 1} and report.read == 3


def test_byo_json_true_is_not_a_dollar(tmp_path):
    path = _jsonl(tmp_path / "mine.jsonl", [json.dumps({"text": GOOD["title"], "price": True})])
    items, report = load_byo(path)
    assert items == [] and report.dropped == {"unparseable price": 1}


def test_byo_csv_rows_shifted_by_an_unquoted_comma_are_dropped_not_kept(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(f"text,price\n\"{GOOD['title']}\",10\nDrill, with case and bits for wood,12\n")
    items, report = load_byo(path)
    assert [i.price for i in items] == [10.0]
    assert report.dropped == {"wrong number of columns (unquoted comma in a text?)": 1} and report.read == 2


def test_byo_latin1_csv_is_read_with_a_note(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_bytes(f"text,price\n{GOOD['title'].replace(',', '')} caf\xe9 edition,10\n".encode("latin-1"))
    items, report = load_byo(path)
    assert "café" in items[0].text and "not UTF-8" in report.notes[0]


@pytest.mark.parametrize("content, message", [("", "is empty"), ("\n\n", "is empty")])
def test_byo_empty_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_byo(path)


def test_byo_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="No file at"):
        load_byo(tmp_path / "nowhere.csv")


# --- parsing what models write ----------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [("-1", None), ("-$5", None), ("12,3456", None), ("1.299,99", 1299.99),
                                         ("1e3", 1000.0)])
def test_model_answers_are_never_misread(text, value):
    assert parse_price_text(text) == value


# --- evaluation ------------------------------------------------------------------------------------

ITEMS = [{"price": 10.0}, {"price": 100.0}]


def test_a_missing_true_price_is_a_clear_error_not_a_nan_mae():
    with pytest.raises(ValueError, match="no valid true price"):
        evaluate([10, 20], [{"price": float("nan")}, {"price": 5.0}], "m", fallback=1.0)


def test_an_absurd_prediction_is_counted_not_a_crash():
    result = evaluate([1e200, 100], ITEMS, "m", fallback=50.0)
    assert result.unparseable == 1 and result.mae == pytest.approx(20.0)


def test_one_string_as_predictions_is_refused():
    with pytest.raises(TypeError, match="one string"):
        evaluate("12", ITEMS, "m")


def test_a_damaged_results_file_is_moved_aside_and_recording_goes_on(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text('[{"model": "x", "data')
    record_result(evaluate([10, 100], ITEMS, "m", profile="t"), path)
    assert [e["model"] for e in load_results("t", path)] == ["m"]
    assert list(tmp_path.glob("results.json.damaged-*")) and "moved to" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))


def test_prompts_as_one_string_are_refused():
    from helpers.inference import generate_completions, price_distributions

    with pytest.raises(TypeError, match="one string"):
        generate_completions(None, None, "How much?")
    with pytest.raises(TypeError, match="one string"):
        price_distributions(None, None, "How much?")


# --- sizes and settings, checked at the door ---------------------------------------------------------

@pytest.mark.parametrize("override", [{"n_test": -5}, {"n_train": 0}, {"n_val": "10"}, {"eval_items": True}])
def test_profile_sizes_are_checked_before_anything_runs(override):
    from helpers.profiles import ProfileError, get_profile

    with pytest.raises(ProfileError, match="whole numbers >= 1"):
        get_profile("smoke", **override)
    with pytest.raises(ProfileError, match="Unknown profile setting"):
        get_profile("smoke", n_tests=5)


def test_negative_split_sizes_never_overlap_the_splits():
    from helpers.curation import Item, split

    items = [Item(str(i), "A", "t", f"text {i}", 10.0) for i in range(20)]
    with pytest.raises(ValueError, match="overlap"):
        split(items, 10, 5, -3)


def test_the_training_command_line_refuses_bad_settings_before_loading(capsys):
    from helpers.training import main

    with pytest.raises(SystemExit, match="grad_accum=0"):
        main(["--profile", "smoke", "--set", "grad_accum=0"])
    with pytest.raises(SystemExit, match="expected true or false"):
        main(["--profile", "smoke", "--set", "gradient_checkpointing=maybe"])


# --- resuming -----------------------------------------------------------------------------------------

def test_resume_skips_an_incomplete_newest_checkpoint(tmp_path, capsys):
    from helpers.training import CHECKPOINT_FILES, checkpoints_in, last_complete_checkpoint

    for step, files in ((2, CHECKPOINT_FILES), (10, CHECKPOINT_FILES), (12, CHECKPOINT_FILES[:1])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("x")
    assert [p.name for p in checkpoints_in(tmp_path)] == ["checkpoint-2", "checkpoint-10", "checkpoint-12"]
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert "checkpoint-12 is incomplete" in capsys.readouterr().out
    assert last_complete_checkpoint(tmp_path / "empty") is None
