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
