"""What a run records about its code and interpreter, computed once per process."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
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


_DIST_FOLDER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._]*?)-([^-/]+?)\.(?:dist|egg)-info$")


@functools.lru_cache(maxsize=1)
def package_list() -> str:
    """``name==version`` of every installed distribution (names normalised as PEP 503 does), sorted: the environment's
    fingerprint.

    The ``*.dist-info`` folders on ``sys.path`` are read directly: a folder is named after its distribution and
    version, so most cost no file read. ``importlib.metadata`` (imported with the email package) parses every
    ``METADATA`` through the email parser, and was half of a first run's start-up.
    """
    seen = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, a folder that is gone: nothing installed there the way pip installs
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                found = _name_and_version(os.path.join(entry or ".", name))
                if found:
                    seen.add(f"{_normalise(found[0])}=={found[1]}")
    return "\n".join(sorted(seen)) + "\n"


def _name_and_version(path: str) -> tuple[str, str] | None:
    match = _DIST_FOLDER.match(os.path.basename(path))
    if match:
        return match.group(1), match.group(2)
    fields: dict[str, str] = {}
    for candidate in (os.path.join(path, "METADATA"), os.path.join(path, "PKG-INFO"), path):
        try:
            with open(candidate, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        break  # the headers end at the first blank line; the long description follows
                    key, _, value = line.partition(":")
                    if key in ("Name", "Version") and key not in fields:
                        fields[key] = value.strip()
            break
        except OSError:
            continue
    if "Name" in fields and "Version" in fields:
        return fields["Name"], fields["Version"]
    return None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment(packages_blob: str | None = None) -> Environment:
    packages = package_list()
    return Environment(
        python_version=platform.python_version(),
        platform=platform.platform(),
        packages_hash=hashlib.sha256(packages.encode()).hexdigest(),
        packages_blob=packages_blob,
    )
