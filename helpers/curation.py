"""Curation: raw product metadata -> clean prompt/completion splits. One pipeline for every source.

Sources: the shipped sample catalog, the real Amazon Reviews 2023 raw metadata (one JSONL file per
category), or your own CSV / JSONL / Parquet file. Every record that is dropped is counted with its
reason in a `CurationReport`; nothing bad crashes the run and nothing bad is kept silently.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from helpers.prices import parse_price_field

MIN_PRICE, MAX_PRICE = 0.5, 999.49
MIN_CHARS = 40  # shorter texts say too little to price
MAX_TOKENS = 160  # text token budget; longer texts are cut at a word boundary
MIN_TOKENS = 12
MAX_CHARS = 2_000  # without a tokenizer, texts are cut to this many characters (at a word boundary)
QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"

AMAZON_REPO = "McAuley-Lab/Amazon-Reviews-2023"
AMAZON_CATEGORIES = {  # the course's eight categories -> raw metadata file names
    "Appliances": "Appliances",
    "Automotive": "Automotive",
    "Cell Phones & Accessories": "Cell_Phones_and_Accessories",
    "Electronics": "Electronics",
    "Musical Instruments": "Musical_Instruments",
    "Office Products": "Office_Products",
    "Tools & Home Improvement": "Tools_and_Home_Improvement",
    "Toys & Games": "Toys_and_Games",
}


@dataclass
class Item:
    id: str
    category: str
    title: str
    text: str
    price: float

    @property
    def prompt(self) -> str:
        return make_prompt(self.text)

    @property
    def completion(self) -> str:
        return make_completion(self.price)


def make_prompt(text: str) -> str:
    return f"{QUESTION}\n\n{text}\n\n{PRICE_PREFIX}"


def make_completion(price: float) -> str:
    """The target: the price rounded half up to whole dollars, written as "123.00"."""
    return f"{math.floor(price + 0.5)}.00"


@dataclass
class CurationReport:
    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    kept: int = 0
    by_category: Counter = field(default_factory=Counter)
    balanced_out: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    generated_records: int = 0  # records generated past the shipped catalog for a larger training split
    changed: Counter = field(default_factory=Counter)  # records kept but altered (e.g. text cut), by reason
    notes: list[str] = field(default_factory=list)  # what was noticed about a whole file (encoding, truncation)

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped[reason] += count

    def as_dict(self) -> dict:
        data = asdict(self)
        data["dropped"] = dict(sorted(self.dropped.items(), key=lambda kv: -kv[1]))
        data["by_category"] = dict(sorted(self.by_category.items()))
        data["dropped_total"] = sum(self.dropped.values())
        data["changed"] = dict(self.changed)
        return data

    def summary(self) -> str:
        lines = [f"read {self.read:,} records, kept {self.kept:,}, dropped {sum(self.dropped.values()):,}:"]
        lines += [f"  {reason:<28} {count:>6,}" for reason, count in self.dropped.most_common()]
        if self.balanced_out:
            lines.append(f"  {'removed by price balancing':<28} {self.balanced_out:>6,}")
        lines += [f"kept but changed: {reason} ({count:,})" for reason, count in self.changed.items()]
        lines += [f"note: {note}" for note in self.notes]
        if self.splits:
            lines.append("splits: " + ", ".join(f"{k} {v:,}" for k, v in self.splits.items()))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"


def _readable_file(path: str | Path) -> Path:
    """`path` if it is a file this module can open, else a ValueError that says what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path.name} is a folder: pass one of the data files in it (JSONL, CSV or Parquet).")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix == ".gz":
        with open(path, "rb") as handle:
            if handle.read(2) != GZIP_MAGIC:
                raise ValueError(f"{path.name} ends in .gz but is not gzip-compressed: rename it without .gz, or "
                                 "compress it with gzip.")
    return path


