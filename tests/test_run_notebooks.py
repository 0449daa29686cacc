import json

import nbformat

from helpers.run_notebooks import notebooks_in_order, run, store_checked_outputs


def _write(path, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_notebooks_run_in_numbered_order(tmp_path):
    for name in ("10_last.ipynb", "02_b.ipynb", "00_a.ipynb", "notes.ipynb"):
        _write(tmp_path / name, ["1"])
    assert [p.name for p in notebooks_in_order(tmp_path)] == ["00_a.ipynb", "02_b.ipynb", "10_last.ipynb"]


def test_store_checked_keeps_only_checked_outputs(tmp_path):
    path = tmp_path / "00_x.ipynb"
    _write(path, ["# NBVAL_CHECK_OUTPUT\nprint(6 * 7)", "print('noisy')"])
    assert store_checked_outputs(path) == 1
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "42\n" and nb.cells[0].execution_count == 1
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count is None


def test_run_writes_executed_notebooks_and_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_OUTPUTS", str(tmp_path / "out"))
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write(folder / "00_ok.ipynb", ["x = 1"])
    _write(folder / "01_fails.ipynb", ["raise ValueError('boom')"])
    _write(folder / "02_never.ipynb", ["x = 2"])
    summary = run("smoke", folder)
    statuses = [(n["name"], n["status"]) for n in summary["notebooks"]]
    assert statuses == [("00_ok.ipynb", "ok"), ("01_fails.ipynb", "failed: CellExecutionError")]  # stops at a failure
    saved = json.loads((tmp_path / "out" / "smoke" / "run_summary.json").read_text())
    assert saved["notebooks"][1]["status"].startswith("failed")
    assert (tmp_path / "out" / "smoke" / "notebooks" / "01_fails.ipynb").is_file()  # kept to show where it stopped


def test_publish_copies_outputs_of_unchanged_unchecked_cells_and_the_structure_test_catches_edits(tmp_path):
    """A default run's outputs go into the source notebook for unchecked cells whose code is unchanged;
    checked cells keep theirs; a cell edited after the run gets none; editing a published cell later makes
    it stale."""
    import nbformat

    from helpers.run_notebooks import has_fresh_published_outputs, publish_outputs

    def notebook(sources):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
        return nb

    source = notebook(["print(1)", "# NBVAL_CHECK_OUTPUT\nprint(2)", "print(3)"])
    ran = notebook(["print(1)", "# NBVAL_CHECK_OUTPUT\nprint(2)", "print(33)"])
    for cell, text in zip(ran.cells, ("1\n", "2\n", "33\n")):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                        nbformat.v4.new_output("stream", name="stderr", text="a warning\n")]
    source.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2 (smoke)\n")]
    src_path, ran_path = tmp_path / "source.ipynb", tmp_path / "ran.ipynb"
    nbformat.write(source, src_path)
    nbformat.write(ran, ran_path)
    counts = publish_outputs(src_path, ran_path)
    assert counts == {"published": 1, "stale": 1, "missing": 0, "figures": 0}
    cells = nbformat.read(src_path, as_version=4).cells
    assert [o["text"] for o in cells[0].outputs] == ["1\n"]  # stderr (warnings, progress bars) left out
    assert cells[1].outputs[0]["text"] == "2 (smoke)\n" and cells[2].outputs == []
    assert has_fresh_published_outputs(cells[0])
    assert [c.execution_count for c in cells] == [1, 2, None]  # nbval fails a cell with outputs and no count
    cells[0].source = "print(10)"
    assert not has_fresh_published_outputs(cells[0])
