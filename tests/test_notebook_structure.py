"""Static checks of every numbered notebook: the shared skeleton (title and what you will learn, Colab badge,
install, parameters, a summary, exercises with a self-check), and that outputs published from a default run
still belong to the code they sit under. Nothing is executed here (nbval runs the notebooks)."""

import json
import re
from pathlib import Path

import pytest

from helpers.run_notebooks import has_fresh_published_outputs, notebooks_in_order

NOTEBOOKS = notebooks_in_order(Path(__file__).resolve().parents[1] / "notebooks")


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _headings(cells):
    return [line for cell in cells if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("## ")]


def test_the_notebooks_are_numbered_without_gaps():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(11)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_keeps_the_shared_skeleton(path):
    cells = _cells(path)
    title = "".join(cells[0]["source"])
    assert re.match(rf"# {path.name[:2]} · ", title), "title: '# NN · ...'"
    assert "colab-badge" in title and "learn" in title.lower(), "badge and what you will learn in the first cell"
    headings = _headings(cells)
    order = [next((i for i, h in enumerate(headings) if h.startswith(prefix)), None)
             for prefix in ("## Install (Colab only)", "## Parameters", "## Summary", "## Exercises")]
    assert None not in order, f"missing one of install / parameters / summary / exercises in {headings}"
    assert order == sorted(order), f"sections out of order: {headings}"
    assert any(h.startswith("## 1. ") for h in headings), "numbered sections that explain, run and show"
    exercises = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                     and "## Exercises" in "".join(c["source"]))
    assert any(c["cell_type"] == "code" and "check_answer(" in "".join(c["source"]) for c in cells[exercises:]), \
        "the exercises end with a self-check cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_published_outputs_belong_to_the_code_above_them(path):
    """An unchecked cell may carry outputs only if they were published from a run of its current code
    (`make publish`); after editing a cell, publish again or clear its outputs."""
    stale = [cell.get("id") for cell in _cells(path) if cell["cell_type"] == "code" and cell.get("outputs")
             and "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"])
             and not has_fresh_published_outputs({**cell, "source": "".join(cell["source"])})]
    assert not stale, f"outputs that no longer match their cell's code (run `make publish NB={path.name[:2]}`): {stale}"
