"""The README stays true: every ```python block of it runs, in order, as one script in a fresh folder.

Blocks build on each other as a reader follows them (the data block's ``df`` feeds the pipeline and the
registry), so they run as one script. A block that cannot run on purpose is marked by the line before it,
``<!-- not-tested: reason -->``; there should be very few.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from keel.testing.cli import keel_env

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"<!--\s*not-tested:\s*(?P<reason>\S.*?)\s*-->")
MOST_UNTESTED = 2


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    skipped: str | None  # the reason, for a block marked not-tested


def python_blocks(text: str) -> list[Block]:
    """Every ```python block, with the not-tested reason of the line before it (blank lines skipped)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"README.md:{start + 1}: a ```python block is never closed")
            before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            marked = SKIP.search(before)
            blocks.append(Block(start + 1, "\n".join(body) + "\n", marked.group("reason") if marked else None))
        i += 1
    return blocks


def script(blocks: list[Block]) -> str:
    """The runnable blocks as one script; each starts with a marker line naming its README line."""
    parts = [f"print('README block at line {b.line}', flush=True)\n{b.code}" for b in blocks if b.skipped is None]
    return "\n".join(parts)


def test_the_extractor_finds_blocks_and_their_markers() -> None:
    text = "intro\n```python\na = 1\n```\n<!-- not-tested: needs a GPU -->\n\n```python\nimport cuda\n```\n```bash\nls\n```\n"
    blocks = python_blocks(text)
    assert [(b.line, b.code, b.skipped) for b in blocks] == [(2, "a = 1\n", None), (7, "import cuda\n", "needs a GPU")]
    assert script(blocks) == "print('README block at line 2', flush=True)\na = 1\n"
    with pytest.raises(AssertionError, match="never closed"):
        python_blocks("```python\nx = 1\n")


@pytest.mark.slow  # trains and exports small models: ~20 s
def test_every_python_block_of_the_readme_runs(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    untested = [b for b in blocks if b.skipped is not None]
    assert len(blocks) >= 5 and len(untested) <= MOST_UNTESTED, [(b.line, b.skipped) for b in untested]
    path = tmp_path / "readme_blocks.py"
    path.write_text(script(blocks), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=keel_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    ran = re.findall(r"README block at line (\d+)", done.stdout)
    failed_at = ran[-1] if ran else "?"
    assert done.returncode == 0, f"README block at line {failed_at} failed:\n{done.stderr[-3000:]}"
    assert [int(n) for n in ran] == [b.line for b in blocks if b.skipped is None]  # each ran, in order
    assert (tmp_path / "edge" / "churn" / "model.onnx").is_file()  # the registry block did what it says