def _starts_with(handle, prefix: bytes) -> bool:
    """Whether the first non-blank bytes of a binary handle are `prefix` (after a byte-order mark); rewinds."""
    head = handle.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    handle.seek(0)
    return head.startswith(prefix)


class _Ambiguous(dict):
    """A JSON object that names a key twice with different values (json.loads would keep the last silently)."""


def _object(pairs: list[tuple[str, object]]) -> dict:
    """object_pairs_hook: the object, or an _Ambiguous one where a key repeats with another value."""
    out: dict = {}
    ambiguous = False
    for key, value in pairs:
        ambiguous |= key in out and out[key] != value
        out[key] = value
    return _Ambiguous(out) if ambiguous else out


def _ambiguous(value) -> bool:
    if isinstance(value, _Ambiguous):
        return True
    if isinstance(value, dict):
        return any(_ambiguous(v) for v in value.values())
    if isinstance(value, list):
        return any(_ambiguous(v) for v in value)
    return False


def _loads(text: str):
    return json.loads(text, object_pairs_hook=_object)


def _json_array(handle, path: Path, report: CurationReport) -> Iterator[dict]:
    try:
        records = _loads(handle.read().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name} starts like a JSON array but does not parse ({error}): export it as JSON "
                         "Lines, one object per line.") from None
    report.notes.append(f"{path.name} is one JSON array, not JSON Lines: read its {len(records):,} entries")
    for record in records:
        report.read += 1
        if not isinstance(record, dict):
            report.drop("malformed JSON")
        elif _ambiguous(record):
            report.drop("a key given twice with different values")
        else:
            yield record


def read_jsonl(path: str | Path, report: CurationReport) -> Iterator[dict]:
    """Records of a (gzipped) JSONL file. Bad lines are counted, never raised: malformed JSON, bytes that
    are not UTF-8, an object that gives one key two different values; a gzip file cut short keeps every record read before the cut (and says so in the report)."""
    import zlib

    path = _readable_file(path)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        if _starts_with(handle, b"["):  # a JSON array (a .json export), not JSON Lines: read its objects
            yield from _json_array(handle, path, report)
            return
        try:
            for number, raw in enumerate(handle):
                if number == 0 and raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Windows editors write one)
                    raw = raw[3:]
                if not raw.strip():
                    continue
                report.read += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    report.drop("not UTF-8 text")
                    continue
                try:
                    record = _loads(line)
                except json.JSONDecodeError:
                    report.drop("malformed JSON")
                    continue
                if not isinstance(record, dict):
                    report.drop("malformed JSON")
                    continue
                if _ambiguous(record):  # which price is meant? neither is guessed
                    report.drop("a key given twice with different values")
                    continue
                yield record
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            report.notes.append(f"{Path(path).name} is cut short or damaged ({type(error).__name__}): kept the "
                                f"{report.read:,} lines read before the damage; download or export it again")


# --------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------

