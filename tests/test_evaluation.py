import json
import math

import pytest

from helpers.evaluation import (
    classify,
    evaluate,
    load_results,
    record_result,
    train_median,
)
from helpers.plots import plot_running_error, plot_scatter
from helpers.prices import parse_price_text

ITEMS = [
    {"price": 100.0, "category": "A"},
    {"price": 10.0, "category": "A"},
    {"price": 300.0, "category": "B"},
    {"price": 600.0, "category": "B"},
]


def test_metrics_against_hand_computed_values():
    result = evaluate([110.0, 30.0, 200.0, 600.0], ITEMS, "hand", profile="test")
    errors = [10, 20, 100, 0]
    assert result.mae == pytest.approx(sum(errors) / 4)
    expected_rmsle = math.sqrt(sum((math.log1p(p) - math.log1p(t)) ** 2
                                   for p, t in [(110, 100), (30, 10), (200, 300), (600, 600)]) / 4)
    assert result.rmsle == pytest.approx(expected_rmsle)
    assert result.outcomes == ["hit", "hit", "near", "hit"]  # $100 off $300: over $80 but 33% is under 40%
    assert result.hit_rate == 0.75
    sd = math.sqrt(sum((e - 32.5) ** 2 for e in errors) / 3)
    assert result.mae_ci95 == pytest.approx((max(0, 32.5 - 1.96 * sd / 2), 32.5 + 1.96 * sd / 2))
    assert result.by_category["A"] == {"n": 2, "mae": 15.0, "hit_rate": 1.0}
    assert list(result.by_band) == ["$10-50", "$100-250", "$250-500", "$500+"]


def test_hit_colouring_at_band_edges():
    assert classify(139.99, 100) == "hit"  # $39.99 off: under $40
    assert classify(140, 100) == "near"  # exactly $40 and 40%: not a hit
    assert classify(1199, 1000) == "hit"  # $199 off a $1000 item is under 20%
    assert classify(1200, 1000) == "near"  # exactly 20%: not a hit, but under 40%
    assert classify(179.99, 100) == "near"
    assert classify(180, 100) == "miss"  # $80 and 80%
    assert classify(1399, 1000) == "near" and classify(1400, 1000) == "miss"


def test_unparseable_predictions_are_counted_and_scored_as_fallback():
    result = evaluate(["$120", None, "no idea", float("nan")], ITEMS, "messy", fallback=50.0, profile="test")
    assert result.unparseable == 3
    assert result.predictions == [120.0, 50.0, 50.0, 50.0]
    assert "3 unparseable filled with the training median $50.00" in result.summary()
    readable = evaluate([10, 20, 30, 40], ITEMS, "readable", profile="test")
    assert readable.unparseable == 0 and readable.fallback is None and "0 filled" in readable.summary()


def test_unparseable_without_a_training_fallback_is_refused():
    # Filling with the scored items' own median would use the labels being predicted (a leak).
    with pytest.raises(ValueError, match="train_median"):
        evaluate([None, 20, 30, 40], ITEMS, "no-fallback", profile="test")


def test_train_median_reads_the_training_split_only():
    data = {"train": {"price": [1.0, 5.0, 9.0]}, "test": {"price": [1000.0, 2000.0, 3000.0]}}
    assert train_median(data) == 5.0
    with pytest.raises(ValueError, match="empty"):
        train_median({"train": {"price": []}})


def test_callable_predictor_and_negative_predictions():
    result = evaluate(lambda item: -5 if item["price"] < 50 else item["price"], ITEMS, "fn", profile="test")
    assert result.predictions[1] == 0.0 and result.mae == pytest.approx(2.5)


def test_empty_or_mismatched_input_gives_clear_errors():
    with pytest.raises(ValueError, match="no items"):
        evaluate([], [], "empty")
    with pytest.raises(ValueError, match="3 predictions for 4 items"):
        evaluate([1, 2, 3], ITEMS, "short")
    with pytest.raises(ValueError, match="kind must be"):
        evaluate([1, 2, 3, 4], ITEMS, "x", kind="magic")


def test_results_file_updates_entries(tmp_path):
    path = tmp_path / "results.json"
    record_result(evaluate([100, 10, 300, 600], ITEMS, "perfect", profile="test"), path)
    record_result(evaluate([1, 1, 1, 1], ITEMS, "ones", profile="test"), path)
    record_result(evaluate([100, 10, 300, 500], ITEMS, "perfect", profile="test"), path)  # replaces
    entries = json.loads(path.read_text())
    assert [e["model"] for e in entries] == ["ones", "perfect"] and entries[1]["mae"] == 25.0
    assert {"model", "kind", "dataset", "split", "n", "mae", "rmsle", "hit_rate", "profile", "seconds"} <= set(entries[0])
    assert load_results("test", path) == entries


def test_plots_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    result = evaluate([110.0, 30.0, 200.0, 600.0], ITEMS, "hand", profile="test")
    ax = plot_scatter(result)
    assert len(ax.collections) == 3 and "MAE $32.50" in ax.get_title()
    ax = plot_running_error([result])
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(32.5)


@pytest.mark.parametrize("text, value", [
    ("$1,299.99", 1299.99), ("12", 12.0), ("about 40 dollars", 40.0), ("Price is $ 7.50.", 7.5),
    ("", None), (None, None), ("no idea, sorry", None), ("It costs $.99", 0.99), ("12,5", 12.5),
    # numbers models really write (issue 21): never a silently wrong value
    ("-1", None), ("-$5", None), ("− 5", None), ("12,3456", None), ("1.299,99", 1299.99), ("1e3", 1000.0),
    ("2.5E2 dollars", 250.0), ("1e400", None), ("1,299", 1299.0), ("$1,299,999.50", 1299999.5),
    ("19.99\n\nThe price of", 19.99), ("Price range 10-20", 10.0), ("49.00", 49.0), ("1.299", 1.299),
    # every script and number format (issue 29): spaces, currency after, k suffix; a model number is not the price
    ("1 299,00 €", 1299.0), ("1 299", 1299.0), ("12.5k", 12500.0), ("$1.2K", 1200.0), ("Model 3000 costs $12", 12.0),
    ("Model 3000 costs 12", None), ("20V drill", None), ("GBP 7.50", 7.5),
])
def test_price_parser(text, value):
    assert parse_price_text(text) == value


def test_comparison_and_group_plots_draw_every_entry():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.evaluation import evaluate
    from helpers.plots import plot_comparison, plot_groups

    items = [{"price": p, "category": c} for p, c in ((5.0, "A"), (60.0, "B"), (300.0, "A"), (700.0, "B"))]
    good = evaluate([6, 55, 310, 650], items, "good", kind="fine-tuned").record()
    bad = evaluate([100, 100, 100, 100], items, "bad").record()
    oracle = evaluate([5, 60, 300, 700], items, "oracle", kind="oracle").record()
    ax = plot_comparison([bad, oracle, good])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bad (n=4, 0 filled)", "good (n=4, 0 filled)"]  # worst first
    assert len(ax.patches) == 2 and any(line.get_linestyle() == "--" for line in ax.lines)
    ax = plot_groups([bad, good], "by_category")
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    with pytest.raises(ValueError, match="no results"):
        plot_comparison([])
