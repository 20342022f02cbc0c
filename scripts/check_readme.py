"""Run the README's shell blocks as written: every ```sh block, in order, as one bash script.

A block right after a line ``<!-- not run ... -->`` is skipped (the two commands
themselves: this check runs inside ``make test``, after ``make demo``). By default the
script runs in a fresh copy of this clone (its tracked and untracked, not ignored, files)
in which ``make demo`` has run first; ``--dir`` names a clone where it has run already.

    ~/.cache/cxgraph/venv/bin/python scripts/check_readme.py [--dir CLONE] [--keep]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\s*$")


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks of a Markdown text, without those after a ``<!-- not run`` line."""
    blocks, current, skip, last = [], None, False, ""
    for line in text.splitlines():
        m = FENCE.match(line)
        if current is None and m:
            current = [] if m.group(1) in ("sh", "bash") else None
            skip = last.strip().startswith("<!-- not run")
            if current is None:  # another language: skip to its closing fence
                current, skip = [], True
            continue
        if current is not None and line.startswith("```"):
            if not skip:
                blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
        if line.strip():
            last = line
    return blocks


def script(blocks: list[str]) -> str:
    return "set -euo pipefail\nset -x\n" + "\n\n".join(blocks) + "\n"


def fresh_copy(dst: Path) -> Path:
    """This clone's files as a fresh clone would have them (plus uncommitted edits)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    return dst


def run(clone: Path, demo: bool) -> subprocess.CompletedProcess:
    if demo:
        subprocess.run(["make", "demo"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    text = script(shell_blocks((clone / "README.md").read_text()))
    return subprocess.run(["bash", "-c", text], cwd=clone, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=3600)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="a clone where `make demo` has run")
    ap.add_argument("--keep", action="store_true", help="keep the fresh copy")
    args = ap.parse_args()
    clone = args.dir or fresh_copy(Path(tempfile.mkdtemp(prefix="cxgraph-readme-")))
    try:
        res = run(clone, demo=args.dir is None)
        sys.stdout.write(res.stdout)
        sys.stderr.write(res.stderr)
        print(f"README check: {'ok' if res.returncode == 0 else 'FAILED'} in {clone}")
        return res.returncode
    finally:
        if args.dir is None and not args.keep:
            shutil.rmtree(clone, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
