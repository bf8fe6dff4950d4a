"""Fetch the web UI's front-end files from the npm registry, check them against the registry's integrity hash,
and copy them into src/keel/ui/static/vendor/ (committed: installing keel needs no network and no Node).

    python scripts/vendor_ui.py          # after changing a pinned version below

uPlot draws the metric curves: 51 KB minified, canvas, fast with hundreds of thousands of points, no dependencies
(MIT). Everything else in the UI is server-rendered HTML with plain forms and links, so every view is a URL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import urllib.request
from pathlib import Path

PINNED = {"uplot": ("1.6.32", ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"])}
VENDOR = Path(__file__).resolve().parent.parent / "src" / "keel" / "ui" / "static" / "vendor"


def fetch(package: str, version: str, files: list[str]) -> None:
    meta = json.load(urllib.request.urlopen(f"https://registry.npmjs.org/{package}/{version}", timeout=30))
    algorithm, expected = meta["dist"]["integrity"].split("-", 1)
    data = urllib.request.urlopen(meta["dist"]["tarball"], timeout=60).read()
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise SystemExit(f"{package}@{version}: the tarball does not match the registry's integrity hash")
    target = VENDOR / f"{package}-{version}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name in files:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"{package}@{version}: no {name} in the tarball")
            (target / Path(name).name).write_bytes(member.read())
    print(f"{package}@{version} -> {target}")


if __name__ == "__main__":
    for package, (version, files) in PINNED.items():
        fetch(package, version, files)