def parse_record_price(value) -> tuple[float | None, str | None]:
    """(price, None) or (None, reason). Text is read by `helpers.prices.parse_price_field`, the rules a model's answer
    is read by: '$1,299.99', '1 299,00 €', '12.5k' parse; 'from $5', 'N/A', '$5 - $9' do not."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None, "missing price"
    if isinstance(value, bool):
        return None, "unparseable price"
    if isinstance(value, str):
        value, reason = parse_price_field(value)
        if reason == "negative":
            return None, "zero or negative price"
        if value is None:
            return None, "unparseable price"
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None, "unparseable price"
    except OverflowError:  # an integer with hundreds of digits
        return None, "price out of range"
    if math.isnan(price) or math.isinf(price):
        return None, "unparseable price"
    if price <= 0:
        return None, "zero or negative price"
    if not MIN_PRICE <= price <= MAX_PRICE:
        return None, "price out of range"
    return price, None


_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# part numbers and model codes: a word of 7+ characters mixing digits and letters (e.g. SDC50064-K-5939)
_CODE = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{7,}\b")
BORING_DETAILS = (
    "Date First Available",
    "Item model number",
    "Manufacturer",
    "Best Sellers Rank",
    "Customer Reviews",
    "Is Discontinued By Manufacturer",
    "ASIN",
    "UPC",
    "Batteries",
)


def clean(text: str) -> str:
    """Unescape HTML entities, drop tags, scrub product codes, collapse whitespace."""
    text = html.unescape(html.unescape(text))
    text = _TAG.sub(" ", text)
    text = _CODE.sub("", text)
    text = text.replace(" ,", ",").replace("( )", "").replace("()", "")
    return _SPACE.sub(" ", text).strip(" -,")


def record_text(record: dict) -> str:
    """Title, description, features and the informative details, cleaned, one block per line."""
    parts = [str(record.get("title") or "")]
    for key in ("description", "features"):
        value = record.get(key) or []
        if isinstance(value, str):
            value = [value]
        parts.append(" ".join(str(v) for v in value if v))
    details = record.get("details") or {}
    if isinstance(details, dict):
        parts.append(" ".join(f"{k}: {v}" for k, v in details.items() if k not in BORING_DETAILS and v))
    cleaned = [clean(p) for p in parts]
    return "\n".join(p for p in cleaned if p)


def fit_to_budget(text: str, tokenizer, max_tokens: int = MAX_TOKENS) -> tuple[str, int]:
    """Cut the text to at most `max_tokens` tokens of this tokenizer, at a word boundary."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, len(ids)
    cut = tokenizer.decode(ids[:max_tokens])
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return cut, len(tokenizer(cut, add_special_tokens=False)["input_ids"])


