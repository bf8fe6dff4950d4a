"""``keel pipeline run|resume|show``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from keel.cli.lookup import require_store, resolve_run
from keel.cli.output import JSON_OPTION, STEP_STATUS, clean, console, esc, fmt_duration, print_json
from keel.core.entities import RunKind
from keel.core.errors import InvalidArgument

app = typer.Typer(help="Run and inspect pipelines.", no_args_is_help=True)


def _load(ref: str) -> Any:
    from keel.pipelines.steps import load_pipeline

    sys.path.insert(0, str(Path.cwd()))  # pipelines of the project the command runs in
    return load_pipeline(ref)


def _params(items: list[str], target: Any) -> dict[str, Any]:
    """``-p name=value`` as the pipeline's params: read by each param's type hint (``keel.pipelines.hints.cli_value``)."""
    from keel.pipelines.hints import cli_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidArgument.for_field("--param", item, "'name=value'")
        out[key] = cli_value(target.fn, key, raw)
    return out


_TRUST_HELP = (
    "Unpickle cached step outputs served by a keel server (unpickling runs code: any client that can write "
    "to the server can create a cache entry). Default: the trust_pickle setting (KEEL_TRUST_PICKLE)."
)


def _show(result: Any) -> None:
    table = Table(
        title=f"pipeline {esc(result.pipeline)}: {result.status.value} (run {esc(result.run_id[:12])})", header_style="bold"
    )
    for col in ("step", "status", "attempts", "time", "run"):
        table.add_column(col)
    for s in result.steps:
        table.add_row(esc(s.node), STEP_STATUS.get(s.status, esc(s.status)), str(s.attempts or "-"),
                      fmt_duration(int(s.seconds * 1000)), esc(s.run_id[:12] or "-"))  # fmt: skip
    console.print(table)
    for s in result.steps:
        if s.status == "failed":
            console.print(f"[red]{esc(s.node)}[/]: {esc(s.error)}  (traceback: keel runs show {esc(s.run_id[:12])})")


def _printer() -> Any:
    return lambda record: console.print(f"  {esc(record.node):<24} {STEP_STATUS.get(record.status, esc(record.status))}")


@app.command("run")
def run(
    pipeline: str = typer.Argument(..., help="module:function of a @keel.pipeline."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="name=value (repeatable): JSON values allowed, kept as text for str and path params."
    ),
    executor: str = typer.Option("inline", help="inline, process or ray."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, reuse nothing."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Run a pipeline; exit code 1 when a step fails."""
    from keel.pipelines import run_pipeline

    target = _load(pipeline)
    result = run_pipeline(
        target, _params(param, target), executor=executor, cache=not no_cache, on_step=_printer(),
        trust_pickle=True if trust_pickle else None,
    )  # fmt: skip
    _show(result)
    raise typer.Exit(0 if result.status.value == "finished" else 1)


@app.command("resume")
def resume(
    run_id: str = typer.Argument(..., help="A failed pipeline run (its id or a unique prefix)."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help=_TRUST_HELP),
) -> None:
    """Run a failed pipeline again from the failed step, reusing the steps that succeeded.

    Imports the pipeline the run names only from a module of the current folder (the project).
    """
    from keel.pipelines import resume as resume_run
    from keel.pipelines.runner import pipeline_of
    from keel.pipelines.steps import load_pipeline
    from keel.tracking.fluent import get_client

    require_store()
    project = Path.cwd()
    sys.path.insert(0, str(project))
    run = resolve_run(get_client(), run_id)
    run_id = run.id
    ref = pipeline_of(run)  # written by whoever wrote the run: shown cleaned
    target = load_pipeline(ref, project=project)  # checks that the module is the project's before importing it
    module = ref.partition(":")[0]
    console.print(f"resuming run {clean(run_id[:12])}: pipeline {clean(ref)}, importing module {clean(module)} from "
                  f"{clean(target.source)}", markup=False, highlight=False)  # fmt: skip
    result = resume_run(
        run_id, on_step=_printer(), raise_on_failure=False, pipeline=target, trust_pickle=True if trust_pickle else None
    )
    _show(result)
    raise typer.Exit(0 if result.status.value == "finished" else 1)


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="A pipeline run (its id or a unique prefix)."), as_json: bool = JSON_OPTION
) -> None:
    """The steps of a pipeline run: status, cache, time."""
    from keel.tracking.client import Client

    require_store()
    client = Client()
    run = resolve_run(client, run_id)
    if run.kind is not RunKind.PIPELINE:
        raise InvalidArgument.for_field("run", run_id, "the id of a pipeline run")
    if as_json:
        print_json({"run": run, "steps": client.store.list_child_runs(run.id)})
        return
    table = Table(title=f"pipeline {esc(run.name)} ({run.status.value})", header_style="bold")
    for col in ("step", "status", "cached", "time", "run"):
        table.add_column(col)
    for step in client.store.list_child_runs(run.id):  # oldest first
        cached = "-" if step.step is None else str(step.step.cached_from is not None).lower()
        table.add_row(
            esc(step.name),
            step.status.value,
            cached,
            fmt_duration(step.duration_ms),
            step.id[:12],
        )
    console.print(table)
