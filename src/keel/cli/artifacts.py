"""A run's artifacts from the command line: ``keel runs artifacts RUN``, ``keel runs get RUN NAME [-o PATH]`` and
``keel open RUN NAME``.

Only bytes are read and written, verified against their sha256 by the artifact store: nothing is unpickled or
run here, whoever uploaded the blob. Text goes to a terminal with its control characters made visible (an
artifact could hold escape sequences); to a pipe or a file it goes byte for byte, so ``keel runs get RUN
cfg.json | jq`` and ``... model.pkl > model.pkl`` both work.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path, PurePosixPath

import typer
from rich.table import Table

from keel.cli.lookup import require_store, resolve_run
from keel.cli.output import JSON_OPTION, clean, console, esc, print_json
from keel.core.entities import ArtifactRef
from keel.core.errors import InvalidArgument, NotFound
from keel.tracking.client import Client

_TEXT_TYPES = {"application/json", "application/xml", "application/yaml", "application/x-yaml", "application/javascript"}
_KINDS = {
    "text/html": "html",
    "image/svg+xml": "image",
    "application/json": "json",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "application/vnd.apache.parquet": "table",
    "application/x-python-pickle": "pickle",
    "application/pdf": "pdf",
}
_SUFFIXES = {".pkl": "pickle", ".pickle": "pickle", ".parquet": "table", ".onnx": "onnx", ".html": "html", ".htm": "html"}
_BROWSABLE = ("html", "image", "pdf", "text", "json", "yaml")


def kind(ref: ArtifactRef) -> str:
    """What an artifact is, in a word: html, image, text, json, yaml, table, pickle, onnx, pdf or binary."""
    media = ref.media_type.split(";")[0].strip().lower()
    if media in _KINDS:
        return _KINDS[media]
    suffix = PurePosixPath(ref.path).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if media.startswith("image/"):
        return "image"
    if media.startswith("text/") or media in _TEXT_TYPES:
        return "text"
    return "binary"


def _is_text(ref: ArtifactRef, data: bytes) -> bool:
    """Text if its media type says so, or, for a type nobody named, if it decodes as UTF-8 without NUL bytes."""
    if kind(ref) in ("html", "text", "json", "yaml"):
        return True
    if kind(ref) != "binary" or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _find(client: Client, run_id: str, name: str) -> ArtifactRef:
    refs = client.list_artifacts(run_id)
    for ref in refs:
        if ref.path == name:
            return ref
    below = [r.path for r in refs if r.path.startswith(name.rstrip("/") + "/")]
    hint = f"; it is a folder of {len(below)} (keel runs artifacts {run_id[:12]})" if below else ""
    names = (", ".join(r.path for r in refs[:8]) + (", ..." if len(refs) > 8 else "")) or "none"
    raise NotFound(f"run {run_id[:12]} has no artifact {name!r}" + (hint or f" (it has: {names})"))


def list_artifacts(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A run's artifacts: path, size and kind."""
    require_store()
    client = Client()
    found = resolve_run(client, run)
    refs = client.list_artifacts(found.id)
    if as_json:
        print_json(
            [{"path": r.path, "size": r.size, "kind": kind(r), "media_type": r.media_type, "sha256": r.sha256} for r in refs]
        )
        return
    if not refs:
        console.print(f"run {esc(found.id[:12])} has no artifacts")
        return
    table = Table(title=f"artifacts of run {esc(found.id[:12])} ({esc(found.name)})", title_justify="left", header_style="bold")
    for col, justify in (("path", "left"), ("size", "right"), ("kind", "left"), ("media type", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in refs:
        table.add_row(esc(r.path), f"{r.size:,}", kind(r), esc(r.media_type))
    console.print(table)


def get(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    name: str = typer.Argument(..., help="The artifact's path in the run (keel runs artifacts RUN)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write it to this file (or into this folder)."),
) -> None:
    """Print a text artifact, or write any artifact to a file with -o."""
    require_store()
    client = Client()
    found = resolve_run(client, run)
    ref = _find(client, found.id, name)
    if output is not None:
        dest = output / PurePosixPath(ref.path).name if output.is_dir() else output
        if not dest.parent.is_dir():
            raise InvalidArgument.for_field("--output", str(output), "a file in an existing folder, or a folder")
        client.download_artifact(found.id, ref.path, dest)  # verified; nothing is left at dest on a mismatch
        typer.echo(clean(f"wrote {ref.path} ({ref.size:,} bytes) to {dest}"), err=True)
        return
    data = client.read_artifact(found.id, ref.path)
    if not sys.stdout.isatty():  # a pipe or a file: the bytes as they are
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if not _is_text(ref, data):
        raise InvalidArgument(
            f"{name!r} is {kind(ref)} ({ref.media_type}), not text: write it to a file with -o PATH "
            f"(keel runs get {found.id[:12]} {name} -o PATH)"
        )
    typer.echo(clean(data.decode("utf-8", errors="replace")), nl=not data.endswith(b"\n"))


def open_artifact(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    name: str = typer.Argument(..., help="An HTML, image or text artifact of the run, e.g. study.html."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open it in the web browser (else print the path)."),
) -> None:
    """Open an HTML report or an image of a run in the browser; the file's path is printed too."""
    import webbrowser

    require_store()
    client = Client()
    found = resolve_run(client, run)
    ref = _find(client, found.id, name)
    what = kind(ref)
    if what not in _BROWSABLE:
        raise InvalidArgument(
            f"{name!r} is {what} ({ref.media_type}), not something a browser shows: "
            f"keel runs get {found.id[:12]} {name} -o PATH writes it to a file"
        )
    # a fresh private folder (mkdtemp: 0700, never an existing path someone else made), the artifact's own name
    folder = Path(tempfile.mkdtemp(prefix=f"keel-{found.id[:12]}-"))
    dest = client.download_artifact(found.id, ref.path, folder / PurePosixPath(ref.path).name)
    typer.echo(str(dest))
    if browser and not webbrowser.open(dest.resolve().as_uri()):
        typer.echo("keel: no browser found here: open the file above yourself", err=True)
