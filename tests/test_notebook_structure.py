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


def _predictions_out_of_place(cells: list[dict]) -> list[str]:
    """Exercises that ask 'Before running section K' need a 'Predict first (exercise N)' cell above section K's heading,
    so a learner reading down meets the question before the output that answers it."""
    text = ["".join(c["source"]) for c in cells]
    exercises = next(i for i, t in enumerate(text) if cells[i]["cell_type"] == "markdown" and t.startswith("## Exercises"))
    asked = {int(n): i for i, t in enumerate(text) for n in re.findall(r"Predict first \(exercise (\d+)\)", t)}
    wrong = [f"exercise {n}: asked after the exercises list" for n, i in asked.items() if i > exercises]
    for n, section in re.findall(r"^(\d+)\. Before running section (\d+)(?!\d|'s)", text[exercises], re.M):  # not "section 2's third cell"
        heading = next((i for i, t in enumerate(text) if t.startswith(f"## {section}.")), None)
        if heading is None or int(n) not in asked or asked[int(n)] > heading:
            wrong.append(f"exercise {n}: no 'Predict first' cell above section {section}")
    return wrong


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_predictions_are_asked_before_the_section_that_answers_them(path):
    cells = json.loads(path.read_text())["cells"]
    assert not _predictions_out_of_place(cells), _predictions_out_of_place(cells)


def test_the_prediction_check_catches_a_question_asked_after_its_answer():
    def md(text):
        return {"cell_type": "markdown", "source": [text]}

    cells = [md("## 1. First"), md("## 2. Second"), md("> **Predict first (exercise 1):** how many?"),
             md("## Exercises\n1. Before running section 1: how many?\n")]
    assert _predictions_out_of_place(cells) == ["exercise 1: no 'Predict first' cell above section 1"]
    cells.insert(0, cells.pop(2))
    assert _predictions_out_of_place(cells) == []
