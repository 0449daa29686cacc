"""Reading a price out of text: what a model generated, or a price field of a record (the BYO loader, the catalog).

One grammar for both. A number may be written in any of these ways, with a currency mark before or after
(`$`, `US$`, `€`, `£`, `USD`, `EUR`, `GBP`, `dollars`, `euros`, `pounds`) and a `k`/`K` suffix for thousands:

| written | read as | why |
| --- | --- | --- |
| `$1,299.99`, `1,299` | 1299.99, 1299 | comma groups of three digits are thousands |
| `1.299,99`, `12,5` | 1299.99, 12.5 | European style: a comma followed by one or two digits is the decimal mark |
| `1 299,00 €`, `1 299` | 1299.0, 1299 | space (or no-break/thin space) groups of three digits are thousands |
| `12.5k`, `$1.2K` | 12500, 1200 | k is a thousand (`5 kg` is not: a letter follows) |
| `1e3`, `2.5E2` | 1000, 250 | scientific notation |
| `-1`, `-$5`, `−5` | None | a negative number is no price (base models write `-1` for "don't know") |
| `12,3456` | None | neither thousands nor decimals: ambiguous, so not guessed |
| `1e400` | None | not a finite number |

In free text (`parse_price_text`) the answer is the first number with a currency mark; without one, the first
number, unless it names something else: a label before it (`Model 3000`, `No. 5`, `pack of 2`) or a unit glued
after it (`20V`, `300ml`, `15%`, `5 kg`, `2 x`). Then the text is refused (None) rather than guessed. A price field
(`parse_price_field`) must be one price and nothing else: `from $5` or `$5 - $9` is refused.

None is counted by the evaluation harness as unparseable and scored as its stated fallback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SPACE = "[ \u00a0\u202f\u2009]"  # space, no-break space, narrow no-break space, thin space
_NUMBER = (
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])"  # 1,299.99
    r"|\d{1,3}(?:\.\d{3})+,\d{1,2}(?!\d)"  # 1.299,99 (European thousands and decimals)
    rf"|\d{{1,3}}(?:{_SPACE}\d{{3}})+(?:[.,]\d{{1,2}})?(?![\dA-Za-z])"  # 1 299,00 / 1 299.00 / 1 299
    r"|\d+,\d+"  # 12,5 (decimal comma) or 12,3456 (ambiguous)
    r"|\d+(?:\.\d+)?[eE][+-]?\d+"  # 1e3
    r"|\d+(?:\.\d+)?|\.\d+"  # 12, 12.5, .99
)
_WORD_CURRENCY = r"(?:USD|EUR|GBP|dollars?|euros?|pounds?|bucks)(?![A-Za-z])"
_CANDIDATE = re.compile(
    r"(?<![A-Za-z\d.,])"  # not the tail of a word or of another number (RTX3000, 1.5.2)
    r"(?P<sign>[-−–]\s*)?"
    rf"(?P<pre>US\$|\$|€|£|(?:USD|EUR|GBP){_SPACE}?)?\s*"
    rf"(?P<number>{_NUMBER})"
    r"(?P<k>\s?[kK](?![A-Za-z]))?"
    rf"(?P<post>\s*(?:\$|€|£|{_WORD_CURRENCY}))?"
    r"(?P<glued>[A-Za-z%]"  # a unit written onto the number: 20V, 300ml, 15%
    r"|\s+(?:kg|g|lbs?|oz|mm|cm|ft|ml|w|v|mah|gb|tb|mb|pcs|pieces?|packs?|ct|%|x)(?![A-Za-z]))?",  # or after a space
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"(?:\b(?:model|no|nr|number|sku|part|item|version|ver|type|series|size|style|qty|quantity|pack of|set of|"
    r"case of|count|gen|generation)\.?|#)\s*[:#]?\s*$",
    re.IGNORECASE,
)
_FIELD = re.compile(rf"\s*(?:{_CANDIDATE.pattern})\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Reading:
    value: float | None  # None: ambiguous grouping or not finite
    negative: bool
    marked: bool  # a currency mark before or after
    identifier: bool  # a label before it or a unit glued after it: not a price


def _value(number: str) -> float | None:
    compact = re.sub(_SPACE, "", number)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d{1,2}", compact):
        return float(compact.replace(".", "").replace(",", "."))
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", compact):
        return float(compact.replace(",", ""))
    if "," in compact:
        whole, decimals = compact.split(",")
        return float(f"{whole}.{decimals}") if len(decimals) <= 2 else None
    return float(compact)


def _reading(match: re.Match, text: str) -> _Reading:
    value = _value(match.group("number"))
    if value is not None and match.group("k"):
        value *= 1000
    if value is not None and not math.isfinite(value):
        value = None
    return _Reading(value=value, negative=bool(match.group("sign")),
                    marked=bool(match.group("pre") or match.group("post")),
                    identifier=bool(match.group("glued")) or bool(_LABEL.search(text[: match.start()])))


def _readings(text: str) -> list[_Reading]:
    return [_reading(m, text) for m in _CANDIDATE.finditer(text)]


def parse_price_text(text: str | None) -> float | None:
    """The price in free text ("$1,299.99" -> 1299.99, "about 40 dollars" -> 40.0, "Model 3000 costs $12" -> 12.0),
    or None.

    The first currency-marked number, else the first number unless it is an identifier or a quantity (then None:
    refused, not guessed). None too for text without a number, a negative number, an ambiguous grouping or a
    non-finite value; the module docstring lists every form.
    """
    if not text:
        return None
    readings = _readings(text)
    if not readings:
        return None
    chosen = next((r for r in readings if r.marked), None)
    if chosen is None:
        chosen = readings[0]
        if chosen.identifier:
            return None
    if chosen.negative:
        return None
    return chosen.value


def parse_price_field(text: str) -> tuple[float | None, str | None]:
    """A record's price field written as text: (price, None), or (None, "negative") for a negative number, or
    (None, "unparseable") when the field is not exactly one price ("from $5", "N/A", "$5 - $9", "12,3456")."""
    match = _FIELD.fullmatch(text)
    if match is None or match.group("glued"):
        return None, "unparseable"
    reading = _reading(match, "")
    if reading.value is None:
        return None, "unparseable"
    if reading.negative:
        return None, "negative"
    return reading.value, None
