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