def _normalized(text: str) -> str:
    """The duplicate key: Unicode-normalised (NFKC), case-folded, letters, digits and combining marks of any script
    kept, everything else one space. For ASCII text it is lower-case a-z and 0-9, as before; Russian, Chinese or Arabic texts keep
    their words instead of collapsing to one empty key."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in folded)  # letters, digits, marks
    return " ".join(kept.split())


def curate(
    records: Iterable[dict],
    tokenizer=None,
    report: CurationReport | None = None,
    category: str | None = None,
    max_tokens: int = MAX_TOKENS,
) -> tuple[list[Item], CurationReport]:
    """Parse, clean, filter and dedupe raw records into Items. The report says what was dropped and why."""
    report = report or CurationReport()
    items: list[Item] = []
    seen: dict[str, float] = {}
    for record in records:
        if not isinstance(record, dict):
            report.drop("malformed record")
            continue
        price, reason = parse_record_price(record.get("price"))
        if reason:
            report.drop(reason)
            continue
        text = record_text(record)
        if len(text) < MIN_CHARS:
            report.drop("text too short")
            continue
        if tokenizer is not None:
            text, n_tokens = fit_to_budget(text, tokenizer, max_tokens)
            if n_tokens < MIN_TOKENS:
                report.drop("too few tokens")
                continue
        elif len(text) > MAX_CHARS:
            text = text[:MAX_CHARS].rsplit(" ", 1)[0]
            report.changed[f"text cut to {MAX_CHARS:,} characters (no tokenizer given)"] += 1
        key = _normalized(text)
        if key in seen:
            same = abs(seen[key] - price) < 0.005
            report.drop("duplicate" if same else "duplicate text with another price (the first price is kept)")
            continue
        seen[key] = price
        item_id = str(record.get("parent_asin") or hashlib.sha1(key.encode()).hexdigest()[:10])
        cat = category or str(record.get("main_category") or "Unknown")
        items.append(Item(item_id, cat, clean(str(record.get("title") or "")), text, round(price, 2)))
        report.by_category[cat] += 1
    report.kept = len(items)
    return items, report


# --------------------------------------------------------------------------------------------------
# Balancing and splitting
# --------------------------------------------------------------------------------------------------


def price_band(price: float) -> str:
    for upper, label in ((10, "$0-10"), (50, "$10-50"), (100, "$50-100"), (250, "$100-250"), (500, "$250-500")):
        if price < upper:
            return label
    return "$500+"


PRICE_BANDS = ("$0-10", "$10-50", "$50-100", "$100-250", "$250-500", "$500+")


def balance(
    items: list[Item], max_share: float = 0.22, seed: int = 42, report: CurationReport | None = None
) -> list[Item]:
    """Cap every (price band) at `max_share` of the items, so cheap items do not dominate training.

    Which items go is decided by a seeded shuffle, so the result is deterministic.
    """
    cap = int(max_share * len(items))
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    counts: Counter = Counter()
    keep = []
    for i in order:
        band = price_band(items[i].price)
        if counts[band] < cap:
            counts[band] += 1
            keep.append(i)
    if report is not None:
        report.balanced_out = len(items) - len(keep)
    return [items[i] for i in sorted(keep)]


def _rank(item: Item, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{item.id}:{item.text}".encode()).hexdigest()


def split(items: list[Item], n_train: int, n_val: int, n_test: int, salt: str = "workbook") -> dict[str, list[Item]]:
    """Deterministic, disjoint splits: items ordered by a hash of their id and text.

    Test comes first in hash order, then validation, then train, so growing n_train never changes
    the test set.
    """
    if min(n_train, n_val, n_test) < 0 or n_test < 1:
        raise ValueError(f"split sizes must be >= 0 with at least one test item, got train {n_train}, validation "
                         f"{n_val}, test {n_test} (a negative size would make the splits overlap)")
    if n_train + n_val + n_test > len(items):
        raise ValueError(f"asked for {n_train + n_val + n_test:,} items but only {len(items):,} survived curation")
    ordered = sorted(items, key=lambda it: _rank(it, salt))
    return {
        "test": ordered[:n_test],
        "validation": ordered[n_test : n_test + n_val],
        "train": ordered[n_test + n_val : n_test + n_val + n_train],
    }


def to_dataset_dict(splits: dict[str, list[Item]]):
    """A datasets.DatasetDict with prompt / completion (what trl trains on) plus price, category, text, id."""
    from datasets import Dataset, DatasetDict

    def rows(items):
        return {
            "id": [i.id for i in items],
            "category": [i.category for i in items],
            "title": [i.title for i in items],
            "text": [i.text for i in items],
            "price": [i.price for i in items],
            "prompt": [i.prompt for i in items],
            "completion": [i.completion for i in items],
        }

    return DatasetDict({name: Dataset.from_dict(rows(items)) for name, items in splits.items()})


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


def amazon_meta_file(category: str, download=None) -> Path:
    """The raw Amazon Reviews 2023 metadata file of one category, downloaded from the hub.

    We read the raw JSONL directly: datasets 4+ no longer runs the dataset's loading script.
    `download` is injectable for tests (defaults to huggingface_hub.hf_hub_download).
    """
    if category not in AMAZON_CATEGORIES:
        raise ValueError(f"Unknown category {category!r}; choose from {list(AMAZON_CATEGORIES)}")
    if download is None:
        from huggingface_hub import hf_hub_download as download
    filename = f"raw/meta_categories/meta_{AMAZON_CATEGORIES[category]}.jsonl"
    try:
        return Path(download(repo_id=AMAZON_REPO, filename=filename, repo_type="dataset"))
    except Exception as error:
        raise RuntimeError(
            f"Could not fetch {filename} from {AMAZON_REPO} ({type(error).__name__}). The course profile needs "
            "network access to the Hugging Face hub; offline, use the default profile (shipped sample catalog)."
        ) from error


def load_amazon(categories: Iterable[str], tokenizer=None, download=None, limit_per_category: int | None = None):
    """Curate the real Amazon metadata of several categories with the same pipeline as the sample."""
    report = CurationReport()
    items: list[Item] = []
    for category in categories:
        records = read_jsonl(amazon_meta_file(category, download), report)
        if limit_per_category:
            records = (r for _, r in zip(range(limit_per_category), records))
        got, _ = curate(records, tokenizer, report, category=category)
        items += got
    report.kept = len(items)
    return items, report


def _read_csv_rows(path: Path, report: CurationReport) -> tuple[list[str], list[dict]]:
    """Header and rows of a CSV file; rows with a different number of fields than the header are counted
    and dropped (an unquoted comma in the text shifts every column after it), never kept shifted."""
    import csv
    import io

    path = _readable_file(path)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a long description is a field, not an error:
    # the token budget cuts it later, with a count
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        report.notes.append(f"{path.name} is not UTF-8: read as Windows-1252 / Latin-1; save it as UTF-8 to be sure")
    lines = list(csv.reader(io.StringIO(text)))
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise ValueError(f"{path.name} is empty: it needs a header line naming the columns, then one row per item.")
    header, rows = lines[0], []
    for line in lines[1:]:
        if len(line) != len(header):
            report.read += 1
            report.drop("wrong number of columns (unquoted comma in a text?)")
            continue
        rows.append(dict(zip(header, line)))
    report.read += len(rows)
    return header, rows


def _read_jsonl_rows(path: Path, report: CurationReport) -> tuple[list[str], list[dict]]:
    """Rows of a JSONL file read line by line: one bad line is counted, the rest of the file is kept."""
    rows = list(read_jsonl(path, report))  # counts every line it reads, bad ones too
    if not rows and not report.dropped:
        raise ValueError(f"{path.name} is empty: it needs one JSON object per line.")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return columns, rows


def load_byo(
    path: str | Path,
    text_column: str = "text",
    price_column: str = "price",
    category_column: str | None = None,
    tokenizer=None,
):
    """Your own CSV / JSONL / Parquet file with a text column and a price column (names configurable).

    Bad rows are counted with their reason in the report and the rest of the file is kept: malformed JSON
    lines, CSV rows whose columns do not line up, bytes that are not UTF-8, prices that are not numbers
    (a JSON `true` is not $1). Without a tokenizer, long texts are cut to MAX_CHARS characters.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}: check the path (relative paths start at {Path.cwd()}).")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    report = CurationReport()
    if suffix in (".csv", ".csv.gz"):
        columns, rows = _read_csv_rows(path, report)
    elif suffix in (".jsonl", ".json", ".jsonl.gz"):
        columns, rows = _read_jsonl_rows(path, report)
    elif suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        columns, rows = list(frame.columns), frame.to_dict("records")
        report.read = len(rows)
    else:
        raise ValueError(f"Unsupported file type {suffix!r}: use .csv, .jsonl or .parquet")
    twice = sorted({str(c) for c in columns if list(columns).count(c) > 1} & {text_column, price_column,
                                                                             category_column})
    if twice:
        raise ValueError(f"Column(s) {twice} appear more than once in {path.name}'s header: which one holds the data "
                         "is a guess, so nothing is read. Rename or remove the extra column.")
    missing = [c for c in (text_column, price_column, category_column) if c and c not in columns]
    if missing:
        raise ValueError(
            f"Column(s) {missing} not in {path.name}; it has {columns}. Pass text_column= / price_column= to name yours."
        )

    def category(row) -> str:
        value = row.get(category_column) if category_column else None
        if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
            return "Custom"  # a missing category (None, NaN from pandas, blank) is not the category "nan"
        return str(value).strip()

    def records():
        for row in rows:
            text, price = row.get(text_column), row.get(price_column)
            if isinstance(price, float) and math.isnan(price):
                price = None
            yield {"title": text if isinstance(text, str) else "", "price": price, "main_category": category(row)}

    return curate(records(), tokenizer, report)
