"""Self-checks for the exercises at the end of each notebook: the learner writes a prediction, runs the
check, and sees right / not quite, without the answer being printed before they have tried."""

from __future__ import annotations

import math


class Verdict(str):
    """The line check_answer printed. As the last expression of a notebook cell it shows nothing more (Jupyter would
    otherwise print it a second time, quoted)."""

    def _ipython_display_(self) -> None:
        pass


def check_answer(label: str, mine: object, truth: object, rel_tol: float = 0.02) -> Verdict:
    """One line: not answered yet, right, or not quite (with the answer). Numbers match within `rel_tol`."""
    if mine is None:
        line = f"{label}: not answered yet (set your prediction above and run this cell again)"
    elif _same(mine, truth, rel_tol):
        line = f"{label}: right ({truth!r})"
    else:
        line = f"{label}: not quite, you said {mine!r}; measured {truth!r}"
    print(line)
    return Verdict(line)


def _same(mine: object, truth: object, rel_tol: float) -> bool:
    if isinstance(truth, bool) or isinstance(mine, bool):
        return mine is truth or mine == truth
    if isinstance(truth, (int, float)) and isinstance(mine, (int, float)):
        return math.isclose(float(mine), float(truth), rel_tol=rel_tol, abs_tol=1e-9)
    if isinstance(truth, str) and isinstance(mine, str):
        return mine.strip().lower() == truth.strip().lower()
    return mine == truth
