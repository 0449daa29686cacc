import re

import pytest

from helpers.chat import ChatFormatError, assistant_mask, format_llama2, parse_llama2, to_messages

TWO_TURNS = ("<s>[INST] <<SYS>>\nYou price products.\n<</SYS>>\n\nHow much is a USB cable? [/INST] About $9. </s>"
             "<s>[INST] And a 65 inch TV? [/INST] About $900. </s>")


def test_multi_turn_with_system_prompt():
    assert parse_llama2(TWO_TURNS) == [
        {"role": "system", "content": "You price products."},
        {"role": "user", "content": "How much is a USB cable?"},
        {"role": "assistant", "content": "About $9."},
        {"role": "user", "content": "And a 65 inch TV?"},
        {"role": "assistant", "content": "About $900."},
    ]
    assert parse_llama2(format_llama2(parse_llama2(TWO_TURNS))) == parse_llama2(TWO_TURNS)  # round trip


def test_missing_system_prompt_and_guanaco_style_spacing():
    messages = parse_llama2("<s>[INST]  What is QLoRA?  [/INST]  Fine-tuning a 4-bit model with adapters.</s>")
    assert messages == [{"role": "user", "content": "What is QLoRA?"},
                        {"role": "assistant", "content": "Fine-tuning a 4-bit model with adapters."}]
    assert format_llama2(messages) == "<s>[INST] What is QLoRA? [/INST] Fine-tuning a 4-bit model with adapters. </s>"


def test_an_open_last_turn_is_a_prompt():
    assert parse_llama2("<s>[INST] Hi [/INST]") == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("text, reason", [
    ("just text", "no [INST]"),
    ("<s>[INST] question without end", "no [/INST]"),
    ("<s>[INST] a [/INST] b </s><s>[INST] <<SYS>>\nlate\n<</SYS>>\n\nc [/INST] d </s>", "only the first turn"),
    ("<s>[INST]   [/INST] answer </s>", "empty user"),
    ("<s>[INST] a [/INST] </s><s>[INST] b [/INST] c </s>", "no answer but is not the last"),
    ("preamble <s>[INST] a [/INST] b </s>", "text before"),
])
def test_malformed_strings_say_what_is_wrong(text, reason):
    with pytest.raises(ChatFormatError, match=re.escape(reason)):
        parse_llama2(text)


def test_dataset_conversion_counts_what_it_skips():
    rows = [{"text": TWO_TURNS}, {"text": "no markers"}, {"text": "<s>[INST] only a prompt [/INST]"},
            {"text": "<s>[INST] q [/INST] a </s>"}]
    converted, skipped = to_messages(rows)
    assert len(converted) == 2 and converted[1]["messages"][-1] == {"role": "assistant", "content": "a"}
    assert skipped == {"no [INST] marker": 1, "no assistant answer": 1}


