"""The curated price dataset for a profile: built once from its source, cached, reused by every notebook."""

from __future__ import annotations

import hashlib
import json
import shutil

from helpers.catalog import CATALOG_PATH
from helpers.curation import (
    AMAZON_CATEGORIES,
    CurationReport,
    balance,
    curate,
    load_amazon,
    read_jsonl,
    split,
    to_dataset_dict,
)
from helpers.paths import cache_dir, outputs_dir
from helpers.profiles import Profile

DATA_VERSION = 2  # bump when curation changes, so cached splits are rebuilt


def _key(profile: Profile, balanced: bool) -> str:
    source = hashlib.sha256(CATALOG_PATH.read_bytes()).hexdigest()[:12] if profile.dataset == "sample" else "amazon"
    raw = f"v{DATA_VERSION}-{source}-{profile.model_id}-{profile.n_train}-{profile.n_val}-{profile.n_test}-{balanced}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def curate_source(profile: Profile, tokenizer, balanced: bool = True):
    """All curated items of the profile's source, and the report of what was dropped."""
    if profile.dataset == "sample":
        report = CurationReport()
        items, report = curate(read_jsonl(CATALOG_PATH, report), tokenizer, report)
    elif profile.dataset == "amazon":
        items, report = load_amazon(AMAZON_CATEGORIES, tokenizer)
    else:
        raise ValueError(f"Unknown dataset {profile.dataset!r} (sample or amazon)")
    if balanced:
        items = balance(items, report=report)
    return items, report


def load_splits(profile: Profile, tokenizer=None, balanced: bool = True, rebuild: bool = False):
    """(DatasetDict with train / validation / test, report dict), from the cache when it is current."""
    from datasets import load_from_disk

    folder = cache_dir() / "datasets" / f"{profile.name}-{_key(profile, balanced)}"
    cached_report = folder / "curation_report.json"
    if folder.exists() and not rebuild:
        try:  # a cache folder cut short (an interrupted save, a deleted file) is rebuilt, not an error
            return load_from_disk(str(folder)), json.loads(cached_report.read_text())
        except (FileNotFoundError, json.JSONDecodeError, ValueError) as error:
            print(f"the cached splits in {folder.name} are incomplete ({type(error).__name__}): rebuilding them",
                  flush=True)
    if tokenizer is None:
        from helpers.models import load_tokenizer

        tokenizer = load_tokenizer(profile.model_id)
    items, report = curate_source(profile, tokenizer, balanced)
    room = len(items) - profile.n_val - profile.n_test
    if profile.dataset == "sample" and profile.n_train > room:
        splits = split(items, room, profile.n_val, profile.n_test)  # test and validation as in every profile
        splits["train"] += extra_training_items(profile.n_train - room, items, tokenizer, report, balanced)
    else:
        splits = split(items, profile.n_train, profile.n_val, profile.n_test)
    report.splits = {name: len(part) for name, part in splits.items()}
    dataset = to_dataset_dict(splits)
    shutil.rmtree(folder, ignore_errors=True)
    dataset.save_to_disk(str(folder))
    report_dict = report.as_dict()
    (folder / "curation_report.json").write_text(json.dumps(report_dict, indent=2))
    name = "curation_report.json" if balanced else "curation_report_unbalanced.json"
    (outputs_dir(profile.name) / name).write_text(json.dumps(report_dict, indent=2))
    return load_from_disk(str(folder)), report_dict


MAX_EXTRA_ITEMS = 100_000  # generated training items beyond the shipped catalog (the gpu profile uses ~16,000)


def extra_training_items(n: int, shipped: list, tokenizer, report, balanced: bool = True) -> list:
    """`n` more training items, generated past the end of the shipped catalog from the same seed.

    The generator is sequential in its seed, so the shipped file is the first N_RECORDS of a longer
    catalog: the test and validation splits stay those of the shipped file, and only training grows.
    Items whose text matches a shipped item are dropped as duplicates (counted in the report).
    """
    from helpers.catalog import N_RECORDS, SEED, generate_records
    from helpers.curation import _normalized

    if n > MAX_EXTRA_ITEMS:
        raise ValueError(f"{n:,} training items beyond the shipped catalog's were asked for (n_train above what it "
                         f"holds): the generator makes at most {MAX_EXTRA_ITEMS:,} more, which takes minutes and GBs "
                         "of memory already. Ask for a smaller n_train, or bring your own data (BYO).")
    total = N_RECORDS
    seen = {_normalized(item.text) for item in shipped}
    fresh: list = []
    while len(fresh) < n:
        if total - N_RECORDS > 4 * n + 8_000:  # far past the ~80% that survive: the generator is repeating itself
            raise RuntimeError(f"the generator gave {len(fresh):,} new items from {total - N_RECORDS:,} records, short "
                               f"of the {n:,} asked for: ask for fewer")
        total += max(2 * (n - len(fresh)), 4_000)  # about 80% of raw records survive curation and balancing
        print(f"generating catalog records {N_RECORDS:,} to {total:,} for {n:,} more training items ...", flush=True)
        items, _ = curate(generate_records(SEED, total)[N_RECORDS:], tokenizer, CurationReport())
        items = balance(items) if balanced else items
        fresh = [item for item in items if _normalized(item.text) not in seen]
    report.drop("duplicate of a shipped item (extension)", len(items) - len(fresh))
    report.generated_records = total - N_RECORDS
    return fresh[:n]


def noise_floor(split_rows, seed: int | None = None) -> dict[str, float]:
    """Error of the best possible predictor on a split of the sample catalog.

    The oracle knows each product's noiseless expected price (from the generator) and still misses by
    the lognormal noise the generator added. No model can beat this on average.
    """
    from helpers.catalog import SEED, oracle_prices

    oracle = oracle_prices(SEED if seed is None else seed)
    pairs = [(oracle[i], p) for i, p in zip(split_rows["id"], split_rows["price"]) if i in oracle]
    if not pairs:
        raise ValueError("No item of this split is in the generated catalog: the noise floor needs the sample data.")
    errors = [abs(e - p) for e, p in pairs]
    return {"n": len(pairs), "mae": sum(errors) / len(errors), "median_price": sorted(p for _, p in pairs)[len(pairs) // 2]}
