"""The diagnosis of notebook 07 (helpers/diagnosis.py) and the paired comparisons (helpers/evaluation.py)."""

import math

import numpy as np
import pytest
import torch

from helpers.diagnosis import (
    TextBlindDigits,
    answer_token_losses,
    answer_tokens,
    distribution_distance,
    item_specificity,
    loss_by_position,
    pooled_features,
    ridge_probe,
    unrelated_pair,
)
from helpers.evaluation import evaluate, load_predictions, paired_difference, record_result
from helpers.inference import PriceDistribution


@pytest.fixture(scope="module")
def tiny(embedded_dir):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_dir))
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).eval()
    return model, tokenizer


def test_item_specificity_separates_a_constant_from_a_reader():
    truths = [10.0, 100.0, 1000.0, 50.0]
    constant = item_specificity([100.0] * 4, truths)
    assert constant["spread"] == 0 and constant["correlation"] == 0 and constant["distinct"] == 1
    perfect = item_specificity(truths, truths)
    assert math.isclose(perfect["spread"], 1.0) and math.isclose(perfect["correlation"], 1.0)
    assert item_specificity(sorted(truths)[::-1], sorted(truths))["correlation"] < 0
    with pytest.raises(ValueError, match="two or more"):
        item_specificity([1.0], [1.0])


def test_distribution_distance_is_zero_for_identical_and_one_for_disjoint():
    same = [PriceDistribution([12, 120], [0.5, 0.5]) for _ in range(3)]
    assert distribution_distance(same) == pytest.approx(0.0)
    disjoint = [PriceDistribution([5], [1.0]), PriceDistribution([700], [1.0])]
    assert distribution_distance(disjoint) == pytest.approx(0.5)  # each is half a distribution away from the mean


def test_unrelated_pair_takes_another_category_and_a_far_price():
    items = [{"category": "A", "price": 10.0}, {"category": "A", "price": 900.0}, {"category": "B", "price": 20.0},
             {"category": "B", "price": 400.0}]
    assert unrelated_pair(items) == (0, 3)
    assert unrelated_pair(items[:3]) == (0, 1)  # none qualifies: the most different price


def test_answer_token_losses_are_the_training_losses(tiny):
    model, tokenizer = tiny
    prompt, completion = "How much?\n\nA pen\n\nPrice is $", "12.00"
    losses = answer_token_losses(model, tokenizer, [prompt, prompt + " x"], [completion, "7.00"], progress=False)
    assert len(losses[0]) == len(answer_tokens(tokenizer, completion)) == 6  # 1 2 . 0 0 <end>
    ids = tokenizer(prompt)["input_ids"] + answer_tokens(tokenizer, completion)
    labels = [-100] * (len(ids) - 6) + ids[-6:]
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
    assert sum(losses[0]) / 6 == pytest.approx(reference, rel=1e-4)  # padding in the batch changes nothing


def test_text_blind_model_learns_the_answers_and_position_table_adds_up(tiny):
    _, tokenizer = tiny
    blind = TextBlindDigits.fit(tokenizer, ["12.00"] * 9 + ["7.00"])
    common, rare = blind.losses(tokenizer, "12.00"), blind.losses(tokenizer, "7.00")
    assert common[0] < rare[0] and all(v > 0 for v in common)
    # after "1" the 9 training answers all wrote "2": (9 + 0.5) / (9 + 0.5 * (6 tokens seen + 1 unseen))
    assert common[1] == pytest.approx(-math.log(9.5 / 12.5))
    rows = loss_by_position([[1.0, 0.5], [2.0]], [[1.5, 0.5], [2.0]], positions=3)
    assert rows[0] == {"position": 1, "items": 2, "model nats": 1.5, "text-blind nats": 1.75, "reading buys": 0.25}
    assert rows[1]["items"] == 1 and rows[-1]["position"] == "whole answer"
    assert rows[-1]["reading buys"] == pytest.approx((2.0 - 1.5) / 2)


def test_frozen_features_and_ridge_probe(tiny):
    model, tokenizer = tiny
    feats = pooled_features(model, tokenizer, ["a", "a longer text here", "b"], batch_size=2, progress=False)
    alone = pooled_features(model, tokenizer, ["a longer text here"], progress=False)
    assert feats.shape == (3, 32) and np.allclose(feats[1], alone[0], atol=1e-5)  # padding excluded
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    prices = np.exp(2 + x[:, 0])
    predicted = ridge_probe(x[:150], prices[:150], x[150:])
    assert np.mean(np.abs(np.log(predicted) - np.log(prices[150:]))) < 0.05


def test_paired_difference_and_recorded_predictions(tmp_path):
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]
    d = paired_difference(a, b)
    assert d["difference"] == -1.0 and d["low"] == d["high"] == -1.0 and d["share_a_better"] == 1.0
    noisy = paired_difference([1.0, 5.0, 1.0, 5.0], [3.0, 3.0, 3.0, 3.0], n_boot=500)
    assert noisy["low"] < 0 < noisy["high"]
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1.0], [1.0, 2.0])

    items = [{"id": "x1", "price": 10.0}, {"id": "x2", "price": 20.0}]
    path = tmp_path / "results.json"
    record_result(evaluate([12.0, 18.0], items, "model / one", profile="t"), path)
    assert load_predictions("t", "model / one", path=path) == {"x1": 12.0, "x2": 18.0}
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        load_predictions("t", "never recorded", path=path)