def test_assistant_mask_on_a_known_example(embedded_dir):
    from helpers.models import load_tokenizer

    tokenizer = load_tokenizer(str(embedded_dir))
    messages = [{"role": "system", "content": "You price products."},
                {"role": "user", "content": "How much is a USB cable?"},
                {"role": "assistant", "content": "About $9."},
                {"role": "user", "content": "And a TV?"},
                {"role": "assistant", "content": "About $900."}]
    ids, mask = assistant_mask(tokenizer, messages)
    assert len(ids) == len(mask) and ids == tokenizer(tokenizer.apply_chat_template(messages, tokenize=False),
                                                      add_special_tokens=False)["input_ids"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert trained == "About $9.<|im_end|>\nAbout $900.<|im_end|>\n"  # answers and their end-of-turn markers
    untrained = tokenizer.decode([i for i, m in zip(ids, mask) if not m])
    assert "How much is a USB cable?" in untrained and "<|im_start|>assistant\n" in untrained


# --- training data ---------------------------------------------------------------------------------

from helpers.chat import (  # noqa: E402
    SYSTEM_PROMPT,
    build_instruction_set,
    instructions_for,
    load_guanaco,
    score_answer,
    score_outputs,
    supports_assistant_only_loss,
    to_prompt_completion,
)

CATEGORIES = ["Automotive", "Tools & Home Improvement"]
ROW = {"id": "A1", "category": "Tools & Home Improvement", "price": 10.49,
       "title": "Rosly 25 ft Magnetic Tip Tape Measure",
       "text": "Rosly 25 ft Magnetic Tip Tape Measure\nThe Rosly tape measure is built for construction.\n"
               "25 ft length\nBrand: Rosly Material: Steel"}


def test_prompt_completion_splits_before_the_last_answer():
    messages = parse_llama2(TWO_TURNS)
    pair = to_prompt_completion(messages)
    assert pair["completion"] == [{"role": "assistant", "content": "About $900."}]
    assert pair["prompt"] == messages[:-1] and pair["prompt"][0]["role"] == "system"  # earlier answer is context
    with pytest.raises(ChatFormatError, match="no assistant turn"):
        to_prompt_completion([{"role": "user", "content": "hi"}])


def test_instructions_read_their_answers_from_the_item():
    examples, skipped = instructions_for(ROW, CATEGORIES)
    assert skipped == []
    answers = {e["task"]: e["answer"] for e in examples}
    assert answers == {"category": "Tools & Home Improvement", "brand": "Rosly",
                       "title": "Rosly 25 ft Magnetic Tip Tape Measure", "price": "$10"}
    for e in examples:
        system, user, assistant = e["messages"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT} and assistant["content"] == e["answer"]
        assert "Tape Measure\nThe" not in user["content"] and "The Rosly tape measure" in user["content"]
    title_question = next(e for e in examples if e["task"] == "title")["messages"][1]["content"]
    assert ROW["title"] not in title_question  # the answer is not in the question


def test_instruction_set_counts_what_it_skips():
    no_brand = dict(ROW, id="A2", text=ROW["text"].replace("Brand: Rosly ", ""))
    no_price = dict(ROW, id="A3", price=None, category="Garden")
    short = dict(ROW, id="A4", text="Rosly 25 ft Magnetic Tip Tape Measure\nA tape.")
    examples, skipped = build_instruction_set([ROW, no_brand, no_price, short], categories=CATEGORIES)
    assert len(examples) == 4 + 3 + 2
    assert skipped == {"no brand in the details": 1, "no price": 1, "category not in the list": 1,
                       "description too short": 1}


@pytest.mark.parametrize("task, output, answer, score", [
    ("category", "Tools & Home Improvement.", "Tools & Home Improvement", 1.0),
    ("category", "tools & home improvement\nIt measures things.", "Tools & Home Improvement", 1.0),
    ("category", "Home Improvement", "Tools & Home Improvement", 0.0),
    ("brand", " Rosly", "Rosly", 1.0),
    ("price", "$1,150.00", "$1,234", 1.0),
    ("price", "about 40 dollars", "$60", 0.0),
    ("price", "I cannot know that.", "$60", None),
    ("title", "Rosly Tape Measure", "Rosly 25 ft Magnetic Tip Tape Measure", 2 * 3 / (3 + 7)),
    ("title", "", "Rosly Tape", 0.0),
])
def test_scores(task, output, answer, score):
    got = score_answer(task, output, answer)
    assert got == (None if score is None else pytest.approx(score))


def test_score_outputs_averages_per_task_and_counts_unreadable():
    examples = [{"task": "price", "answer": "$10"}, {"task": "price", "answer": "$10"},
                {"task": "category", "answer": "Automotive"}]
    table = score_outputs(examples, ["$11", "no idea", "Automotive"])
    assert list(table) == ["category", "price"]
    assert table["price"] == {"score": 0.5, "n": 2, "unparsed": 1} and table["category"]["score"] == 1.0
    with pytest.raises(ValueError, match="2 examples but 1 outputs"):
        score_outputs(examples[:2], ["$1"])
    with pytest.raises(ValueError, match="unknown task"):
        score_answer("poem", "x", "y")


def test_guanaco_loader_converts_and_explains_failures():
    rows = [{"text": "<s>[INST] What is QLoRA? [/INST] LoRA on a 4-bit model. </s>"}, {"text": "broken"}]
    seen = {}

    def fake_loader(name, split):
        seen.update(name=name, split=split)
        return rows

    converted, skipped = load_guanaco(loader=fake_loader)
    assert seen == {"name": "mlabonne/guanaco-llama2-1k", "split": "train"}
    assert converted[0]["messages"][1]["content"] == "LoRA on a 4-bit model." and skipped == {"no [INST] marker": 1}

    def offline(name, split):
        raise ConnectionError("no network")

    with pytest.raises(RuntimeError, match="needs network access.*catalog instruction set"):
        load_guanaco(loader=offline)


def test_assistant_only_loss_needs_generation_tags(embedded_dir):
    from types import SimpleNamespace

    from helpers.models import load_tokenizer

    assert not supports_assistant_only_loss(load_tokenizer(str(embedded_dir)))  # SmolLM2's template has none
    tagged = "{% for m in messages %}{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}"
    assert supports_assistant_only_loss(SimpleNamespace(chat_template=tagged))


def test_trl_trains_on_exactly_the_assistant_mask(embedded_dir, tmp_path):
    """The trainer's labels for a conversational prompt/completion pair fall where assistant_mask says."""
    from datasets import Dataset

    from helpers.profiles import get_profile
    from helpers.training import config_for, make_trainer

    examples, _ = instructions_for(ROW, CATEGORIES, words=12)
    rows = [to_prompt_completion(e["messages"]) for e in examples]
    profile = get_profile("smoke")
    trainer = make_trainer(profile, config_for(profile), tmp_path, data={
        "train": Dataset.from_list(rows), "validation": Dataset.from_list(rows[:1])})
    for example, row in zip(examples, trainer.train_dataset):
        ids, mask = assistant_mask(trainer.processing_class, example["messages"])
        trained = ([int(label != -100) for label in row["labels"]] if "labels" in row
                   else row["completion_mask"])
        assert row["input_ids"] == ids and trained == mask
        assert trainer.processing_class.decode([i for i, m in zip(ids, mask) if m]) == example["answer"] + "<|im_end|>\n"
