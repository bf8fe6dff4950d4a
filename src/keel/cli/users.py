"""``keel users|roles|tokens``: who may use keel, with which roles, through which API tokens.

Each command is one call of the configured store's ``identity`` (local SQLite, or a keel server, which then needs an
admin's token). A token is printed once, by ``keel tokens create``: only its hash is stored.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from keel.cli.output import JSON_OPTION, console, esc, fmt_time, print_json
from keel.core.clock import now_ms
from keel.core.entities import to_plain
from keel.core.identity import ALL_PROJECTS, ApiToken, RoleBinding

users = typer.Typer(help="Users and service accounts (principals).", no_args_is_help=True)
roles = typer.Typer(help="Roles of users per project, or per model.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)

PROJECT = typer.Option(ALL_PROJECTS, "--project", help="A project, or '*' for every project.")
MODEL = typer.Option(None, "--model", help="Only this model (its aliases then need this binding to move).")
SHOWN_ONCE = "This token will not be shown again: store it now (e.g. KEEL_TOKEN for clients)."


def _identity() -> Any:
    from keel.context import current

    return current().store.identity


# users ---------------------------------------------------------------------------------------------------------------


@users.command("create")
def create_user(
    name: str = typer.Argument(..., help="User name (letters, digits, '.', '_', '@', '-')."),
    service: bool = typer.Option(False, "--service", help="A service account (for replicas, schedulers, CI)."),
) -> None:
    """A new user, or service account."""
    made = _identity().create_principal(name, kind="service" if service else "user")
    what = "service account" if made.kind == "service" else "user"
    console.print(f"created {what} [bold]{esc(made.name)}[/] (no roles yet: keel roles grant {esc(made.name)} ROLE)")


@users.command("list")
def list_users(as_json: bool = JSON_OPTION) -> None:
    """Every user and service account."""
    if as_json:
        print_json(_identity().list_principals())
        return
    table = Table(box=None)
    for column in ("name", "kind", "created", "created by", "state"):
        table.add_column(column)
    for p in _identity().list_principals():
        state = "[red]disabled[/]" if p.disabled else "active"
        table.add_row(esc(p.name), esc(p.kind), fmt_time(p.created_at), esc(p.created_by), state)
    console.print(table)


def _set_disabled(name: str, disabled: bool) -> None:
    changed = _identity().set_disabled(name, disabled)
    console.print(f"{'disabled' if changed.disabled else 'enabled'} {esc(changed.name)}")


@users.command("disable")
def disable(name: str = typer.Argument(..., help="User name.")) -> None:
    """Disable a user: none of its tokens authenticates from now on."""
    _set_disabled(name, True)


@users.command("enable")
def enable(name: str = typer.Argument(..., help="User name.")) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False)


# roles ---------------------------------------------------------------------------------------------------------------


def _where(b: RoleBinding) -> str:
    place = "every project" if b.project == ALL_PROJECTS else f"project {b.project}"
    return f"{place}, model {b.model}" if b.model else place


@roles.command("grant")
def grant(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Argument(..., help="viewer, editor, admin, service or annotator."),
    project: str = PROJECT,
    model: str = MODEL,
) -> None:
    """Give a user a role in a project (or every project), on one model only with --model."""
    b = _identity().grant(name, role, project=project, model=model)
    console.print(f"{esc(b.principal)} is {esc(b.role)} in {esc(_where(b))}")


@roles.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Argument(..., help="viewer, editor, admin, service or annotator."),
    project: str = PROJECT,
    model: str = MODEL,
) -> None:
    """Remove one role binding (the same --project and --model it was granted with)."""
    _identity().revoke_role(name, role, project=project, model=model)
    console.print(f"revoked {esc(role)} of {esc(name)}")


@roles.command("list")
def list_roles(
    name: str = typer.Argument(None, help="Only this user's."),
    model: str = typer.Option(None, "--model", help="Only on this model."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Role bindings: everyone's, or one user's."""
    if as_json:
        print_json(_identity().bindings(name, model=model))
        return
    table = Table(box=None)
    for column in ("user", "role", "project", "model", "granted"):
        table.add_column(column)
    for b in _identity().bindings(name, model=model):
        table.add_row(esc(b.principal), esc(b.role), esc(b.project), esc(b.model or "(all)"), fmt_time(b.created_at))
    console.print(table)


