"""Reading a price out of free text a model generated."""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")


def parse_price_text(text: str | None) -> float | None:
    """The first number in `text` ("$1,299.99" -> 1299.99, "about 40 dollars" -> 40.0), or None.

    Thousands separators are understood; nothing numeric (or None) gives None, which the evaluation
    harness counts as unparseable and scores as its stated fallback.
    """
    if not text:
        return None
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return value if math.isfinite(value) else None
