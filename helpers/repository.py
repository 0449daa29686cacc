"""The workbook's GitHub repository, set in one place (configs/repository.txt) and written into every
notebook's Colab badge and install cell by one command:

    python -m helpers.repository set you/finetuning-workbook   # a fork: rewrite badges and clone URLs
    python -m helpers.repository check                          # what the tests run: all agree with the file
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from helpers.paths import REPO_ROOT

SETTING = REPO_ROOT / "configs" / "repository.txt"
NOTEBOOKS = REPO_ROOT / "notebooks"
README = REPO_ROOT / "README.md"
_URL = re.compile(r"github(?:\.com)?/([\w.-]+/[\w.-]+?)(?=/blob/|\.git|\s| workbook|\"|$)")


def repository() -> str:
    """owner/name from configs/repository.txt."""
    return SETTING.read_text().split("#")[0].strip()


def references(text: str) -> set[str]:
    """Every owner/name a notebook's badge or clone line points at."""
    found = set()
    for line in text.splitlines():
        if "colab.research.google.com/github/" in line or "git clone" in line or "repository = " in line:
            found.update(_URL.findall(line))
    return found


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def check() -> list[str]:
    """Notebooks whose badge or clone URL differs from the setting (empty: all agree)."""
    want = repository()
    return [f"{p.name}: {sorted(references(p.read_text()))}" for p in _notebooks()
            if references(p.read_text()) != {want}]


def set_repository(new: str) -> int:
    """Write `new` (owner/name) into the setting, every notebook and the README; returns files changed."""
    owner, _, name = new.partition("/")
    if not (re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})", owner) and re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name)
            and name not in (".", "..")):
        raise SystemExit(f"expected owner/name, e.g. you/finetuning-workbook; got {new!r}")
    old = repository()
    changed = 0
    for path in [*_notebooks(), README]:
        text = path.read_text()
        updated = text.replace(f"github/{old}/", f"github/{new}/").replace(f"github.com/{old}", f"github.com/{new}")
        if updated != text:
            if path.suffix == ".ipynb":
                json.loads(updated)  # still a valid notebook
            path.write_text(updated)
            changed += 1
    SETTING.write_text(new + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("check")
    setter = sub.add_parser("set")
    setter.add_argument("repo", help="owner/name of your fork")
    args = parser.parse_args(argv)
    if args.what == "set":
        print(f"{set_repository(args.repo)} files now point at {args.repo}")
        return 0
    problems = check()
    print("\n".join(problems) or f"every notebook points at {repository()}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
