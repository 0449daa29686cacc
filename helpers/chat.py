"""Chat data: the Llama 2 [INST] format by hand, conversion to messages, and where the loss should fall.

Llama 2 chat wrote a conversation as one string:

    <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s><s>[INST] {user 2} [/INST] {answer 2} </s>

Today's tools keep conversations as a list of messages and let each tokenizer's chat template write them.
`parse_llama2` turns the old strings into messages; `assistant_mask` marks the tokens the model should be
trained on (the assistant's turns), found by rendering the conversation one turn at a time.
"""

from __future__ import annotations

import re
from collections import Counter

SYS_RE = re.compile(r"^\s*<<SYS>>\s*(.*?)\s*<</SYS>>\s*", re.S)


class ChatFormatError(ValueError):
    """A conversation string that does not follow the [INST] format; the message says where."""


def parse_llama2(text: str) -> list[dict]:
    """Llama 2 [INST] string -> [{"role": ..., "content": ...}, ...] (system, then user/assistant turns)."""
    if not isinstance(text, str) or "[INST]" not in text:
        raise ChatFormatError("no [INST] marker: not a Llama 2 chat string")
    messages: list[dict] = []
    chunks = text.split("[INST]")
    if chunks[0].replace("<s>", "").strip():
        raise ChatFormatError(f"text before the first [INST]: {chunks[0].strip()[:40]!r}")
    for turn, chunk in enumerate(chunks[1:], 1):
        if "[/INST]" not in chunk:
            raise ChatFormatError(f"turn {turn} has [INST] but no [/INST]")
        user, answer = chunk.split("[/INST]", 1)
        system = SYS_RE.match(user)
        if system:
            if turn != 1:
                raise ChatFormatError(f"<<SYS>> in turn {turn}: only the first turn may carry the system prompt")
            messages.append({"role": "system", "content": system.group(1).strip()})
            user = user[system.end():]
        user = user.strip()
        if not user:
            raise ChatFormatError(f"turn {turn} has an empty user message")
        answer = answer.replace("</s>", "").replace("<s>", "").strip()
        messages.append({"role": "user", "content": user})
        if answer:
            messages.append({"role": "assistant", "content": answer})
        elif turn != len(chunks) - 1:
            raise ChatFormatError(f"turn {turn} has no answer but is not the last turn")
    return messages


def format_llama2(messages: list[dict]) -> str:
    """messages -> the Llama 2 [INST] string (the inverse of parse_llama2, for showing the format by hand)."""
    out, system = [], None
    rest = list(messages)
    if rest and rest[0]["role"] == "system":
        system = rest.pop(0)["content"]
    i = 0
    while i < len(rest):
        if rest[i]["role"] != "user":
            raise ChatFormatError(f"message {i} should be a user turn, not {rest[i]['role']!r}")
        user = rest[i]["content"]
        if system is not None and not out:
            user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
        answer = rest[i + 1]["content"] if i + 1 < len(rest) and rest[i + 1]["role"] == "assistant" else None
        out.append(f"<s>[INST] {user} [/INST]" + (f" {answer} </s>" if answer is not None else ""))
        i += 2 if answer is not None else 1
    return "".join(out)


def to_messages(rows, column: str = "text") -> tuple[list[dict], Counter]:
    """Convert a dataset with one [INST] text column; returns ({"messages": ...} rows, skipped reasons)."""
    out, skipped = [], Counter()
    for row in rows:
        try:
            messages = parse_llama2(row[column])
        except ChatFormatError as error:
            skipped[str(error).split(":")[0]] += 1
            continue
        if not any(m["role"] == "assistant" for m in messages):
            skipped["no assistant answer"] += 1
            continue
        out.append({"messages": messages})
    return out, skipped


def assistant_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(token ids of the rendered conversation, 1 where the token belongs to an assistant turn).

    Each assistant turn is found as the text its template adds between "conversation so far + generation
    prompt" and "conversation including this answer": the answer and its end-of-turn marker, which is
    what the model must learn to write. Templates that rewrite earlier turns are refused.
    """
    render = lambda msgs, gen=False: tokenizer.apply_chat_template(  # noqa: E731
        msgs, tokenize=False, add_generation_prompt=gen)
    full = render(messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before, through = render(messages[:i], gen=True), render(messages[: i + 1])
        if not (through.startswith(before) and full.startswith(through)):
            raise ValueError("this chat template does not render conversations prefix by prefix; "
                             "use trl's assistant_only_loss with a template that has {% generation %} tags")
        spans.append((len(before), len(through)))
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(start <= a < end for start, end in spans)) for a, _ in encoded["offset_mapping"]]
    return list(encoded["input_ids"]), mask
