"""The sample product catalog (v2): generated, in the Amazon Reviews 2023 metadata schema.

Real Amazon data cannot be downloaded offline, so we generate a catalog from a seed and ship it
(`data/sample_catalog.jsonl.gz`); `python -m helpers.catalog` rebuilds it byte for byte. The product
types (what they cost, their specs, materials and words) are data: `data/catalog_products.json`.

Version 1 made the log price a sum of one term per word-like fact, which is exactly the model a
TF-IDF + ridge regression fits, so the classical baseline was the generator itself. Version 2 prices
products the way real listings are priced, with what makes real prices hard for bag-of-words:

    unit     = base(type) × tier(brand) × Π_s (size_s / low_s) ** (elasticity_s × (1 + SIZE_PREMIUM × rank))
               × material × warranty × grade × condition × SERIES_STEP ** (series - 5)
    expected = unit × n ** PACK_EXPONENT + PACK_OVERHEAD     (packs of n; singles: expected = unit)
    price    = expected × exp(N(0, NOISE_SIGMA²))            (rounded to cents)

- **Continuous quantities.** Sizes are drawn log-uniformly over a wide range (a 24" to 98" TV), so most
  numbers are rare as tokens, and they are written in many forms: units and their conversions
  (1 TB / 1,000 GB, 5.5 qt / 5.2 L, 6 ft / 1.8 m, 4K / 2160p), with or without separators and spaces.
- **Interactions.** Premium brands charge more per unit of size (the exponent grows with the brand's
  tier rank, −2 for budget to +2 for luxury), and a pack's price is a per-unit price times a
  near-linear count *plus* a fixed per-listing cost: a 12-pack of a cheap item is not "12-pack" + "cheap".
- **Facts in the description or details only.** A spec or the pack count may be missing from the
  title and stated once further down; counts may be written as a product ("2 boxes of 50").
- **Product lines.** 40% of products belong to a numbered line ("Series 7", "S7"): the higher the number,
  the pricier the model, a convention a reader knows and a bag-of-words tokenizer that drops one-character
  tokens (scikit-learn's default) cannot see.
- **Distractor numbers.** Weights, dimensions, years and ratings that do not move the price.

The best possible predictor knows `expected` exactly and still misses by the noise: its error is the
noise floor (`oracle_prices`). Every price-relevant fact is written in the record's text (title,
description, features or details), so a perfect reader of the *whole* record reaches that floor; the
curated prompt keeps 160 tokens, so a fact stated only at the end of a long record can be cut.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.paths import DATA_DIR

VERSION = 2
SEED = 2026
N_RECORDS = 32_000
NOISE_SIGMA = 0.22
SIZE_PREMIUM = 0.2  # elasticity multiplier per tier rank away from "mid"
PACK_EXPONENT = 0.9  # bulk discount: 10 units cost 7.9x one
PACK_OVERHEAD = 4.0  # dollars per pack listing: box, handling
CATALOG_PATH = DATA_DIR / "sample_catalog.jsonl.gz"
PRODUCTS_PATH = DATA_DIR / "catalog_products.json"

# Brand tiers: price factor and rank. The brand name is in every title, as on Amazon.
TIERS = {"budget": 0.55, "value": 0.8, "mid": 1.0, "premium": 1.7, "luxury": 2.9}
TIER_RANK = {"budget": -2, "value": -1, "mid": 0, "premium": 1, "luxury": 2}
TIER_WEIGHTS = (3, 4, 5, 2.5, 1)
BRANDS_PER_TIER = 30
BRAND_SYLLABLES = tuple("Ar Bel Cor Dyn El Fen Gal Hex Iv Jor Kel Lum Mar Nov Or Pax Quin Ros Sol Tor Ul Ven Wex Zan".split())
BRAND_ENDINGS = ("a", "o", "ix", "on", "ia", "ex", "us", "tec", "ra", "ly", "co", "ro", "el", "an", "is", "um")
PACK_SIZES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 20, 24, 25, 30, 36, 40, 48, 50, 60, 72, 100, 144, 200)
PACK_WEIGHTS = (8, 5, 3, 4, 1, 3, 2, 3, 3, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 1, 0.5, 0.5)
WARRANTY = {0: 1.0, 1: 1.0, 2: 1.06, 3: 1.12, 5: 1.22, 10: 1.4}
WARRANTY_WEIGHTS = (5, 4, 2, 1.5, 1, 0.3)
GRADES = ("Pro", "Commercial", "Professional", "Heavy Duty")
CONDITIONS = {"new": 1.0, "renewed": 0.68}  # "Renewed" is Amazon's word for refurbished
SERIES_STEP = 1.12  # a model line's number k (Series 1..9) multiplies the price by SERIES_STEP ** (k - 5)
SERIES_SHARE = 0.4  # share of products sold under a numbered model line

# --------------------------------------------------------------------------------------------------
# The product table (data/catalog_products.json)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A numeric spec: its range (or allowed values), unit and price elasticity."""

    name: str
    unit: str
    low: float
    high: float
    elasticity: float  # price ∝ (value / low) ** elasticity
    values: tuple[float, ...] = ()  # discrete choices (storage sizes, resolutions); empty = continuous


