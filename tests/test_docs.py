"""Docs are code: every ```python block of the README and of docs/*.md runs as written,
each file's blocks in order as one program (a block may use what an earlier one made).
Fragments that are not meant to run are not marked python."""
import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page):
    with open(page, encoding="utf-8") as f:
        return BLOCK.findall(f.read())


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_every_python_block_runs(page, tmp_path):
    program = tmp_path / "page.py"
    program.write_text("\n\n".join(blocks(page)), encoding="utf-8")
    out = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=240)
    assert out.returncode == 0, f"{os.path.relpath(page, ROOT)}:\n{out.stderr[-3000:]}"


def test_the_pages_with_code_are_found():
    """The test would pass on no pages at all: it must find the ones that have code."""
    names = {os.path.relpath(p, ROOT) for p in PAGES if blocks(p)}
    assert {"README.md", os.path.join("docs", "your-own-optimizer.md")} <= names