@roles.command("trust")
def trust(
    role: list[str] = typer.Argument(None, help="Roles whose members' pickles others may load (none: back to admin)."),
    project: str = typer.Option("default", "--project", help="The project ('*': every project)."),
) -> None:
    """Name the roles a project trusts to write what others deserialize (pickled models, cached step outputs).
    A loader always trusts bytes it wrote itself; by default it also trusts admins."""
    chosen = _identity().set_trusted_roles(project, list(role or ()))
    console.print(f"project {esc(project)} trusts pickles written by: {esc(', '.join(chosen))} (and each user's own)")


@roles.command("trusted")
def trusted(project: str = typer.Option("default", "--project", help="The project."), as_json: bool = JSON_OPTION) -> None:
    """The roles a project trusts to write pickles."""
    if as_json:
        print_json({"project": project, "trusted_roles": _identity().trusted_roles(project)})
        return
    console.print(f"project {esc(project)} trusts pickles written by: {esc(', '.join(_identity().trusted_roles(project)))}")


# tokens --------------------------------------------------------------------------------------------------------------


def _expires_at(expires: str | None) -> int | None:
    if expires is None or expires.strip().lower() == "never":
        return None
    from keel.serve.predictions import duration_ms

    return now_ms() + duration_ms(expires, "--expires")


@tokens.command("create")
def create_token(
    name: str = typer.Argument(..., help="User name."),
    token_name: str = typer.Option("", "--name", help="What the token is for (e.g. ci, laptop)."),
    scope: list[str] = typer.Option(
        [], "--scope", help="Narrow the token to one permission (repeatable); default: all of the user's."
    ),
    expires: str = typer.Option(None, "--expires", help="Valid for this long: 30d, 12h, 1w (default: never expires)."),
    as_json: bool = typer.Option(False, "--json", help="Write the token and its record as JSON to stdout."),
) -> None:
    """A new API token for a user, printed this once."""
    new = _identity().create_token(name, name=token_name, scopes=scope, expires_at=_expires_at(expires))
    t = new.token
    if as_json:
        record = {"id": t.id, "principal": t.principal, "name": t.name, "scopes": list(t.scopes), "expires_at": t.expires_at}
        typer.echo(json.dumps({**record, "token": new.secret}))
        return
    scopes = ", ".join(t.scopes) or "all of the user's permissions"
    until = f", expires {fmt_time(t.expires_at)}" if t.expires_at else ", never expires"
    console.print(f"token {esc(t.id)} for {esc(t.principal)} ({esc(scopes)}{until})")
    typer.echo(new.secret)  # plain: no markup, no wrapping
    typer.echo(SHOWN_ONCE)


def _state(t: ApiToken, now: int) -> str:
    if t.revoked_at is not None:
        return "[red]revoked[/]"
    if t.expires_at is not None and now >= t.expires_at:
        return "[yellow]expired[/]"
    return "active"


@tokens.command("list")
def list_tokens(name: str = typer.Argument(None, help="Only this user's."), as_json: bool = JSON_OPTION) -> None:
    """Token records, newest first (never the tokens themselves)."""
    if as_json:
        now = now_ms()
        print_json([{**to_plain(t), "state": _state(t, now)} for t in _identity().list_tokens(name)])
        return
    table = Table(box=None)
    for column in ("id", "user", "name", "scopes", "created", "expires", "last used", "state"):
        table.add_column(column)
    now = now_ms()
    for t in _identity().list_tokens(name):
        table.add_row(
            esc(t.id), esc(t.principal), esc(t.name or "-"), esc(" ".join(t.scopes) or "(all)"), fmt_time(t.created_at),
            fmt_time(t.expires_at) if t.expires_at else "never", fmt_time(t.last_used_at), _state(t, now),
        )  # fmt: skip
    console.print(table)


@tokens.command("revoke")
def revoke_token(token_id: str = typer.Argument(..., help="The token's id (keel tokens list).")) -> None:
    """Revoke a token: it stops authenticating at once."""
    t = _identity().revoke_token(token_id)
    console.print(f"revoked token {esc(t.id)} of {esc(t.principal)} at {fmt_time(t.revoked_at)}")
