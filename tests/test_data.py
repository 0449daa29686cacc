import gzip
import json

import pytest

from helpers import catalog
from helpers.curation import (
    MAX_PRICE,
    CurationReport,
    Item,
    balance,
    clean,
    curate,
    fit_to_budget,
    load_amazon,
    load_byo,
    make_prompt,
    parse_record_price,
    read_jsonl,
    split,
    to_dataset_dict,
)


def test_generator_is_byte_for_byte_reproducible(tmp_path):
    a = catalog.write_catalog(tmp_path / "a.jsonl.gz", seed=7, n=300)
    b = catalog.write_catalog(tmp_path / "b.jsonl.gz", seed=7, n=300)
    c = catalog.write_catalog(tmp_path / "c.jsonl.gz", seed=8, n=300)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_shipped_catalog_matches_the_generator(tmp_path):
    rebuilt = catalog.write_catalog(tmp_path / "catalog.jsonl.gz")
    assert rebuilt.read_bytes() == catalog.CATALOG_PATH.read_bytes(), "run `python -m helpers.catalog` and commit"


def test_oracle_knows_every_listed_product():
    records = [r for r in catalog.generate_records(seed=3, n=500) if isinstance(r, dict)]
    oracle = catalog.oracle_prices(seed=3, n=500)
    assert {r["parent_asin"] for r in records} == set(oracle)
    clean_prices = [
        (r["price"], oracle[r["parent_asin"]]) for r in records if isinstance(r["price"], float) and r["price"] > 1
    ]
    ratios = sorted(p / e for p, e in clean_prices if p < 999)
    assert 0.8 < ratios[len(ratios) // 2] < 1.25  # listed prices scatter around the expected price


def _record(**overrides):
    base = {
        "main_category": "Electronics",
        "title": "Acme 6 ft Braided HDMI Cable for TVs",
        "description": ["A sturdy cable &amp; connectors.<br>Gold plated."],
        "features": ["4K", "8K"],
        "details": {"Brand": "Acme", "Item model number": "ZX12345-K"},
        "price": 12.99,
        "parent_asin": "B0TEST0001",
    }
    return {**base, **overrides}


def test_every_kind_of_bad_record_is_counted(tmp_path):
    lines = [
        json.dumps(_record()),
        json.dumps(_record(price=None, parent_asin="B1")),
        json.dumps(_record(price="N/A", parent_asin="B2")),
        json.dumps(_record(price="from $5.00", parent_asin="B3")),
        json.dumps(_record(price=0, parent_asin="B4")),
        json.dumps(_record(price=-3.5, parent_asin="B5")),
        json.dumps(_record(price=99999.0, parent_asin="B6")),
        json.dumps(_record(price=0.01, parent_asin="B7")),
        json.dumps(_record(title="Cable", description=[], features=[], details={}, parent_asin="B8")),
        json.dumps(_record(parent_asin="B9")),  # same text as the first: a duplicate
        '{"main_category": "Electronics", "title": "cut sh',
        "[1, 2, 3]",
        json.dumps(_record(price="$1,299.00", title="Acme 65 inch OLED Smart TV", parent_asin="B10")),
    ]
    path = tmp_path / "raw.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n\n")
    report = CurationReport()
    items, report = curate(read_jsonl(path, report), None, report)
    assert report.read == 13
    assert dict(report.dropped) == {
        "missing price": 1,
        "unparseable price": 2,
        "zero or negative price": 2,
        "price out of range": 3,
        "text too short": 1,
        "duplicate": 1,
        "malformed JSON": 2,
    }
    assert [i.id for i in items] == ["B0TEST0001"]  # the $1,299 TV is out of range: dropped, counted
    assert report.kept == 1 and report.read == report.kept + sum(report.dropped.values())
    assert "dropped 12" in report.summary()


def test_parse_price():
    assert parse_record_price("$1,299.99") == (None, "price out of range")
    assert parse_record_price("$19.99") == (19.99, None)
    assert parse_record_price(" 7 ") == (7.0, None)
    assert parse_record_price(MAX_PRICE) == (MAX_PRICE, None)
    assert parse_record_price(float("nan"))[1] == "unparseable price"
    assert parse_record_price(True)[1] == "unparseable price"
    assert parse_record_price("None")[1] == "missing price"


def test_cleaning_scrubs_html_and_codes():
    text = clean("Acme&nbsp;Drill &amp;amp; Case<br/>Model XJ4409B-K fits 20V &quot;pro&quot; SKU 88A2291")
    assert "&" not in text.replace("& ", "") and "<" not in text
    assert "XJ4409B-K" not in text and "88A2291" not in text
    assert "20V" in text and '"pro"' in text  # short specs stay


def test_token_budget(embedded_dir):
    from helpers.models import load_tokenizer

    tok = load_tokenizer()
    text, n = fit_to_budget("word " * 500, tok, max_tokens=50)
    assert n <= 50 and len(tok(text, add_special_tokens=False)["input_ids"]) == n
    assert fit_to_budget("short text", tok, 50)[0] == "short text"