@dataclass(frozen=True)
class ProductType:
    category: str
    noun: str
    base: float  # dollars for one unit at the low end of every spec, from a mid-tier brand
    specs: tuple[Spec, ...] = ()
    materials: tuple[tuple[str, float], ...] = ()
    pack: bool = False  # sold in packs of n
    grade_factor: float = 1.6  # what "Pro"/"Commercial" grade multiplies for this type
    adjectives: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()


def load_products(path: Path = PRODUCTS_PATH) -> dict[str, list[ProductType]]:
    """category -> product types, read from the JSON table (one object per product type)."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, list[ProductType]] = {}
    for row in rows:
        specs = tuple(
            Spec(s["name"], s["unit"], s["low"], s["high"], s["elasticity"], tuple(s.get("values", ()))) for s in row["specs"]
        )
        ptype = ProductType(
            row["category"], row["noun"], row["base"], specs, tuple(row["materials"].items()), row["pack"],
            row["grade_factor"], tuple(row["adjectives"]), tuple(row["uses"]),
        )
        out.setdefault(ptype.category, []).append(ptype)
    return out


CATEGORIES = load_products()

# --------------------------------------------------------------------------------------------------
# A product and its price
# --------------------------------------------------------------------------------------------------


@dataclass
class Product:
    """One generated product, with what decided its price."""

    ptype: ProductType
    brand: str
    tier: str
    specs: dict[str, float] = field(default_factory=dict)
    material: str | None = None
    pack: int = 1
    warranty: int = 0
    grade: str | None = None
    condition: str = "new"
    series: int | None = None  # the number of a model line ("Series 7"): higher numbers are the pricier models
    expected_price: float = 0.0

    @property
    def category(self) -> str:
        return self.ptype.category


def expected_price(p: Product) -> float:
    """The noiseless price: the documented function of the attributes (see the module docstring)."""
    unit = p.ptype.base * TIERS[p.tier]
    exponent_scale = 1 + SIZE_PREMIUM * TIER_RANK[p.tier]
    for spec in p.ptype.specs:
        unit *= (p.specs[spec.name] / spec.low) ** (spec.elasticity * exponent_scale)
    if p.material is not None:
        unit *= dict(p.ptype.materials)[p.material]
    unit *= WARRANTY[p.warranty] * CONDITIONS[p.condition]
    if p.series is not None:
        unit *= SERIES_STEP ** (p.series - 5)
    if p.grade is not None:
        unit *= p.ptype.grade_factor
    if p.ptype.pack:
        return unit * p.pack**PACK_EXPONENT + PACK_OVERHEAD
    return unit


def nice(value: float) -> float:
    """Round a drawn size the way listings state it: two significant figures, halves under 10."""
    if value < 10:
        return max(0.5, round(value * 2) / 2) if value >= 1 else round(value, 1)
    digits = int(math.floor(math.log10(value))) - 1
    return float(round(value, -digits))


def draw_spec(spec: Spec, rng: random.Random) -> float:
    if spec.values:
        return float(rng.choice(spec.values))
    return nice(math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))))


def _brands(rng: random.Random) -> dict[str, dict[str, list[str]]]:
    used: set[str] = set()
    out: dict[str, dict[str, list[str]]] = {}
    for category in CATEGORIES:
        out[category] = {}
        for tier in TIERS:
            names = []
            while len(names) < BRANDS_PER_TIER:
                name = rng.choice(BRAND_SYLLABLES) + rng.choice(BRAND_ENDINGS) + rng.choice(("", "", "Pro", "Tek", "ware"))
                if name not in used:
                    used.add(name)
                    names.append(name)
            out[category][tier] = names
    return out


def _product(rng: random.Random, brands) -> Product:
    category = rng.choice(list(CATEGORIES))
    ptype = rng.choice(CATEGORIES[category])
    tier = rng.choices(list(TIERS), weights=TIER_WEIGHTS)[0]
    p = Product(ptype, rng.choice(brands[category][tier]), tier)
    p.specs = {spec.name: draw_spec(spec, rng) for spec in ptype.specs}
    if ptype.materials:
        p.material = rng.choice(ptype.materials)[0]
    if ptype.pack:
        p.pack = rng.choices(PACK_SIZES, weights=PACK_WEIGHTS)[0]
    p.warranty = rng.choices(list(WARRANTY), weights=WARRANTY_WEIGHTS)[0]
    if rng.random() < 0.12:
        p.grade = rng.choice(GRADES)
    if rng.random() < 0.06:
        p.condition = "renewed"
    if rng.random() < SERIES_SHARE:
        p.series = rng.randint(1, 9)
    p.expected_price = expected_price(p)
    return p


# --------------------------------------------------------------------------------------------------
# Writing quantities the many ways listings do
# --------------------------------------------------------------------------------------------------


def number(value: float, rng: random.Random) -> str:
    """'1200', '1,200' or '1.2k'-free plain forms; decimals as written ('5.5', '0.5')."""
    if value == int(value):
        value = int(value)
        return f"{value:,}" if value >= 1000 and rng.random() < 0.5 else str(value)
    return f"{value:g}"


def _metric(value: float, factor: float, unit: str) -> str:
    converted = value * factor
    return f"{converted:.1f} {unit}" if converted < 10 else f"{converted:.0f} {unit}"


RESOLUTION_NAMES = {480: ["480p", "SD 480p"], 720: ["720p", "HD 720p"], 1080: ["1080p", "Full HD", "FHD 1080p"],
                    1440: ["1440p", "2K QHD", "2K"], 2160: ["4K", "4K UHD", "2160p", "Ultra HD 4K"]}


def say(value: float, unit: str, rng: random.Random) -> str:
    """One way to write `value unit`, chosen at random among the forms real listings use."""
    n = number(value, rng)
    forms: list[str]
    if unit == "p":
        return rng.choice(RESOLUTION_NAMES[int(value)])
    if unit == "GB":
        forms = [f"{n}GB", f"{n} GB"]
        if value >= 1000:
            tb = value / 1024 if value in (1024, 2048, 4096) else value / 1000
            forms += [f"{tb:g}TB", f"{tb:g} TB"] * 2
    elif unit == "mAh":
        forms = [f"{n}mAh", f"{n} mAh", f"{value / 1000:g}Ah"]
    elif unit == "W":
        forms = [f"{n}W", f"{n} Watt", f"{n} watts"] + ([f"{value / 1000:g} kW"] if value >= 1000 else [])
    elif unit == "inch":
        forms = [f'{n}"', f"{n}-inch", f"{n} in", f"{n} Inch", _metric(value, 2.54, "cm")]
    elif unit == "ft":
        forms = [f"{n} ft", f"{n}-foot", f"{n}ft", _metric(value, 0.3048, "m"), f"{value * 12:g} inches"]
    elif unit == "quart":
        forms = [f"{n} qt", f"{n}-Quart", f"{n} QT", _metric(value, 0.946, "L")]
    elif unit == "gallon":
        forms = [f"{n} gal", f"{n}-Gallon", f"{n} gallon", _metric(value, 3.785, "L")]
    elif unit == "cu ft":
        forms = [f"{n} cu. ft.", f"{n} cu ft", f"{n} cubic feet", _metric(value, 28.3, "L")]
    elif unit == "lbs per day":
        forms = [f"{n} lbs/day", f"{n} pounds per day", f"{n}lbs in 24 hours", _metric(value, 0.4536, "kg per day")]
    elif unit == "mph":
        forms = [f"{n} mph", f"{n} MPH", _metric(value, 1.609, "km/h")]
    elif unit == "pieces":
        forms = [f"{n}-Piece", f"{n} pcs", f"{n} PCS", f"{n} pieces"]
    elif unit == "minutes":
        forms = [f"{n} min", f"{n} minutes", f"{n}-minute"]
    elif unit == "hours":
        forms = [f"{n} hrs", f"{n} hours", f"{n}H", f"{n}-hour"]
    elif unit == "V":
        forms = [f"{n}V", f"{n}-Volt", f"{n}V MAX", f"{n} volt"]
    else:
        forms = [f"{n} {unit}", f"{n}{unit}" if len(unit) <= 4 else f"{n} {unit}"]
    return rng.choice(forms)


def say_pack(n: int, rng: random.Random) -> str:
    """A pack count as listings write it, sometimes as a product the reader must multiply."""
    for per in (50, 25, 12, 10, 6):
        if n > per and n % per == 0 and rng.random() < 0.2:
            return rng.choice([f"{n // per} Boxes of {per}", f"{n // per} x {per} Count", f"{n // per} packs of {per}"])
    if n == 12 and rng.random() < 0.3:
        return "One Dozen"
    if n == 2 and rng.random() < 0.3:
        return "Twin Pack"
    return rng.choice([f"{n}-Pack", f"Pack of {n}", f"{n} Count", f"{n} pcs", f"Set of {n}", f"({n} Pack)"])


# --------------------------------------------------------------------------------------------------
# The listing's text
# --------------------------------------------------------------------------------------------------


def _model_code(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(rng.randint(2, 3)))
    return f"{letters}{rng.randint(100, 99999)}{rng.choice(['', 'B', '-K', 'X', '-2'])}"


@dataclass
class Facts:
    """Where each price-relevant fact will be written: every fact lands at least once."""

    specs: dict[str, str]  # spec name -> the spec written once, in one of its forms
    in_title: set[str]
    pack: str | None
    pack_in_title: bool


def _place_facts(p: Product, rng: random.Random) -> Facts:
    specs = {s.name: say(p.specs[s.name], s.unit, rng) for s in p.ptype.specs}
    in_title = {name for i, name in enumerate(specs) if rng.random() < (0.6 if i == 0 else 0.3)}
    pack = say_pack(p.pack, rng) if p.pack > 1 else None
    return Facts(specs, in_title, pack, pack is not None and rng.random() < 0.65)


def _title(p: Product, facts: Facts, adjective: str, use: str, rng: random.Random) -> str:
    t = p.ptype
    parts = [p.brand]
    if p.grade:
        parts.append(p.grade)
    parts += [facts.specs[name] for name in facts.specs if name in facts.in_title]
    if adjective and rng.random() < 0.7:
        parts.append(adjective.title() if rng.random() < 0.5 else adjective)
    if p.material and rng.random() < 0.6:
        parts.append(p.material.title())
    parts.append(t.noun)
    if p.series is not None:
        parts.append(rng.choice([f"Series {p.series}", f"{p.series} Series", f"S{p.series}"]))
    if facts.pack_in_title:
        parts.append(rng.choice([f"- {facts.pack}", f", {facts.pack}", facts.pack]))
    if use and rng.random() < 0.5:
        parts.append(f"for {use.title() if rng.random() < 0.5 else use}")
    if p.condition == "renewed":
        parts.append(rng.choice(["(Renewed)", "- Renewed", "(Refurbished)"]))
    if rng.random() < 0.25:
        parts.append(_model_code(rng))  # a model code in the title, as real listings have
    return " ".join(parts).replace(" ,", ",")


FILLERS = (
    "Easy to install &amp; use",
    "Satisfaction guaranteed",
    "Ships in frustration-free packaging",
    "Tested for quality and safety",
    "Lightweight and easy to carry",
    "Sleek modern design",
    "Customer support available 24/7",
    "Compatible with most standard setups",
    "Trusted by over 10,000 customers",
    "Up to 30% less energy than older models",
    "Voted a top pick in 2023",
    "Rated 4.5 out of 5 by buyers",
)


def _features(p: Product, facts: Facts, use: str, rng: random.Random) -> list[str]:
    """Feature bullets; the specs not in the title are stated here or in the description/details."""
    features = []
    for spec in p.ptype.specs:
        words = facts.specs[spec.name]
        if spec.name not in facts.in_title or rng.random() < 0.4:
            features.append(rng.choice([f"{spec.name.upper()}: {words}", f"{words} {spec.name}",
                                        f"Delivers {words} of {spec.name}", f"{spec.name.capitalize()} of {words}"]))
    if facts.pack and not facts.pack_in_title and rng.random() < 0.5:
        features.append(rng.choice([f"You get {facts.pack}", f"Value pack: {facts.pack}", f"Includes {facts.pack}"]))
    if p.material:
        features.append(rng.choice([f"Made of {p.material}", f"Durable {p.material} construction",
                                    f"{p.material.capitalize()} build"]))
    if p.grade:
        features.append(rng.choice([f"{p.grade} grade for daily professional use", f"Built to {p.grade.lower()} standards",
                                    "Rated for commercial duty cycles"]))
    if p.warranty:
        features.append(rng.choice([f"{p.warranty}-year warranty", f"Backed by a {p.warranty} year limited warranty",
                                    f"Warranty: {p.warranty} years"]))
    if p.condition == "renewed":
        features.append("Renewed: inspected and tested to work and look like new")
    if use:
        features.append(rng.choice([f"Ideal for {use}", f"Great for {use}", f"Perfect choice for {use}"]))
    features += rng.sample(FILLERS, rng.randint(0, 3))
    rng.shuffle(features)
    return features


def _description(p: Product, facts: Facts, adjective: str, use: str, rng: random.Random) -> list[str]:
    if rng.random() >= 0.8:
        return []
    t = p.ptype
    sentences = [f"The {p.brand} {t.noun.lower()} is {rng.choice(['designed', 'built', 'made'])} for "
                 f"{use or 'everyday use'}."]
    if adjective:
        sentences.append(f"This {adjective} model {rng.choice(['combines', 'offers', 'brings'])} reliable performance "
                         f"with {rng.choice(['a compact footprint', 'thoughtful details', 'easy care'])}.")
    if facts.specs and rng.random() < 0.5:
        sentences.append(f"With {' and '.join(facts.specs.values())}, it handles "
                         f"{rng.choice(['most jobs', 'daily tasks', 'demanding work'])}.")
    if rng.random() < 0.3:
        sentences.append("<br>Package includes: " + (facts.pack or "1 x " + t.noun.lower()) + ", user manual.")
    if rng.random() < 0.15:
        sentences.append(f"Replaces part number {_model_code(rng)}-{rng.randint(1000, 9999)}.")
    return [" ".join(sentences)]


def _details(p: Product, facts: Facts, rng: random.Random) -> dict:
    details = {"Brand": p.brand, "Manufacturer": p.brand + rng.choice([" Inc.", " LLC", " Co., Ltd", ""])}
    if rng.random() < 0.6:
        details["Item model number"] = _model_code(rng)
    for name, words in facts.specs.items():
        if rng.random() < 0.4:
            details[name.title()] = words
    if p.material:
        details["Material"] = p.material.title()
    if p.ptype.pack:
        details["Unit Count"] = f"{p.pack}.0 Count" if rng.random() < 0.5 else str(p.pack)
    if rng.random() < 0.5:
        details["Item Weight"] = f"{rng.uniform(0.1, 40):.1f} pounds"
    if rng.random() < 0.35:
        details["Product Dimensions"] = " x ".join(f"{rng.uniform(1, 30):.1f}" for _ in range(3)) + " inches"
    if rng.random() < 0.3:
        details["Date First Available"] = (
            f"{rng.choice(['January', 'March', 'June', 'October'])} {rng.randint(1, 28)}, {rng.randint(2015, 2023)}"
        )
    return details


def _texts(p: Product, rng: random.Random) -> tuple[str, list[str], list[str], dict]:
    """Title, feature bullets, description paragraphs and details, in varied wording."""
    facts = _place_facts(p, rng)
    adjective = rng.choice(p.ptype.adjectives) if p.ptype.adjectives else ""
    use = rng.choice(p.ptype.uses) if p.ptype.uses else ""
    title = _title(p, facts, adjective, use, rng)
    features = _features(p, facts, use, rng)
    description = _description(p, facts, adjective, use, rng)
    return title, features, description, _details(p, facts, rng)


# --------------------------------------------------------------------------------------------------
# Records, messy on purpose
# --------------------------------------------------------------------------------------------------


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))


def _messy_price(rng: random.Random, price: float):
    """Most prices are clean floats; a few are missing, zero, negative, strings or absurd."""
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.06:
        return 0.0
    if roll < 0.065:
        return -round(price, 2)
    if roll < 0.085:
        return rng.choice([f"${price:,.2f}", f"{price:.2f}", f"from ${price:.2f}", "N/A", "Currently unavailable"])
    if roll < 0.09:
        return rng.choice([round(price * 1000, 2), 99999.0, 0.01])
    return round(price, 2)


def _record(p: Product, price: float, rng: random.Random) -> dict:
    title, features, description, details = _texts(p, rng)
    if rng.random() < 0.01:  # a very short listing
        title, features, description = p.ptype.noun, [], []
    return {
        "main_category": p.category,
        "title": title,
        "average_rating": round(min(5.0, max(1.0, rng.gauss(4.2, 0.5))), 1),
        "rating_number": int(rng.paretovariate(1.2) * 5),
        "features": features,
        "description": description,
        "price": _messy_price(rng, price),
        "images": [],
        "videos": [],
        "store": p.brand,
        "categories": [p.category, p.ptype.noun + "s"],
        "details": details,
        "parent_asin": _asin(rng),
        "bought_together": None,
    }


def _generate(seed: int, n: int) -> list[tuple[dict | str, float | None]]:
    """(raw record, noiseless price) pairs; malformed lines carry no price.

    Sequential in the seed: the first k records of a larger catalog are the k records of a smaller one,
    so a bigger training set (gpu profile) extends the shipped file without changing it.
    """
    rng = random.Random(seed)
    brands = _brands(rng)
    out: list[tuple[dict | str, float | None]] = []
    while len(out) < n:
        p = _product(rng, brands)
        price = p.expected_price * math.exp(rng.gauss(0, NOISE_SIGMA))
        if not 0.5 <= price <= 999.0:  # the catalog covers $0.50 to $999
            continue
        record = _record(p, price, rng)
        out.append((record, p.expected_price))
        if rng.random() < 0.015:  # a duplicate listing under another ASIN
            out.append(({**record, "parent_asin": _asin(rng)}, p.expected_price))
        if rng.random() < 0.002:  # a line cut short on export
            out.append((json.dumps(record)[: rng.randint(10, 80)], None))
    return out[:n]


def generate_records(seed: int = SEED, n: int = N_RECORDS) -> list[dict | str]:
    """The raw catalog: dicts in the Amazon 2023 schema, plus a few malformed JSON strings."""
    return [record for record, _ in _generate(seed, n)]


def oracle_prices(seed: int = SEED, n: int = N_RECORDS) -> dict[str, float]:
    """parent_asin -> the noiseless expected price: the best any predictor could do."""
    return {r["parent_asin"]: e for r, e in _generate(seed, n) if isinstance(r, dict) and e is not None}


def write_catalog(path: Path = CATALOG_PATH, seed: int = SEED, n: int = N_RECORDS) -> Path:
    """Gzipped JSONL with a fixed header (mtime 0, no file name), so the bytes depend on the seed only."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in generate_records(seed, n)]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(payload)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else CATALOG_PATH
    write_catalog(path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {N_RECORDS} records, seed {SEED}, catalog v{VERSION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
