"""Every notebook's Colab install cell is the same, installs only what Colab lacks, and never with dependencies."""

import json
import re

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
    assert len(cells) == 10 and len(set(cells.values())) == 1, "install cells differ: copy 00_setup's to the others"


def test_install_cell_installs_only_what_colab_lacks_without_dependencies():
    cell = next(iter(_install_cells().values()))
    pip_lines = [line for line in cell.splitlines() if "pip install" in line]
    assert pip_lines and all(line.strip().startswith("%pip") and "--no-deps" in line for line in pip_lines)
    assert "requirements.txt" not in cell and "!pip" not in cell and "grep" not in cell
    extras = (REPO_ROOT / "requirements-colab-extras.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in extras if line and not line.startswith("#"))
    assert not set(pins) & set(COLAB_OWN), "never reinstall a package Colab ships"
    pinned = dict(re.findall(r"^([\w-]+)==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M))
    for name, version in pins.items():  # the same versions the tests run with
        assert pinned.get(name, version) == version, name
