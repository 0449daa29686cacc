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
