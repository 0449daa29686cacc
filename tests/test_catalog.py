"""The v2 price process: what makes it hard for bag-of-words must really be in the generator."""

import random
from dataclasses import replace

import pytest

from helpers import catalog
from helpers.catalog import CATEGORIES, Product, expected_price, say, say_pack


def _type(noun: str):
    return next(t for types in CATEGORIES.values() for t in types if t.noun == noun)


def test_product_table_loads_with_every_field():
    types = [t for ts in CATEGORIES.values() for t in ts]
    assert len(CATEGORIES) == 8 and len(types) >= 70
    for t in types:
        assert t.base > 0 and t.specs, t.noun  # every type has at least one numeric spec
        for spec in t.specs:
            assert 0 < spec.low < spec.high and spec.elasticity > 0
            assert all(spec.low <= v <= spec.high for v in spec.values), (t.noun, spec.name)


def test_quantities_are_written_in_many_forms_with_conversions():
    rng = random.Random(0)
    forms = {say(2000, "GB", rng) for _ in range(200)}
    assert {"2TB", "2 TB"} <= forms and ({"2000GB", "2,000GB"} & forms)
    assert {say(2160, "p", rng) for _ in range(100)} >= {"4K", "2160p"}
    feet = {say(6, "ft", rng) for _ in range(200)}
    assert "1.8 m" in feet and "72 inches" in feet
    assert "5.2 L" in {say(5.5, "quart", rng) for _ in range(200)}


def test_pack_counts_are_sometimes_a_product_to_multiply():
    rng = random.Random(1)
    written = {say_pack(100, rng) for _ in range(400)}
    assert any(w.startswith("2 Boxes of 50") or w.startswith("4 x 25") for w in written)
    assert "100-Pack" in written


def test_pack_price_is_not_separable_in_count_and_unit_price():
    # price = unit * n**0.9 + overhead: the 12-pack premium depends on what one unit costs.
    screws, bulbs = _type("Wood Screws"), _type("LED Light Bulb")

    def price(t, n):
        return expected_price(Product(t, "X", "mid", {s.name: s.low for s in t.specs}, pack=n,
                                      material=t.materials[0][0]))

    cheap_ratio = price(screws, 12) / price(screws, 1)
    dear_ratio = price(bulbs, 12) / price(bulbs, 1)
    assert cheap_ratio < dear_ratio  # the fixed per-listing cost dominates cheap packs
    assert dear_ratio < 12**catalog.PACK_EXPONENT


def test_premium_brands_charge_more_per_unit_of_size():
    tv = _type("Smart TV")
    spec = tv.specs[0]

    def price(tier, size):
        return expected_price(Product(tv, "X", tier, {spec.name: size}, material=tv.materials[0][0]))

    budget = price("budget", spec.high) / price("budget", spec.low)
    luxury = price("luxury", spec.high) / price("luxury", spec.low)
    assert luxury > 1.5 * budget  # a bag-of-words model adds "luxury brand" and "85 inch"; the price multiplies


def test_every_price_fact_is_written_somewhere_in_the_record():
    rng = random.Random(5)
    brands = catalog._brands(rng)
    for _ in range(300):
        p = catalog._product(rng, brands)
        title, features, description, details = catalog._texts(p, rng)
        text = " ".join([title, *features, *description, *(f"{k}: {v}" for k, v in details.items())])
        assert p.brand in text and p.ptype.noun.lower() in text.lower()
        if p.ptype.pack:
            assert f"Unit Count: {p.pack}" in text  # and often in the title or bullets, in another form
        if p.series is not None:
            assert str(p.series) in title
        if p.condition == "renewed":
            assert "Renewed" in text or "Refurbished" in text
    for _ in range(300):  # each spec, in the form chosen for this listing, is in the title or the bullets
        p = catalog._product(rng, brands)
        facts = catalog._place_facts(p, rng)
        title = catalog._title(p, facts, "", "", rng)
        features = " ".join(catalog._features(p, facts, "", rng))
        for name, words in facts.specs.items():
            assert words in title or words in features, (name, words, title, features)


def test_a_larger_catalog_extends_the_shipped_one():
    small = catalog.generate_records(seed=11, n=400)
    large = catalog.generate_records(seed=11, n=900)
    assert large[:400] == small


@pytest.mark.parametrize("value, expected", [(37.4, 37.0), (4.37, 4.5), (1234, 1200.0), (0.46, 0.5), (0.23, 0.2)])
def test_drawn_sizes_are_rounded_like_listings(value, expected):
    assert catalog.nice(value) == expected


def test_expected_price_grows_with_every_documented_factor():
    drill = _type("Cordless Drill")
    base = Product(drill, "X", "mid", {"voltage": 18.0}, material=drill.materials[0][0])
    price = expected_price(base)
    assert expected_price(replace(base, tier="premium")) > price
    assert expected_price(replace(base, specs={"voltage": 36.0})) > price
    assert expected_price(replace(base, warranty=5)) > price
    assert expected_price(replace(base, grade="Pro")) > price
    assert expected_price(replace(base, series=9)) > price > expected_price(replace(base, series=1))
    assert expected_price(replace(base, condition="renewed")) < price
