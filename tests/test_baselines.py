import numpy as np
import pytest

from helpers import baselines as b


def test_random_and_constant():
    guesses = b.random_prices(1000, seed=1)
    assert guesses == b.random_prices(1000, seed=1) and 1 <= min(guesses) and max(guesses) <= 1000
    assert b.constant([1, 2, 10], 2, "mean") == [13 / 3] * 2 and b.constant([1, 2, 10], 1, "median") == [2.0]


def test_hand_features_read_pack_warranty_and_grade():
    cats = ["Office Products", "Toys & Games"]
    f = b.hand_features("Acme Pro Pens (12 Pack) 2-year warranty", "Office Products", cats)
    assert f[1] == pytest.approx(np.log(12)) and f[2] == 2.0 and f[3] == 1.0 and f[-2:] == [1.0, 0.0]
    assert b.hand_features("Plain item", "Toys & Games", cats)[1:4] == [0.0, 0.0, 0.0]


def _toy():
    rng = np.random.default_rng(0)
    words = {"cheap": 5.0, "basic": 20.0, "deluxe": 200.0, "luxury": 600.0}
    texts, prices = [], []
    for _ in range(400):
        word = rng.choice(list(words))
        texts.append(f"a {word} widget with {rng.integers(1, 9)} parts")
        prices.append(words[word] * float(np.exp(rng.normal(0, 0.05))))
    return texts, prices


def test_tfidf_ridge_learns_price_words():
    texts, prices = _toy()
    preds = b.tfidf_ridge(texts[:300], prices[:300], texts[300:])
    errors = np.abs(np.array(preds) - np.array(prices[300:]))
    assert errors.mean() < 0.25 * np.mean(prices[300:])


def test_linear_regression_and_trees_run_on_features():
    texts, prices = _toy()
    cats = ["A"] * len(texts)
    assert len(b.linear_regression(texts[:300], cats[:300], prices[:300], texts[300:], cats[300:])) == 100
    x = np.array([[1.0 if w in t else 0.0 for w in ("cheap", "basic", "deluxe", "luxury")] for t in texts])
    for fit in (b.random_forest, b.gradient_boosting):
        preds = np.array(fit(x[:300], prices[:300], x[300:]))
        assert np.abs(preds - np.array(prices[300:])).mean() < 0.2 * np.mean(prices[300:])


def test_embeddings_keep_input_order(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    texts = ["a much longer sentence about a cordless drill with two batteries", "pen", "a red toy car"]
    vectors = b.embed(texts, progress=False)
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    single = b.embed([texts[1]], progress=False)
    assert np.allclose(vectors[1], single[0], atol=1e-5)  # sorting by length must not shuffle rows
    assert np.array_equal(b.embed(texts, progress=False), vectors)  # the second call comes from the cache
    drill, other_drill, pen = b.embed(["cordless power drill", "battery drill for wood", "ballpoint pen"], progress=False)
    assert float(drill @ other_drill) > float(drill @ pen)  # similar products sit closer together
