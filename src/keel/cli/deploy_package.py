"""``keel deploy package DEPLOYMENT``: a Dockerfile and Kubernetes manifests that serve the deployment elsewhere.

The folder keeps a record of what keel wrote (``.keel-package.json``, each file's sha256): writing again replaces
those files while they are unchanged, and refuses any other existing file (edited, or not keel's) unless
``--force``. Every check runs before the first write.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import typer

from keel.cli.lookup import require_store
from keel.cli.output import clean, console, esc
from keel.core.errors import InvalidArgument, KeelError

if TYPE_CHECKING:
    from keel.context import Context

RECORD = ".keel-package.json"
_WHEEL = re.compile(r"keel-[0-9][0-9A-Za-z.+!_]*-py3-none-any\.whl")


def package(
    name: str = typer.Argument(..., help="Deployment name."),
    output: Path = typer.Option(None, "--output", "-o", help="Folder to write (default: ./keel-package-NAME)."),
    image: str = typer.Option(None, "--image", help="Image name and tag (default: keel-NAME:KEEL_VERSION)."),
    replicas: int = typer.Option(2, "--replicas", help="Pods serving the deployment."),
    store: str = typer.Option(None, "--store", help="KEEL_STORE of the pods (default: this machine's store)."),
    artifacts: str = typer.Option(None, "--artifacts", help="KEEL_ARTIFACTS of the pods (default: this machine's)."),
    wheel: Path = typer.Option(None, "--wheel", help="A keel wheel to copy into wheels/ (the image installs keel from it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files keel did not write (or that were edited)."),
) -> None:
    """Write a Dockerfile and Kubernetes manifests (ConfigMap, Deployment, Service) that run `keel serve NAME`."""
    from keel.serve.packaging import PackageSpec, files, k8s_name
    from keel.tracking.fluent import get_client

    if replicas < 1:
        raise InvalidArgument.for_field("--replicas", replicas, "at least 1")
    if wheel is not None and not (wheel.is_file() and _WHEEL.fullmatch(wheel.name)):
        raise InvalidArgument.for_field("--wheel", str(wheel), "an existing keel-VERSION-py3-none-any.whl file")
    require_store()  # it reads the store and writes only the package folder
    ctx = get_client().context
    deployment = ctx.store.deployments.get(name)  # an unknown deployment stops here: one line, exit 2
    version = _keel_version()
    notes: list[str] = []  # warnings, printed once the files are written (a refusal stays one line)
    spec = PackageSpec(
        deployment=deployment.name,
        keel_version=version,
        image=image or f"{k8s_name(deployment.name)}:{version}",
        store=_pod_url(store or ctx.settings.store, "KEEL_STORE", notes),
        artifacts=_pod_url(artifacts if artifacts is not None else (ctx.settings.artifacts or ""), "KEEL_ARTIFACTS", notes),
        prediction_log=ctx.settings.prediction_log,
        requirements=_requirements([deployment.primary, *deployment.shadows, *(u for u, _ in deployment.canaries)], ctx, notes),
        replicas=replicas,
        wheel=wheel.name if wheel is not None else "",
    )
    folder = output if output is not None else Path(f"keel-package-{k8s_name(deployment.name)}")
    texts = {path: text.encode() for path, text in files(spec).items()}
    if wheel is not None:
        texts[f"wheels/{wheel.name}"] = wheel.read_bytes()
    _write(folder, texts, force)
    for note in notes:
        typer.echo(clean(f"keel: warning: {note}"), err=True)
    console.print(f"wrote {esc(str(folder))}: {', '.join(esc(p) for p in texts)}")
    if not (folder / "wheels" / spec.wheel_name).is_file():
        console.print(f"next: put {esc(spec.wheel_name)} in {esc(str(folder / 'wheels'))}, then see README.txt")
    else:
        console.print(f"next: see {esc(str(folder / 'README.txt'))} (docker build, kubectl apply)")


def _keel_version() -> str:
    from importlib.metadata import version

    return version("keel")


def _pod_url(url: str, setting: str, notes: list[str]) -> str:
    """``url`` as the pods will use it: never with a password (that goes in the Secret); a warning when it is a
    path or an SQLite file on this machine, which the pods cannot reach."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        url = urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))
        notes.append(f"{setting}: the password was left out of the manifests; put it in the Secret (key pgpassword)")
    if parts.scheme in ("", "file", "sqlite"):
        flag = "--" + setting.removeprefix("KEEL_").lower()
        notes.append(f"{setting} {url} is on this machine, which the pods cannot reach: pass {flag} or edit kubernetes.yaml")
    return url


def _requirements(uris: list[str], ctx: Context, notes: list[str]) -> tuple[str, ...]:
    """The served models' requirements, first model first; a package pinned twice keeps the first pin."""
    from keel.registry import resolve

    seen: dict[str, str] = {}
    for uri in uris:
        try:
            version = resolve(uri, ctx)
        except KeelError as exc:
            notes.append(f"{uri}: {exc.message}; its requirements are not in the image")
            continue
        for req in version.requirements:
            package = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
            seen.setdefault(package, req)
    return tuple(seen.values())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(folder: Path, texts: dict[str, bytes], force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument.for_field("--output", str(folder), "a folder (this is a file)")
    record_path = folder / RECORD
    try:
        written = json.loads(record_path.read_text())["files"] if record_path.is_file() else {}
    except (ValueError, KeyError, TypeError, OSError):
        written = {}
    in_the_way = [p for p in texts if (folder / p).exists() and not (folder / p).is_file()]
    if in_the_way:  # never replaced, even with --force: a folder is not something keel wrote
        raise InvalidArgument.for_field("--output", str(folder / in_the_way[0]), "a file path, not a folder")
    if not force:
        foreign = [p for p in texts if (folder / p).exists() and written.get(p) != _file_sha(folder / p)]
        if foreign:
            shown = ", ".join(foreign[:5])
            raise InvalidArgument(
                f"{folder} already has {shown}, not written by keel deploy package or edited since: --force to overwrite"
            )
    record = {"files": dict(written)}
    for path, data in texts.items():  # the record follows each file: a write cut short leaves files keel knows
        _replace(folder / path, data)
        record["files"][path] = _sha(data)
        _replace(record_path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def _file_sha(path: Path) -> str | None:
    return _sha(path.read_bytes()) if path.is_file() else None


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
