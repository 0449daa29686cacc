from helpers.inference import generate_completions, predict_prices


def test_batched_generation_matches_one_at_a_time(embedded_dir):
    from helpers.models import load_base_model

    loaded = load_base_model(quantization="fp32", device="cpu")
    prompts = ["How much does this cost to the nearest dollar?\n\nA short USB cable\n\nPrice is $",
               "How much does this cost to the nearest dollar?\n\nA 65 inch OLED smart TV with HDR, voice remote "
               "and streaming apps, wall mount included\n\nPrice is $"]
    batched = generate_completions(loaded.model, loaded.tokenizer, prompts, batch_size=2, progress=False)
    single = [generate_completions(loaded.model, loaded.tokenizer, [p], batch_size=1, progress=False)[0] for p in prompts]
    assert batched == single  # left padding must not change what the model writes
    assert loaded.tokenizer.padding_side == "right"  # restored afterwards
    prices, raw = predict_prices(loaded.model, loaded.tokenizer, prompts, batch_size=2, progress=False)
    assert raw == batched and all(p is None or p >= 0 for p in prices)


def test_an_answer_ends_at_any_special_token(embedded_dir):
    """The shipped generative adapter writes a price and then <|im_start|>: generation stops there, so the answer
    reads "10.00", not "10.00ass" (which the price reader rightly refuses)."""
    from helpers.inference import stop_token_ids
    from helpers.models import load_tokenizer

    tokenizer = load_tokenizer(None)
    start, end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert {start, end, tokenizer.eos_token_id} <= set(stop_token_ids(tokenizer))
    written = tokenizer("10.00", add_special_tokens=False)["input_ids"] + [start] + tokenizer(
        "assistant", add_special_tokens=False)["input_ids"]

    class Scripted(torch.nn.Module):  # writes `written`, stopping where generate would at an end token
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def generate(self, input_ids, attention_mask, max_new_tokens, do_sample, pad_token_id, eos_token_id):
            new = []
            for token in written[:max_new_tokens]:
                new.append(token)
                if token in eos_token_id:
                    break
            return torch.cat([input_ids, torch.tensor([new] * len(input_ids))], dim=1)

    text = generate_completions(Scripted(), tokenizer, ["Price is $"], progress=False)
    assert text == ["10.00"]
    assert predict_prices(Scripted(), tokenizer, ["Price is $"], progress=False)[0] == [10.0]


# --------------------------------------------------------------------------------------------------
# expected-price decoding
# --------------------------------------------------------------------------------------------------

import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.inference import (  # noqa: E402
    PriceDistribution,
    _CachedSteps,
    digit_tokens,
    enumerate_prices,
    price_distributions,
)

# a toy vocabulary: ids 0-9 write the digits, 10 is ".", 11 is "x", 12 is the two-digit chunk "12"
DIGITS = {i: str(i) for i in range(10)}
VOCAB = 13


class TableSteps:
    """A fixed next-token distribution for every written prefix (what a model would return)."""

    def __init__(self, table: dict[str, dict[int, float]], n_items: int = 1, digits=DIGITS):
        self.table, self.digits = table, digits
        self.rows = [""] * n_items
        self.calls = 0

    def _logprobs(self) -> torch.Tensor:
        out = torch.full((len(self.rows), VOCAB), -math.inf)
        for r, prefix in enumerate(self.rows):
            for token, prob in self.table.get(prefix, {10: 1.0}).items():
                out[r, token] = math.log(prob)
        return out

    def __call__(self, parents, tokens):
        self.calls += 1
        if parents is not None:
            self.rows = [self.rows[p] + self.digits[t] for p, t in zip(parents, tokens)]
        return self._logprobs()


TABLE = {"": {1: 0.6, 2: 0.4}, "1": {10: 0.5, 0: 0.5}, "10": {10: 1.0}, "2": {10: 1.0}}


def test_expected_price_on_a_fixed_distribution():
    (dist,) = enumerate_prices(TableSteps(TABLE), 1, DIGITS, top_k=10, min_prob=0.0)
    assert dist.values == [1, 2, 10]
    assert dist.probs == pytest.approx([0.3, 0.4, 0.3])
    assert dist.coverage == pytest.approx(1.0)
    assert dist.expected == pytest.approx(0.3 * 1 + 0.4 * 2 + 0.3 * 10)  # 4.1
    assert dist.median == 2.0  # cumulative 0.3, 0.7: the median is 2
    assert dist.mode == 2.0


