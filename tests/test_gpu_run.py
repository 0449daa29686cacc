"""benchmarks/gpu_run.sh outside the lent GPU machine: it uses .device/site only where it exists."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env_of(folder: Path) -> dict:
    out = subprocess.run(["bash", str(folder / "benchmarks" / "gpu_run.sh"), "env"], cwd=folder, text=True,
                         capture_output=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_gpu_run_uses_the_device_packages_only_where_they_exist(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "gpu_run.sh", tmp_path / "benchmarks")
    plain = _env_of(tmp_path)
    assert ".device/site" not in plain["PYTHONPATH"] and plain["PYTHONPATH"].split(":")[0] == str(tmp_path)
    (tmp_path / ".device" / "site").mkdir(parents=True)
    lent = _env_of(tmp_path)
    assert lent["PYTHONPATH"].startswith(f"{tmp_path}/.device/site:")
    bad = subprocess.run(["bash", str(tmp_path / "benchmarks" / "gpu_run.sh"), "nonsense"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown stage" in bad.stderr
