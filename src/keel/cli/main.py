"""Entry point of the ``keel`` command.

Errors are one line on stderr (``keel: error: ...``) with exit code 2, whether they come
from a bad argument or from keel refusing the input.
"""

from __future__ import annotations

import sys

import typer

from keel.cli import (
    audit,
    data,
    deploy,
    experiments,
    fairness,
    fairness_mitigate,
    gate,
    gc,
    imports,
    label,
    lineage,
    models,
    monitor,
    pipeline,
    privacy,
    quickstart,
    runs,
    runs_lifecycle,
    scheduler,
    serve,
    server,
    ui,
    users,
)
from keel.cli.output import clean
from keel.core.errors import KeelError

try:  # typer >= 0.24 vendors click; older releases use click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]

app = typer.Typer(
    name="keel",
    help="keel: a self-hosted MLOps platform. Start with `keel quickstart`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"keel {version('keel')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            from keel import __version__

            typer.echo(f"keel {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version, help="Print keel's version and exit."),
) -> None:
    """keel: a self-hosted MLOps platform. Start with `keel quickstart`."""


app.add_typer(runs.app, name="runs")
runs.app.command("delete")(runs_lifecycle.delete)
runs.app.command("restore")(runs_lifecycle.restore)
app.add_typer(experiments.app, name="experiments")
app.command("gc")(gc.gc)
app.add_typer(data.app, name="data")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(models.app, name="models")
app.add_typer(deploy.app, name="deploy")
app.add_typer(monitor.app, name="monitor")
app.add_typer(label.app, name="label")
fairness.app.command("mitigate")(fairness_mitigate.mitigate)
app.add_typer(fairness.app, name="fairness")
app.add_typer(privacy.app, name="privacy")
app.add_typer(audit.app, name="audit")
app.add_typer(lineage.app, name="lineage")
app.add_typer(lineage.compliance, name="compliance")
app.add_typer(imports.app, name="import")
app.add_typer(users.users, name="users")
app.add_typer(users.roles, name="roles")
app.add_typer(users.tokens, name="tokens")
app.command("gate")(gate.gate)
app.command("open")(runs.open_artifact)
app.command("server")(server.server)
app.command("serve")(serve.serve)
app.command("scheduler")(scheduler.scheduler)
app.command("quickstart")(quickstart.quickstart)
app.command("ui")(ui.ui)


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="keel", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except click_exc.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else ""
        typer.echo(clean(f"keel: error: {where}{exc.format_message()}".replace("\n", " ")), err=True)
        return 2
    except KeelError as exc:
        # the message may quote input or come from a server: no escape sequence reaches the terminal
        typer.echo(clean(f"keel: error: {exc.message}".replace("\n", " ")), err=True)
        return 2
    except OSError as exc:  # a path the user gave that cannot be written or read: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(clean(f"keel: error: {exc.strerror or exc}{where}".replace("\n", " ")), err=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("keel: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