def test_pruned_branches_borrow_the_shape_of_their_best_sibling():
    # with one branch per node only "1" is expanded; "2" borrows its tail: 50% end, 50% one more "0"
    (dist,) = enumerate_prices(TableSteps(TABLE), 1, DIGITS, top_k=1, min_prob=0.0)
    assert dict(zip(dist.values, dist.probs)) == pytest.approx({1: 0.3, 10: 0.3, 2: 0.2, 20: 0.2})
    assert dist.expected == pytest.approx(0.3 + 3 + 0.4 + 4)


def test_non_digit_mass_and_long_numbers_are_reported_as_lost_coverage():
    table = {"": {1: 0.5, 11: 0.5}, "1": {2: 1.0}, "12": {3: 1.0}, "123": {4: 1.0}, "1234": {10: 1.0}}
    (dist,) = enumerate_prices(TableSteps(table), 1, DIGITS, max_digits=3, top_k=10, min_prob=0.0)
    assert dist.coverage == pytest.approx(0.0) and dist.expected is None and dist.median is None
    (dist,) = enumerate_prices(TableSteps(table), 1, DIGITS, max_digits=4, top_k=10, min_prob=0.0)
    assert dist.values == [1234] and dist.coverage == pytest.approx(0.5)
    assert PriceDistribution().mode is None


def test_multi_digit_tokens_like_llama3():
    digits = {**DIGITS, 12: "12"}
    table = {"": {12: 0.75, 3: 0.25}, "12": {10: 1.0}, "3": {10: 1.0}}
    steps = TableSteps(table, n_items=2, digits=digits)
    first, second = enumerate_prices(steps, 2, digits, top_k=10, min_prob=0.0)
    assert dict(zip(first.values, first.probs)) == pytest.approx({3: 0.25, 12: 0.75})
    assert first.expected == pytest.approx(0.25 * 3 + 0.75 * 12) and second.values == first.values


def test_min_prob_limits_model_calls():
    wide = {"": {d: 0.1 for d in range(10)}, **{str(d): {10: 1.0} for d in range(10)}}
    eager = TableSteps(wide)
    enumerate_prices(eager, 1, DIGITS, top_k=10, min_prob=0.0)
    frugal = TableSteps(wide)
    (dist,) = enumerate_prices(frugal, 1, DIGITS, top_k=3, min_prob=0.2)
    assert eager.calls == 2 and frugal.calls == 1  # nothing reached 0.2: no second forward
    assert dist.values == list(range(10)) and dist.expected == pytest.approx(4.5)


def test_smollm2_writes_one_digit_per_token(embedded_dir):
    from helpers.models import load_tokenizer

    tokenizer = load_tokenizer(str(embedded_dir))
    digits = digit_tokens(tokenizer)
    assert sorted(digits.values()) == [str(d) for d in range(10)]


def test_cached_steps_match_full_forward_passes(embedded_dir):
    """The KV-cache walk (left padding, row reordering) gives the same next-token log-probs as recomputing."""
    from helpers.models import load_base_model

    loaded = load_base_model(quantization="fp32", device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    prompts = ["How much does this cost?\n\nA USB cable\n\nPrice is $",
               "How much does this cost?\n\nA 65 inch OLED TV with a wall mount and a remote\n\nPrice is $"]
    tokenizer.padding_side = "left"
    steps = _CachedSteps(model, tokenizer, prompts)
    tokenizer.padding_side = "right"
    digit = {d: tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)}
    paths = [[], []]
    with torch.inference_mode():
        got = steps(None, None)
        for parents, tokens in (([1, 0, 1], [digit[4], digit[1], digit[9]]), ([2, 0], [digit[9], digit[0]])):
            paths = [paths[p] + [t] for p, t in zip(parents, tokens)]
            got = steps(parents, tokens)
        item_of = [1, 1]  # both final rows descend from prompt 1 (via rows 2 then 0 of the middle step)
        for row, item in enumerate(item_of):
            ids = tokenizer(prompts[item])["input_ids"] + paths[row]
            want = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
            assert torch.allclose(got[row], want, atol=2e-3), (row, (got[row] - want).abs().max())
        dists = price_distributions(model, tokenizer, prompts, batch_size=2, progress=False)
    assert tokenizer.padding_side == "right"
    assert all(d.coverage > 0.5 and d.expected is not None for d in dists)


def test_distribution_plot_marks_truth_and_estimates():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.plots import plot_price_distribution

    dist = PriceDistribution([10, 20, 500], [0.5, 0.3, 0.2], 1.0)
    ax = plot_price_distribution(dist, truth=25.0, greedy=10.0)
    labels = ax.get_legend_handles_labels()[1]
    assert labels[1:] == ["truth $25", "greedy $10", "expected (mean) $111", "median $10"]