def _items(n):
    return [Item(f"id{i}", "Toys & Games", f"t{i}", f"text number {i}", 1.0 + i % 700) for i in range(n)]


def test_splits_are_disjoint_deterministic_and_stable():
    items = _items(300)
    a = split(items, 200, 40, 40)
    b = split(list(reversed(items)), 200, 40, 40)
    assert {k: [i.id for i in v] for k, v in a.items()} == {k: [i.id for i in v] for k, v in b.items()}
    ids = [set(i.id for i in part) for part in a.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    smaller = split(items, 100, 40, 40)
    assert [i.id for i in smaller["test"]] == [i.id for i in a["test"]]  # test set does not move
    with pytest.raises(ValueError, match="only 300"):
        split(items, 300, 40, 40)


def test_prompt_format_is_exact():
    item = Item("x", "Appliances", "t", "A blender", 123.4)
    assert item.prompt == "How much does this cost to the nearest dollar?\n\nA blender\n\nPrice is $"
    assert item.completion == "123.00"
    assert [Item("y", "a", "t", "b", p).completion for p in (0.5, 2.5, 2.49, 999.49)] == [
        "1.00",
        "3.00",
        "2.00",
        "999.00",
    ]
    assert make_prompt("x").endswith("Price is $")
    ds = to_dataset_dict({"train": [item]})
    assert ds["train"][0]["prompt"] + ds["train"][0]["completion"] == item.prompt + "123.00"


def test_balance_caps_each_price_band():
    items = [Item(str(i), "c", "t", f"x{i}", 5.0) for i in range(80)] + _items(120)
    report = CurationReport()
    kept = balance(items, max_share=0.3, report=report)
    cheap = sum(1 for i in kept if i.price < 10)
    assert cheap <= int(0.3 * len(items)) and report.balanced_out == len(items) - len(kept)
    assert [i.id for i in kept] == [i.id for i in balance(items, max_share=0.3)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_bring_your_own_file_with_renamed_columns(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "listing": ["Steel hammer with fiberglass handle, 16 oz", "Cordless drill 20V with two batteries", "x"],
            "usd": [14.5, None, 30.0],
            "dept": ["Tools", "Tools", "Tools"],
        }
    )
    path = tmp_path / f"mine{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
        ".parquet": lambda: frame.to_parquet(path),
    }[suffix]()
    items, report = load_byo(path, text_column="listing", price_column="usd", category_column="dept")
    assert [(i.text, i.price, i.category) for i in items] == [(frame.listing[0], 14.5, "Tools")]
    assert report.read == 3 and report.dropped == {"missing price": 1, "text too short": 1}
    with pytest.raises(ValueError, match="text_column"):
        load_byo(path, text_column="description", price_column="usd")


def test_amazon_loader_reads_raw_files_through_the_same_pipeline(tmp_path):
    fixture = tmp_path / "meta_Appliances.jsonl"
    fixture.write_text(
        "\n".join(
            [
                json.dumps(_record(main_category="Appliances")),
                "not json",
                json.dumps(_record(title="Ice maker, 26 lbs per day, stainless", parent_asin="B2", price="55.00")),
            ]
        )
        + "\n"
    )
    asked = []

    def fake_download(repo_id, filename, repo_type):
        asked.append((repo_id, filename, repo_type))
        return str(fixture)

    items, report = load_amazon(["Appliances"], download=fake_download)
    assert asked == [("McAuley-Lab/Amazon-Reviews-2023", "raw/meta_categories/meta_Appliances.jsonl", "dataset")]
    assert [i.price for i in items] == [12.99, 55.0] and report.dropped == {"malformed JSON": 1}
    with pytest.raises(ValueError, match="Unknown category"):
        load_amazon(["Garden"], download=fake_download)

    def offline(**kwargs):
        raise OSError("offline")

    with pytest.raises(RuntimeError, match="network access"):
        load_amazon(["Automotive"], download=lambda **kw: offline(**kw))


def test_load_splits_builds_caches_and_reports(tmp_path, monkeypatch, embedded_dir):
    from helpers.data import load_splits, noise_floor
    from helpers.profiles import get_profile

    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path / "out"))
    profile = get_profile("smoke")
    data, report = load_splits(profile)
    assert {k: len(v) for k, v in data.items()} == {"test": 40, "validation": 40, "train": 200}
    assert report["kept"] >= 25_000 and report["dropped_total"] > 0 and report["splits"]["train"] == 200
    assert set(data["train"].column_names) >= {"prompt", "completion", "price", "category", "id"}
    assert (tmp_path / "out" / "smoke" / "curation_report.json").is_file()
    again, _ = load_splits(profile)  # from the cache now
    assert again["test"]["id"] == data["test"]["id"]
    cached = next((tmp_path / "cache" / "datasets").glob("smoke-*"))
    (cached / "curation_report.json").unlink()  # a cache cut short: rebuilt, not a traceback
    rebuilt, rebuilt_report = load_splits(profile)
    assert rebuilt["test"]["id"] == data["test"]["id"] and rebuilt_report["splits"] == report["splits"]
    floor = noise_floor(data["test"])
    assert floor["n"] == 40 and 0 < floor["mae"] < 100
