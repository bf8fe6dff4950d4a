"""What a run records about its code and interpreter, computed once per process."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

from keel.core.entities import CodeVersion, Environment


def _git(args: list[str], cwd: Path) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def code_version(cwd: str | None = None) -> CodeVersion:
    """The entry script and its hash; the git commit and a hash of uncommitted changes, when in a repository."""
    entry: Path | None = None
    if sys.argv and sys.argv[0] not in ("", "-c", "-m") and Path(sys.argv[0]).is_file():
        entry = Path(sys.argv[0]).resolve()
    where = Path(cwd) if cwd else (entry.parent if entry else Path.cwd())
    commit = _git(["rev-parse", "HEAD"], where)
    dirty_hash = None
    if commit:
        diff = _git(["diff", "HEAD", "--binary"], where)
        if diff:
            dirty_hash = hashlib.sha256(diff).hexdigest()
    return CodeVersion(
        git_commit=commit.decode().strip() if commit else None,
        git_dirty_hash=dirty_hash,
        entry_point=str(entry) if entry else None,
        entry_point_hash=hashlib.sha256(entry.read_bytes()).hexdigest() if entry else None,
    )


@functools.lru_cache(maxsize=1)
def package_list() -> str:
    """``name==version`` of every installed distribution, sorted: the environment's fingerprint."""
    seen = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            seen.add(f"{name.lower()}=={dist.version}")
    return "\n".join(sorted(seen)) + "\n"


def environment(packages_blob: str | None = None) -> Environment:
    packages = package_list()
    return Environment(
        python_version=platform.python_version(),
        platform=platform.platform(),
        packages_hash=hashlib.sha256(packages.encode()).hexdigest(),
        packages_blob=packages_blob,
    )
