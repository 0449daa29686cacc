"""Reading a price out of free text a model generated.

The first number in the text is the answer. What it may look like, and what we make of it:

| written | read as | why |
| --- | --- | --- |
| `$1,299.99`, `1,299` | 1299.99, 1299 | comma groups of three digits are thousands |
| `1.299,99`, `12,5` | 1299.99, 12.5 | European style: a comma followed by one or two digits is the decimal mark |
| `1e3`, `2.5E2` | 1000, 250 | scientific notation |
| `-1`, `-$5`, `−5` | None | a negative number is no price (base models write `-1` for "don't know") |
| `12,3456` | None | neither thousands nor decimals: ambiguous, so not guessed |
| `1e400` | None | not a finite number |

None is counted by the evaluation harness as unparseable and scored as its stated fallback.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(
    r"(?P<sign>[-−–]\s*)?\$?\s*(?P<number>"
    r"\d{1,3}(?:\.\d{3})+,\d{1,2}(?!\d)"  # 1.299,99 (European thousands and decimals)
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])"  # 1,299.99
    r"|\d+,\d+"  # 12,5 (decimal comma) or 12,3456 (ambiguous)
    r"|\d+(?:\.\d+)?[eE][+-]?\d+"  # 1e3
    r"|\d+(?:\.\d+)?|\.\d+"  # 12, 12.5, .99
    r")"
)


def _value(number: str) -> float | None:
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d{1,2}", number):
        return float(number.replace(".", "").replace(",", "."))
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        return float(number.replace(",", ""))
    if "," in number:
        whole, decimals = number.split(",")
        return float(f"{whole}.{decimals}") if len(decimals) <= 2 else None
    return float(number)


def parse_price_text(text: str | None) -> float | None:
    """The first number in `text` as a price ("$1,299.99" -> 1299.99, "about 40 dollars" -> 40.0), or None.

    None for text without a number, a negative number, an ambiguous grouping or a non-finite value;
    the module docstring lists every form.
    """
    if not text:
        return None
    match = _NUMBER.search(text)
    if match is None or match.group("sign"):
        return None
    value = _value(match.group("number"))
    return value if value is not None and math.isfinite(value) else None
