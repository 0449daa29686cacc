"""Execute every notebook in order, headless, for one profile (`make run`).

Executed copies go to outputs/<profile>/notebooks/, figures and results are written by the notebooks
themselves under outputs/<profile>/, and a run summary (seconds per notebook) lands next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from helpers.paths import REPO_ROOT, outputs_dir


def notebooks_in_order(folder: Path) -> list[Path]:
    """Numbered notebooks (00_..., 01_...) sorted by their number."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run(profile: str, folder: Path, only: list[str] | None = None, timeout: int = 3600) -> dict:
    import nbformat
    from nbclient import NotebookClient

    os.environ["WORKBOOK_PROFILE"] = profile
    out_dir = outputs_dir(profile, "notebooks")
    summary = {"profile": profile, "notebooks": [], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    total = time.perf_counter()
    for path in notebooks_in_order(folder):
        if only and not any(path.name.startswith(prefix) for prefix in only):
            continue
        print(f"[{profile}] running {path.name} ...", flush=True)
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        started = time.perf_counter()
        status = "ok"
        try:
            client.execute()
        except Exception as error:  # keep the partial notebook: it shows where it stopped
            status = f"failed: {type(error).__name__}"
            print(f"  {path.name} failed: {str(error)[-2000:]}", file=sys.stderr)
        seconds = round(time.perf_counter() - started, 1)
        nbformat.write(notebook, out_dir / path.name)
        summary["notebooks"].append({"name": path.name, "seconds": seconds, "status": status})
        print(f"  {status} in {seconds:.0f} s -> {out_dir / path.name}", flush=True)
        if status != "ok":
            break
    summary["seconds"] = round(time.perf_counter() - total, 1)
    (outputs_dir(profile) / "run_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def store_checked_outputs(path: Path, profile: str = "smoke", timeout: int = 1800) -> int:
    """Execute a source notebook and keep only the outputs of `# NBVAL_CHECK_OUTPUT` cells.

    Those stored outputs are what nbval compares against; every other cell is saved clean, so a
    learner opens a notebook without stale results. Returns the number of checked cells.
    """
    import nbformat
    from nbclient import NotebookClient

    os.environ["WORKBOOK_PROFILE"] = profile
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    checked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            checked += 1  # nbval only compares cells that carry an execution count
            cell.execution_count = checked
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = checked
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, path)
    return checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=os.environ.get("WORKBOOK_PROFILE", "default"))
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 00 03")
    parser.add_argument(
        "--store-checked",
        nargs="+",
        type=Path,
        metavar="NOTEBOOK",
        help="refresh the stored outputs of the checked cells of these source notebooks",
    )
    args = parser.parse_args(argv)
    if args.store_checked:
        for path in args.store_checked:
            print(f"{path}: {store_checked_outputs(path, args.profile)} checked cells stored")
        return 0
    summary = run(args.profile, args.folder, args.only)
    failed = [n for n in summary["notebooks"] if n["status"] != "ok"]
    where = outputs_dir(args.profile)
    print(f"\n{len(summary['notebooks'])} notebooks, {summary['seconds']:.0f} s. Outputs: {where}/")
    print(f"  executed notebooks: {where}/notebooks/")
    print(f"  figures:            {where}/figures/")
    print(f"  results:            {', '.join(sorted(p.name for p in where.glob('*.json')))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
