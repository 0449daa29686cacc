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
    chosen = [p for p in notebooks_in_order(folder) if not only or any(p.name.startswith(prefix) for prefix in only)]
    if not chosen:
        raise SystemExit(f"--only {' '.join(only or [])}: no notebook in {folder.name}/ starts with that; its notebooks "
                         f"are {', '.join(p.name[:2] for p in notebooks_in_order(folder)) or 'none'}.")
    for path in chosen:
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
    published = {cell.get("id"): cell.outputs for cell in notebook.cells
                 if cell.cell_type == "code" and has_fresh_published_outputs(cell)}
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    checked = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            checked += 1
        else:  # keep a default run's published outputs while the cell's code is unchanged
            cell.outputs = published.get(cell.get("id"), [])
            if not cell.outputs:
                cell.metadata.pop("workbook", None)
    number_cells(notebook)
    nbformat.write(notebook, path)
    return checked


def number_cells(notebook) -> None:
    """Execution counts 1, 2, ... on the code cells that carry outputs, none on the others: nbval treats a cell
    with outputs and no count as an unrun reference and fails it, and compares only the marked cells' outputs."""
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if cell.outputs:
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
        else:
            cell.execution_count = None


def source_sha(source: str) -> str:
    import hashlib

    return hashlib.sha1(source.encode()).hexdigest()[:12]


def has_fresh_published_outputs(cell) -> bool:
    """True for an unchecked code cell whose outputs were published from a run of its current code."""
    meta = cell.get("metadata", {}).get("workbook", {})
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return bool(cell.get("outputs")) and meta.get("source_sha") == source_sha(source)


def publish_outputs(source: Path, executed: Path, run: str = "default") -> dict:
    """Copy an executed notebook's outputs (figures included) into the source notebook, so the lesson reads
    on GitHub and in Colab before anything runs.

    Only cells that nbval does not check get them (checked cells keep the smoke outputs nbval compares), and
    only where the executed cell's code equals the source's: a cell edited since the run is left empty and
    counted as stale. Each published cell records the hash of its code; `tests/test_notebook_structure.py`
    fails when a cell's code changes and its published outputs would go stale."""
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    ran = {cell.get("id"): cell for cell in nbformat.read(executed, as_version=4).cells if cell.cell_type == "code"}
    counts = {"published": 0, "stale": 0, "missing": 0, "figures": 0}
    for cell in notebook.cells:
        if cell.cell_type != "code" or "NBVAL_CHECK_OUTPUT" in cell.source:
            continue
        other = ran.get(cell.get("id"))
        if other is None:
            counts["missing"] += 1
            continue
        if other.source != cell.source:
            counts["stale"] += 1
            cell.outputs = []
            cell.metadata.pop("workbook", None)
            continue
        cell.outputs = [o for o in other.outputs if o.get("output_type") != "stream" or o.get("name") != "stderr"]
        cell.metadata["workbook"] = {"outputs_from": f"{run} run", "source_sha": source_sha(cell.source)}
        counts["published"] += 1
        counts["figures"] += sum("image/png" in o.get("data", {}) for o in cell.outputs)
    number_cells(notebook)
    nbformat.write(notebook, source)
    return counts


def main(argv: list[str] | None = None) -> int:
    from helpers.profiles import profile_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=profile_name(), help="default: $WORKBOOK_PROFILE, else default")
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 00 03")
    parser.add_argument(
        "--store-checked",
        nargs="+",
        type=Path,
        metavar="NOTEBOOK",
        help="refresh the stored outputs of the checked cells of these source notebooks",
    )
    parser.add_argument(
        "--publish",
        nargs="+",
        type=Path,
        metavar="NOTEBOOK",
        help="copy the outputs of this profile's executed copies (outputs/<profile>/notebooks/) into these "
        "source notebooks, for the cells nbval does not check",
    )
    args = parser.parse_args(argv)
    if args.publish:
        for path in args.publish:
            executed = outputs_dir(args.profile, "notebooks") / path.name
            if not executed.exists():
                raise SystemExit(f"No executed copy at {executed}: run `python -m helpers.run_notebooks "
                                 f"--profile {args.profile} --only {path.name[:2]}` first.")
            counts = publish_outputs(path, executed, args.profile)
            print(f"{path}: {counts['published']} cells published ({counts['figures']} figures) from {executed}"
                  + (f"; {counts['stale']} cells changed since that run were left empty" if counts["stale"] else ""))
        return 0
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
    from helpers.paths import run_cli

    raise SystemExit(run_cli(main))
