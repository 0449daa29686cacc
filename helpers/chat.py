"""Chat data: the Llama 2 [INST] format by hand, conversion to messages, and where the loss should fall.

Llama 2 chat wrote a conversation as one string:

    <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s><s>[INST] {user 2} [/INST] {answer 2} </s>

Today's tools keep conversations as a list of messages and let each tokenizer's chat template write them.
`parse_llama2` turns the old strings into messages; `assistant_mask` marks the tokens the model should be
trained on (the assistant's turns), found by rendering the conversation one turn at a time.
"""

from __future__ import annotations

import math
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


# --------------------------------------------------------------------------------------------------
# Training data: conversations -> prompt/completion, and the offline instruction set
# --------------------------------------------------------------------------------------------------


def supports_assistant_only_loss(tokenizer) -> bool:
    """trl's assistant_only_loss needs a chat template that wraps answers in {% generation %} tags."""
    return "generation" in re.findall(r"{%-?\s*(\w+)", tokenizer.chat_template or "")


def to_prompt_completion(messages: list[dict]) -> dict:
    """Split a conversation before its last assistant turn: trl trains on the completion only.

    Earlier assistant turns stay in the prompt as context (no loss on them); for single-turn data,
    like guanaco-llama2-1k and our instruction set, this is exactly "loss on the assistant turn".
    """
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise ChatFormatError("no assistant turn to train on")
    return {"prompt": messages[:last], "completion": [messages[last]]}


SYSTEM_PROMPT = "You are a concise shopping assistant. Answer with only what is asked."
TASKS = ("category", "brand", "title", "price")
_BRAND = re.compile(r"\bBrand: (\S+)")


def _description(text: str, title: str, words: int) -> str:
    """The product text without its title line (titles are an answer), cut to `words` words."""
    lines = text.split("\n")
    if lines and lines[0].strip() == title.strip():
        lines = lines[1:]
    return " ".join(" ".join(lines).split()[:words])


def instructions_for(row: dict, categories: list[str], words: int = 40) -> tuple[list[dict], list[str]]:
    """The instruction examples one catalog item yields, and why any task was skipped for it.

    Every answer is read from the item's own fields, so it can be scored exactly:
    category (one of `categories`), brand (the title's first word when the details name it),
    title (the listing title, from a description that no longer contains it), price ("$123").
    """
    title, text, category, price = (row.get("title") or "").strip(), row.get("text") or "", row.get("category"), row.get("price")
    description = _description(text, title, words)
    out, skipped = [], []

    def add(task, question, answer):
        out.append({"id": row.get("id"), "task": task, "answer": answer, "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{question}\n\n{description}"},
            {"role": "assistant", "content": answer}]})

    if len(description.split()) < 5:
        return [], ["description too short"]
    if category in categories:
        add("category", f"Which department sells this product? Answer with one of: {', '.join(categories)}.", category)
    else:
        skipped.append("category not in the list")
    brand = _BRAND.search(text)
    if brand and title.split()[:1] == [brand.group(1)]:
        add("brand", "Which brand makes this product? Answer with the brand name only.", brand.group(1))
    else:
        skipped.append("no brand in the details")
    if title and len(title.split()) >= 2:
        add("title", "Write a one-line listing title for this product.", title)
    else:
        skipped.append("no usable title")
    if isinstance(price, (int, float)) and price > 0:
        add("price", "Estimate the price of this product in US dollars. Answer with a dollar amount only.", f"${math.floor(price + 0.5):,}")  # half up, as make_completion
    else:
        skipped.append("no price")
    return out, skipped


def build_instruction_set(rows, categories: list[str] | None = None, words: int = 40) -> tuple[list[dict], Counter]:
    """All instruction examples of a split (rows of the curated dataset), and the skip counts by reason."""
    rows = list(rows)
    categories = categories or sorted({r["category"] for r in rows if r.get("category")})
    out, skipped = [], Counter()
    for row in rows:
        examples, reasons = instructions_for(row, categories, words)
        out += examples
        skipped.update(reasons)
    return out, skipped


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def score_answer(task: str, output: str, answer: str) -> float | None:
    """1/0 for category, brand and price (within 20%); word-overlap F1 for titles; None: unparseable price."""
    from helpers.prices import parse_price_text

    first_line = (output or "").strip().split("\n")[0]
    if task in ("category", "brand"):
        return float(_words(first_line) == _words(answer))  # case, spacing and punctuation do not count
    if task == "price":
        guess, truth = parse_price_text(first_line), parse_price_text(answer)
        return None if guess is None else float(abs(guess - truth) <= 0.2 * truth)
    if task == "title":
        got, want = _words(first_line), _words(answer)
        common = sum((Counter(got) & Counter(want)).values())
        return 0.0 if not common else 2 * common / (len(got) + len(want))
    raise ValueError(f"unknown task {task!r} (one of {', '.join(TASKS)})")


def score_outputs(examples: list[dict], outputs: list[str]) -> dict[str, dict]:
    """Per task: mean score, how many examples, and how many outputs could not be read (scored 0)."""
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    table: dict[str, dict] = {}
    for example, output in zip(examples, outputs):
        row = table.setdefault(example["task"], {"n": 0, "total": 0.0, "unparsed": 0})
        score = score_answer(example["task"], output, example["answer"])
        row["n"] += 1
        row["unparsed"] += score is None
        row["total"] += score or 0.0
    return {task: {"score": row["total"] / row["n"], "n": row["n"], "unparsed": row["unparsed"]}
            for task, row in sorted(table.items(), key=lambda kv: TASKS.index(kv[0]) if kv[0] in TASKS else 99)}


GUANACO = "mlabonne/guanaco-llama2-1k"


def load_guanaco(split: str = "train", loader=None) -> tuple[list[dict], Counter]:
    """The classic tutorial dataset from the hub, converted to messages (course profile; needs network)."""
    if loader is None:
        from datasets import load_dataset as loader
    try:
        rows = loader(GUANACO, split=split)
    except Exception as error:  # offline, hub down, renamed dataset
        raise RuntimeError(f"could not load {GUANACO} from the Hugging Face Hub ({type(error).__name__}: {error}). "
                           "It needs network access; offline, use the catalog instruction set "
                           "(DATASET = 'catalog').") from error
    return to_messages(rows)


def chat_prompts(tokenizer, examples: list[dict]) -> list[str]:
    """Each example's conversation up to its last answer, rendered with the generation prompt."""
    return [tokenizer.apply_chat_template(to_prompt_completion(e["messages"])["prompt"], tokenize=False,
                                          add_generation_prompt=True) for e in examples]


def answer_all(model, tokenizer, examples: list[dict], max_new_tokens: int = 24, batch_size: int = 8,
               progress: bool = True) -> list[str]:
    """Greedy answers of a model to held-out examples (their own answers are not shown to it)."""
    from helpers.inference import generate_completions

    return [text.strip() for text in generate_completions(
        model, tokenizer, chat_prompts(tokenizer, examples), max_new_tokens=max_new_tokens, batch_size=batch_size,
        progress=progress, add_special_tokens=False)]


def held_out(examples: list[dict], per_task: int) -> list[dict]:
    """The first `per_task` examples of every task, in task order (a small balanced evaluation set)."""
    out = []
    for task in TASKS:
        out += [e for e in examples if e["task"] == task][:per_task]
    return out


def format_llama3(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """messages -> the Llama 3 chat format written out by hand (3.1/3.2 templates add a dated system preamble)."""
    out = ["<|begin_of_text|>"]
    for m in messages:
        out.append(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>")
    if add_generation_prompt:
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(out)
