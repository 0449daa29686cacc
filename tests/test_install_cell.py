"""Every notebook's Colab install cell is the same, installs only what Colab lacks, and never with dependencies."""

import json
import re

import pytest

from helpers.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_OWN = ("torch", "transformers", "numpy", "pandas", "ipykernel", "peft", "datasets", "accelerate")


def _install_cells():
    cells = {}
    for path in NOTEBOOKS:
        found = [c for c in json.loads(path.read_text())["cells"]
                 if c["cell_type"] == "code" and '"google.colab" in sys.modules' in "".join(c["source"])]
        assert len(found) == 1, f"{path.name}: expected one install cell, found {len(found)}"
        cells[path.name] = "".join(found[0]["source"])
    return cells


def test_one_identical_install_cell_in_every_notebook():
    cells = _install_cells()
    assert len(cells) == len(NOTEBOOKS) and len(set(cells.values())) == 1, "install cells differ: copy 00_setup's to the others"


def test_install_cell_installs_only_what_colab_lacks_without_dependencies():
    cell = next(iter(_install_cells().values()))
    pip_lines = [line for line in cell.splitlines() if "pip install" in line]
    assert pip_lines and all(line.strip().startswith("%pip") and "--no-deps" in line for line in pip_lines)
    assert "requirements" not in cell.replace("requirements-colab-extras.txt", "") and " -r " not in cell
    assert "!pip" not in cell and "grep" not in cell
    extras = (REPO_ROOT / "requirements-colab-extras.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in extras if line and not line.startswith("#"))
    named = dict(re.findall(r"([\w-]+)==(\S+)", "\n".join(pip_lines)))
    assert named == pins, "the cell names exactly the packages of requirements-colab-extras.txt (make test-colab uses it)"
    assert not set(pins) & set(COLAB_OWN), "never reinstall a package Colab ships"
    pinned = dict(re.findall(r"^([\w-]+)==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M))
    for name, version in pins.items():  # the same versions the tests run with
        assert pinned.get(name, version) == version, name


def test_badges_and_clone_urls_follow_the_one_repository_setting(tmp_path, monkeypatch):
    import shutil

    import helpers.repository as repo

    assert repo.check() == [], "run: python -m helpers.repository set OWNER/NAME"
    # a fork: one command rewrites every badge and clone URL, and the README
    for path in NOTEBOOKS[:2]:
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(REPO_ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "repository.txt").write_text(repo.repository() + "\n")
    monkeypatch.setattr(repo, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(repo, "SETTING", tmp_path / "repository.txt")
    monkeypatch.setattr(repo, "README", tmp_path / "README.md")
    assert repo.main(["set", "someone/my-fork"]) == 0
    assert repo.repository() == "someone/my-fork" and repo.check() == []
    text = (tmp_path / NOTEBOOKS[0].name).read_text()
    assert "github/someone/my-fork/blob/main/notebooks/" in text and "github.com/someone/my-fork" in text
    with pytest.raises(SystemExit, match="owner/name"):
        repo.set_repository("not a repo")


def test_notebooks_that_train_or_generate_ask_colab_for_a_gpu():
    """Colab opens a notebook on the runtime its metadata names: 05-09 load, train or score the LLM (a GPU
    makes them minutes instead of tens of minutes); 00-04 run on any runtime."""
    for path in NOTEBOOKS:
        meta = json.loads(path.read_text())["metadata"]
        wants_gpu = int(path.name[:2]) >= 5
        assert (meta.get("accelerator") == "GPU") == wants_gpu, path.name
        assert (meta.get("colab", {}).get("gpuType") == "T4") == wants_gpu, path.name


def _run_install_cell(cell: str, tmp_path, monkeypatch, clone_works: bool):
    """The cell's logic as Colab runs it: IPython turns `!` and `%` lines into calls we record (and a clone that
    creates the folder, or not)."""
    import sys
    import types

    from IPython.core.inputtransformer2 import TransformerManager

    calls = []

    class FakeIPython:
        def system(self, command):
            calls.append(("system", command))
            if clone_works and command.startswith("git clone"):
                (tmp_path / "workbook").mkdir()

        def run_line_magic(self, name, line, _stack_depth=1):
            calls.append((name, line))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    code = TransformerManager().transform_cell(cell)
    fake = FakeIPython()
    namespace = {"get_ipython": lambda: fake}
    # IPython expands {name} in ! lines from the caller's namespace; the fake does it with the same variables
    fake.system = (lambda original: lambda command: original(command.format(**namespace)))(fake.system)
    exec(compile(code, "<install cell>", "exec"), namespace)
    return calls


def test_the_install_cell_says_what_to_do_with_the_placeholder_or_a_failed_clone(tmp_path, monkeypatch):
    cell = next(iter(_install_cells().values()))
    with pytest.raises(SystemExit, match="python -m helpers.repository set"):
        _run_install_cell(cell, tmp_path, monkeypatch, clone_works=True)
    forked = cell.replace("github.com/OWNER/finetuning-workbook", "github.com/someone/my-fork")
    with pytest.raises(SystemExit, match="git clone https://github.com/someone/my-fork failed"):
        _run_install_cell(forked, tmp_path, monkeypatch, clone_works=False)
    calls = _run_install_cell(forked, tmp_path, monkeypatch, clone_works=True)
    assert calls[0] == ("system", "git clone -q https://github.com/someone/my-fork workbook")
    assert calls[1] == ("cd", "workbook") and all(name == "pip" and "--no-deps" in line for name, line in calls[2:])
